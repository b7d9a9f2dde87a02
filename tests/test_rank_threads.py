"""Several MPI ranks on a node share its cores: one BLAS/OpenMP share each, unless the user set a thread count."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pde_data import LOCAL_RANKS_VARS, THREAD_VARS

PROBE = "import os, pde_data; print(os.environ.get('OMP_NUM_THREADS'), os.environ.get('OPENBLAS_NUM_THREADS'))"


def _threads_after_import(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in (*LOCAL_RANKS_VARS, *THREAD_VARS)}
    return subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.parametrize("var", LOCAL_RANKS_VARS)
def test_local_ranks_get_their_share_of_the_cores(var):
    share = str(max(1, (os.cpu_count() or 1) // 2))
    assert _threads_after_import(**{var: "2"}) == f"{share} {share}"


def test_a_users_thread_count_and_a_single_process_are_left_alone():
    assert _threads_after_import(MPI_LOCALNRANKS="2", OMP_NUM_THREADS="3") == "3 None"
    assert _threads_after_import() == "None None"
    assert _threads_after_import(MPI_LOCALNRANKS="1") == "None None"
