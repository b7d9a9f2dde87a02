"""The direct solvers shared by the generators: one factorisation object per process.

Measured per solve on the project's 2-core machine (a shared one, best of 3-5;
factorisation and triangular solves, matrix assembly excluded), Poisson P1 at n = 32 / 64 /
128 / 256 / 512 grid points per side: PETSc LU 0.4 / 3.2 / 26 / 280 / 2600 ms;
MUMPS LU 1.0 / 3.5 / 19 / 124 / 590 ms; MUMPS Cholesky 0.6 / 2.7 / 14 / 92 /
500 ms; CG + GAMG (rtol 1e-10, set up per matrix) 1.0 / 4.6 / 19 / 93 / 440 ms.
So PETSc's own LU below :data:`CHOLESKY_FROM_N`, MUMPS Cholesky from there on; an
iterative solver only starts to pay at n ~ 512 and is not offered.

Every refactorisation frees and allocates the same workspaces again. With glibc's
default, dynamically adjusted malloc thresholds, whether those go back to the OS (and
are page-faulted in again at the next solve) depends on the process's allocation
history: Darcy at n = 32 took 3.6 ms a solve in one process and 2.8 ms in the next,
with 365 page faults and 0.5 ms of kernel time a solve in the slow one; at n = 256 every
process took 27 thousand faults (105 MB) and 60 ms of kernel time in a 360 ms solve.
:func:`keep_freed_memory` fixes the thresholds, so the workspaces stay in the heap.
"""

from __future__ import annotations

import ctypes
import functools
import platform

from mpi4py import MPI
from petsc4py import PETSc

#: LU packages that pivot, in order of preference (a saddle-point matrix needs pivoting).
PIVOTING_PACKAGES = ("mumps", "superlu_dist", "umfpack", "superlu")
#: Grids with at least this many points per side factorise a symmetric positive definite matrix
#: with MUMPS Cholesky (PETSc's own LU fills in badly beyond); smaller ones keep PETSc's LU.
CHOLESKY_FROM_N = 64
#: glibc ``mallopt`` settings of :func:`keep_freed_memory`: no mmap for large blocks (they would be
#: unmapped when freed), and up to 1 GiB of free memory kept at the top of the heap.
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


def direct_solver(A: PETSc.Mat, *, pivoting: bool = False, spd: bool = False) -> PETSc.KSP:
    """A PREONLY direct KSP on ``MPI.COMM_SELF`` for ``A``; refactorised whenever ``A`` is re-assembled.

    With ``pivoting`` the first package of :data:`PIVOTING_PACKAGES` that PETSc
    has does an LU factorisation (PETSc's own LU does not pivot). With ``spd``
    (a symmetric positive definite ``A``) MUMPS does a Cholesky factorisation
    where PETSc has MUMPS; otherwise PETSc's own LU. Calls :func:`keep_freed_memory`.
    """
    keep_freed_memory()
    ksp = PETSc.KSP().create(MPI.COMM_SELF)
    ksp.setOperators(A)
    ksp.setType(PETSc.KSP.Type.PREONLY)
    pc = ksp.getPC()
    pc.setType(PETSc.PC.Type.LU)
    if spd and PETSc.Sys.hasExternalPackage("mumps"):
        pc.setType(PETSc.PC.Type.CHOLESKY)
        pc.setFactorSolverType("mumps")
    elif pivoting:
        package = next((p for p in PIVOTING_PACKAGES if PETSc.Sys.hasExternalPackage(p)), None)
        if package is not None:
            pc.setFactorSolverType(package)
    return ksp


def solver_name(ksp: PETSc.KSP) -> str:
    """``"<package> <LU|Cholesky>"`` of a direct KSP (for store attributes)."""
    pc = ksp.getPC()
    kind = "Cholesky" if pc.getType() == PETSc.PC.Type.CHOLESKY else "LU"
    return f"{pc.getFactorSolverType() or 'petsc'} {kind}"
