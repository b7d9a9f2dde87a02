"""
Generate a store and look at it
===============================

Solve Poisson and Darcy samples with DOLFINx into Zarr stores (what
``pde-data generate`` does), summarise them (``pde-data info``) and open them
with xarray: every array has named dimensions (``sample``, ``y``, ``x``,
``component``, ``param``), the grid coordinates are coordinate arrays and each
variable carries CF-style ``units``, ``long_name`` and a ``description``.
"""

# %%
# Two small stores: 48 Poisson samples on a 32 x 32 grid and 400 Darcy samples on 32 x 32 cells. Sample ``i``
# depends only on the seed and ``i``, so any number of MPI ranks (``mpiexec -n R pde-data generate ...``) or
# restarts writes the same store.
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import xarray as xr

from pde_data.generate import generate
from pde_data.store import summary

work = Path(tempfile.mkdtemp(prefix="pde-surrogate-example-"))
(work / "params.yaml").write_text("poisson: {n: 32, samples: 48, seed: 0}\n"
                                  "darcy: {n: 32, samples: 400, seed: 0, length: 0.2, variance: 1.0}\n")
for problem in ("poisson", "darcy"):
    generate(problem, work / f"{problem}.zarr", work / "params.yaml", progress=False)
print(summary(work / "poisson.zarr"))

# %%
# The store as an xarray Dataset: ``xarray.open_zarr`` reads the Zarr v3 dimension names and attributes; the
# generator's parameters, seed and package versions are the ``pde_data`` attribute.
poisson = xr.open_zarr(work / "poisson.zarr")
print(poisson)
print(poisson.u.attrs)

# %%
# Labelled selections: the diffusion coefficient and the solution of three samples, and a profile along y at
# x = 0.5 (the nearest grid column), with the coordinates on the axes.
fields = xr.concat([poisson.kappa.isel(sample=slice(0, 3)), poisson.u.isel(sample=slice(0, 3))],
                   dim=xr.DataArray(["kappa", "u"], dims="field"))
for name, row in zip(("kappa", "u"), fields):
    row.plot(col="sample", figsize=(10, 2.8), cmap="viridis" if name == "u" else "cividis")
    plt.suptitle(f"{row.attrs.get('long_name', name)}", y=1.02)

fig, ax = plt.subplots(figsize=(5, 3.2), constrained_layout=True)
poisson.u.isel(sample=slice(0, 3)).sel(x=0.5, method="nearest").plot.line(x="y", ax=ax)
ax.set_title("u along y at x = 0.5")

# %%
# The parameters of each sample are labelled too: here the frequency kx against the largest value of u.
fig, ax = plt.subplots(figsize=(5, 3.2), constrained_layout=True)
ax.scatter(poisson.theta.sel(param="kx"), poisson.u.max(dim=("y", "x")))
ax.set_xlabel("kx")
ax.set_ylabel("max u")

# %%
# Darcy: the log-permeability (a Matern Gaussian random field on the cell centres), the pressure and the
# distribution of the outflow flux Q, the quantity of interest of the Monte Carlo example.
darcy = xr.open_zarr(work / "darcy.zarr")
darcy.log_k.isel(sample=slice(0, 3)).plot(col="sample", figsize=(10, 2.8), cmap="cividis")
darcy.p.isel(sample=slice(0, 3)).plot(col="sample", figsize=(10, 2.8))
fig, ax = plt.subplots(figsize=(5, 3.2), constrained_layout=True)
darcy.Q.plot.hist(bins=30, ax=ax)
ax.set_title(f"{darcy.Q.attrs['long_name']}: mean {float(darcy.Q.mean()):.4f}")
print(darcy.Q.attrs["description"])

# %%
shutil.rmtree(work)
