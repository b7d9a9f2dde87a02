"""DOLFINx generators of PDE sample stores (Poisson, Darcy) in Zarr, and the ``pde-data`` CLI.

Never imports torch; DOLFINx and MPI are imported only by the solvers and the generation driver.

Under ``mpiexec`` with several ranks on a node, each rank's BLAS/OpenMP (MUMPS's dense
kernels) gets its share of the node's cores, cpu_count // local ranks, unless
``OMP_NUM_THREADS`` (or ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``) is set: by default
every rank would start one thread per core and the ranks would oversubscribe the node.
This runs on import, before numpy or PETSc load their BLAS.
"""

import os


def __getattr__(name: str) -> str:
    """``__version__``, read from the installed distribution when first asked for (importing the package
    stays cheap: the command lines answer Ctrl-C from their first line on)."""
    if name == "__version__":
        from importlib import metadata

        return metadata.version("pde-surrogate")
    raise AttributeError(f"module 'pde_data' has no attribute {name!r}")


#: Ranks on this node, as MPICH (hydra) and Open MPI announce them to each process.
LOCAL_RANKS_VARS = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _share_cores_between_local_ranks() -> None:
    local = next((os.environ[v] for v in LOCAL_RANKS_VARS if os.environ.get(v, "").isdigit()), None)
    if local is None or int(local) < 2 or any(v in os.environ for v in THREAD_VARS):
        return
    share = str(max(1, (os.cpu_count() or 1) // int(local)))
    for var in THREAD_VARS:
        os.environ[var] = share


_share_cores_between_local_ranks()
