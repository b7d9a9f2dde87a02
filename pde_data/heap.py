"""Keep freed memory in the process's heap, so that repeated numerical work does not page-fault.

A refactorisation frees and allocates the same workspaces at every solve, and a
field draw its FFT buffers. With glibc's default, dynamically adjusted malloc
thresholds, whether those blocks go back to the OS (and are page-faulted in again,
zero-filled by the kernel, at the next use) depends on the process's allocation
history. ``benchmarks/bench_heap.py`` printed, per Darcy solve: at n = 32, 3.60 ms
with 365 page faults and 0.52 ms of kernel time in one of three processes (the others
none), against 2.82 ms and no faults with the fix; at n = 256, 382.6 ms with 26,918
faults (105 MB) and 57.9 ms of kernel time, against 306.5 ms and none.
:func:`keep_freed_memory` fixes the thresholds: no test or benchmark then depends
on that history. The direct solvers (:mod:`pde_data.lu`) and the random
field samplers (:mod:`pde_data.fields`) call it.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

#: glibc ``mallopt`` (parameter, value) pairs: no mmap for large blocks (they would be unmapped when
#: freed), and up to 1 GiB of free memory kept at the top of the heap.
MALLOPT = {"M_MMAP_MAX": (-4, 0), "M_TRIM_THRESHOLD": (-1, 2**30)}


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse (process-wide, idempotent); False where malloc is not glibc's.

    The cost is a resident size that stays at its peak (the factorisation's, about
    0.35 GB at n = 256) instead of shrinking between solves.
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    return all(mallopt(param, value) == 1 for param, value in MALLOPT.values())


def physical_memory() -> int:
    """Bytes of physical memory of this machine (the bound that the size checks of the config compare with)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
