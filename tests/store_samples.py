"""Generating stores on several MPI ranks, reading their per-sample arrays back, comparing two (store tests)."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from pde_data.store import open_store_group


def read_samples(path, fields):
    """The per-sample ``fields`` and the ``done`` flags of the store at ``path``, as numpy arrays."""
    group, _ = open_store_group(path)
    return {name: group[name][:] for name in (*fields, "done")}


def assert_same_samples(a, b, fields):
    for name in fields:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def mpiexec() -> str | None:
    """The venv's mpiexec (the MPI that mpi4py was built with), else the one on PATH."""
    return shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")


def generate_on_ranks(problem: str, folder: Path, params: Path, ranks=(1, 2)) -> dict[int, Path]:
    """``pde-data generate PROBLEM`` under ``mpiexec -n R`` for each R of ``ranks``, into FOLDER/rR.zarr."""
    stores = {}
    for r in ranks:
        stores[r] = folder / f"r{r}.zarr"
        cmd = [mpiexec() or "mpiexec", "-n", str(r), sys.executable, "-m", "pde_data.cli", "generate", problem,
               "--out", str(stores[r]), "--params", str(params), "--no-progress"]
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    return stores
