"""DOLFINx generators of PDE sample stores (Poisson, Darcy) in Zarr, and the ``pde-data`` CLI.

Never imports torch; DOLFINx and MPI are imported only by the solvers and the generation driver.
"""

from importlib import metadata

__version__ = metadata.version("pde-surrogate")
