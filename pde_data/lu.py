"""The direct solvers shared by the generators: one factorisation object per process.

Measured per solve on the project's 2-core machine (a shared one, best of 3-5;
factorisation and triangular solves, matrix assembly excluded), Poisson P1 at n = 32 / 64 /
128 / 256 / 512 grid points per side: PETSc LU 0.4 / 3.2 / 26 / 280 / 2600 ms;
MUMPS LU 1.0 / 3.5 / 19 / 124 / 590 ms; MUMPS Cholesky 0.6 / 2.7 / 14 / 92 /
500 ms; CG + GAMG (rtol 1e-10, set up per matrix) 1.0 / 4.6 / 19 / 93 / 440 ms.
So PETSc's own LU below :data:`CHOLESKY_FROM_N`, MUMPS Cholesky from there on; an
iterative solver only starts to pay at n ~ 512 and is not offered.
"""

from __future__ import annotations

import math

from mpi4py import MPI
from petsc4py import PETSc

from params import ConfigError
from pde_data.heap import keep_freed_memory, physical_memory

#: LU packages that pivot, in order of preference (a saddle-point matrix needs pivoting).
PIVOTING_PACKAGES = ("mumps", "superlu_dist", "umfpack", "superlu")
#: Grids with at least this many points per side factorise a symmetric positive definite matrix
#: with MUMPS Cholesky (PETSc's own LU fills in badly beyond); smaller ones keep PETSc's LU.
CHOLESKY_FROM_N = 64


#: Bytes per unknown and per log2(unknowns) that a 2-D direct factorisation holds (nested-dissection fill,
#: N log N): about what a Poisson solve at n = 256 (65,536 unknowns, ~0.2 GB) holds, per process.
FACTOR_BYTES = 200


def check_memory(unknowns: int, key: str, n: int) -> None:
    """A ConfigError naming ``key`` when factorising ``unknowns`` unknowns would not fit in this machine's memory
    (checked before the mesh is built: DOLFINx would otherwise fail with std::bad_alloc)."""
    need = FACTOR_BYTES * unknowns * max(math.log2(unknowns), 1.0)
    have = physical_memory()
    if need > have:
        raise ConfigError(f"{key}: {n} is too large for the direct solver: about {need / 2**30:.0f} GiB for "
                          f"{unknowns:.3g} unknowns per process; this machine has {have / 2**30:.0f} GiB")


def direct_solver(A: PETSc.Mat, *, pivoting: bool = False, spd: bool = False) -> PETSc.KSP:
    """A PREONLY direct KSP on ``MPI.COMM_SELF`` for ``A``; refactorised whenever ``A`` is re-assembled.

    With ``pivoting`` the first package of :data:`PIVOTING_PACKAGES` that PETSc
    has does an LU factorisation (PETSc's own LU does not pivot). With ``spd``
    (a symmetric positive definite ``A``) MUMPS does a Cholesky factorisation
    where PETSc has MUMPS; otherwise PETSc's own LU. Calls :func:`~pde_data.heap.keep_freed_memory`.
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
