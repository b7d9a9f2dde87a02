"""The direct solver shared by the generators: one LU factorisation object per process."""

from __future__ import annotations

from mpi4py import MPI
from petsc4py import PETSc

#: LU packages that pivot, in order of preference (a saddle-point matrix needs pivoting).
PIVOTING_PACKAGES = ("mumps", "superlu_dist", "umfpack", "superlu")


def direct_solver(A: PETSc.Mat, *, pivoting: bool = False) -> PETSc.KSP:
    """A PREONLY + LU KSP on ``MPI.COMM_SELF`` for ``A``; refactorised whenever ``A`` is re-assembled.

    With ``pivoting`` the first package of :data:`PIVOTING_PACKAGES` that PETSc
    has does the factorisation (PETSc's own LU does not pivot).
    """
    ksp = PETSc.KSP().create(MPI.COMM_SELF)
    ksp.setOperators(A)
    ksp.setType(PETSc.KSP.Type.PREONLY)
    pc = ksp.getPC()
    pc.setType(PETSc.PC.Type.LU)
    if pivoting:
        package = next((p for p in PIVOTING_PACKAGES if PETSc.Sys.hasExternalPackage(p)), None)
        if package is not None:
            pc.setFactorSolverType(package)
    return ksp
