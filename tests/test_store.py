"""The Zarr store and the generation driver: layout, determinism, resume, refusals."""

import os
import signal
import subprocess
import sys
import time
from functools import partial

import numpy as np
import pytest
import zarr

from params import ConfigError
from pde_data.chunks import auto_chunk
from pde_data.generate import generate  # before dolfinx: orders MPI
from pde_data.store import StoreError, open_store_group
from store_samples import assert_same_samples as assert_same
from store_samples import read_samples

FIELDS = ("theta", "kappa", "f", "u", "flux")
read = partial(read_samples, fields=FIELDS)
assert_same_samples = partial(assert_same, fields=FIELDS)


def test_store_layout_and_attributes(tmp_path, write_params):
    out = tmp_path / "p.zarr"
    assert generate("poisson", out, write_params(), progress=False) == "created"
    group, rec = open_store_group(out)
    assert group["done"][:].all()
    assert group["u"].shape == (12, 8, 8) and group["u"].chunks == (4, 8, 8)
    assert group["flux"].shape == (12, 2, 8, 8) and group["theta"].shape == (12, 5)
    assert group["x"].shape == (8,) and group["x"][-1] == 1.0 and group["y"].shape == (8,)
    assert rec["problem"] == "poisson" and rec["schema_version"] == 1 and rec["store_format"] == 4
    assert rec["generate"] == {"samples": 12, "seed": 0, "chunk": 4}
    assert rec["params"]["kx"] == [0.5, 4.0] and rec["params"]["n"] == 8
    assert rec["mesh"]["grid"] == [8, 8]
    assert {"dolfinx", "petsc4py", "pde_data"} <= set(rec["versions"])
    assert zarr.open_group(out, mode="r").metadata.zarr_format == 3


def test_content_depends_only_on_seed_and_index(tmp_path, write_params):
    generate("poisson", tmp_path / "a.zarr", write_params(chunk=4), progress=False)
    generate("poisson", tmp_path / "b.zarr", write_params(chunk=5), progress=False)
    generate("poisson", tmp_path / "c.zarr", write_params(samples=6, chunk=6), progress=False)
    generate("poisson", tmp_path / "d.zarr", write_params(seed=1), progress=False)
    a, b, c, d = (read(tmp_path / f"{k}.zarr") for k in "abcd")
    assert_same_samples(a, b)
    for name in FIELDS:
        np.testing.assert_array_equal(a[name][:6], c[name])
    assert not np.array_equal(a["theta"], d["theta"])
    assert len(np.unique(a["theta"][:, 0])) == 12


def test_resume_fills_only_missing_chunks(tmp_path, write_params, monkeypatch):
    params = write_params()
    out = tmp_path / "p.zarr"
    generate("poisson", out, params, progress=False)
    reference = read(out)
    group = zarr.open_group(out, mode="r+")
    group["done"][4:8] = False  # chunk 1 "was in flight"
    group["u"][4:8] = 0.0

    import pde_data.generate as gen

    solved = []
    original = gen.solve_chunk
    monkeypatch.setattr(gen, "solve_chunk", lambda fam, seed, a, b: solved.append((a, b)) or original(fam, seed, a, b))
    assert generate("poisson", out, params, progress=False) == "resumed"
    assert solved == [(4, 8)]
    assert_same_samples(read(out), reference)
    assert generate("poisson", out, params, progress=False) == "resumed"
    assert solved == [(4, 8)]


def test_sigkill_mid_run_keeps_finished_chunks_and_resumes(tmp_path, write_params):
    params = write_params(samples=1000, chunk=4)
    out = tmp_path / "p.zarr"
    cmd = [sys.executable, "-m", "pde_data.cli", "generate", "poisson", "--out", str(out), "--params", str(params),
           "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            time.sleep(0.05)
            try:
                if zarr.open_group(out, mode="r")["done"][:].sum() >= 8:
                    break
            except Exception:  # noqa: BLE001 - store not created yet
                assert proc.poll() is None, proc.stderr.read().decode()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = zarr.open_group(out, mode="r")["done"][:]
    assert 8 <= done.sum() < 1000
    # Finished chunks are intact: equal to a clean run of the first samples.
    finished = int(np.argmin(done))
    generate("poisson", tmp_path / "ref.zarr", write_params(samples=finished, chunk=4), progress=False)
    reference, killed = read(tmp_path / "ref.zarr"), read(out)
    for name in FIELDS:
        np.testing.assert_array_equal(killed[name][:finished], reference[name])
    # The same command completes the store.
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    assert read(out)["done"].all()


def test_mismatched_parameters_are_refused_then_overwritten(tmp_path, write_params):
    out = tmp_path / "p.zarr"
    generate("poisson", out, write_params(), progress=False)
    with pytest.raises(StoreError, match=r"generate.seed: store has 0, this run asks 3(.|\n)*--overwrite"):
        generate("poisson", out, write_params(), seed=3, progress=False)
    with pytest.raises(StoreError, match=r"params.kx: store has \[0.5, 4.0\], this run asks \[1.0, 2.0\]"):
        generate("poisson", out, write_params(kx=[1.0, 2.0]), progress=False)
    assert generate("poisson", out, write_params(), seed=3, overwrite=True, progress=False) == "created"
    assert open_store_group(out)[1]["generate"]["seed"] == 3
    assert read(out)["done"].all()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_auto_chunk_is_resolved_recorded_and_resumed(tmp_path, write_params):
    """chunk: auto (the default) becomes a power of two: 2 MiB of a field, at least 8 chunks; the store records it."""
    out = tmp_path / "p.zarr"
    params = write_params(samples=40, chunk="auto")
    assert generate("poisson", out, params, progress=False) == "created"
    group, rec = open_store_group(out)
    assert rec["generate"]["chunk"] == 4 and group["u"].chunks == (4, 8, 8)  # 40 // 8 = 5 -> 4
    assert generate("poisson", out, params, progress=False) == "resumed"
    with pytest.raises(StoreError, match=r"generate.chunk: store has 4, this run asks 8"):
        generate("poisson", out, params, chunk=8, progress=False)
    with pytest.raises(ConfigError, match=r"poisson.chunk: 'big' is not an integer; need an integer >= 1 or auto"):
        generate("poisson", tmp_path / "q.zarr", write_params(chunk="big"), progress=False)


@pytest.mark.parametrize(("n", "samples", "chunk"), [(32, 8000, 512), (64, 8000, 128), (128, 8000, 32),
                                                    (256, 8000, 8), (32, 512, 64), (32, 5, 1)])
def test_auto_chunk_sizes(n, samples, chunk):
    arrays = {"log_k": ((n, n), "float32"), "p": ((n, n), "float32"), "Q": ((), "float64")}
    assert auto_chunk(arrays, samples) == chunk


def test_foreign_paths_are_never_touched(tmp_path, write_params):
    params = write_params()
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("precious")
    for overwrite in (False, True):
        with pytest.raises(StoreError, match="not a pde-data store"):
            generate("poisson", folder, params, overwrite=overwrite, progress=False)
    assert (folder / "notes.txt").read_text() == "precious" and len(list(folder.iterdir())) == 1

    other = tmp_path / "other.zarr"
    zarr.open_group(other, mode="w").attrs["owner"] = "someone else"
    with pytest.raises(StoreError, match="without a 'pde_data' attribute"):
        generate("poisson", other, params, overwrite=True, progress=False)


def test_empty_directory_is_used(tmp_path, write_params):
    out = tmp_path / "empty.zarr"
    out.mkdir()
    assert generate("poisson", out, write_params(), progress=False) == "created"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("problem", "darcy", "problem: store has 'darcy', this run asks 'poisson'"),
        ("schema_version", 99, "schema_version: store has 99, this run asks 1"),
        ("store_format", 99, "store_format 99 is not supported"),
    ],
)
def test_store_of_another_problem_or_schema_is_refused(tmp_path, write_params, key, value, message):
    out = tmp_path / "p.zarr"
    generate("poisson", out, write_params(), progress=False)
    group = zarr.open_group(out, mode="r+")
    group.attrs["pde_data"] = {**group.attrs["pde_data"], key: value}
    with pytest.raises(StoreError, match=message):
        generate("poisson", out, write_params(), progress=False)


def test_corrupt_store_is_refused(tmp_path, write_params):
    out = tmp_path / "p.zarr"
    generate("poisson", out, write_params(), progress=False)
    import shutil

    shutil.rmtree(out / "done")
    with pytest.raises(StoreError, match="corrupt, array 'done' is missing"):
        generate("poisson", out, write_params(), progress=False)


def test_unwritable_path_is_reported(tmp_path, write_params):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match=r"--out .*file/p.zarr: cannot write the store"):
        generate("poisson", blocker / "p.zarr", write_params(), progress=False)
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(StoreError, match="cannot write the store"):
            generate("poisson", locked / "p.zarr", write_params(), progress=False)
