"""pde_data.heap.keep_freed_memory: a freed large block is reused, not unmapped and faulted in again."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the malloc settings are glibc's")

#: Page faults of allocating, filling and freeing a 64 MiB block, 5 times after a first time; printed per cycle.
CYCLES = """
import ctypes, resource, sys
if sys.argv[1] == "keep":
    from pde_data.heap import keep_freed_memory
    assert keep_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
size = 64 << 20
def cycle():
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    cycle()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
"""


def faults_per_cycle(mode: str) -> float:
    run = subprocess.run([sys.executable, "-c", CYCLES, mode], capture_output=True, text=True, check=True)
    return float(run.stdout)


def test_a_freed_block_is_reused_without_page_faults():
    pages = (64 << 20) // 4096
    assert faults_per_cycle("default") > pages / 4  # glibc unmaps a block this large when it is freed
    assert faults_per_cycle("keep") < 10
