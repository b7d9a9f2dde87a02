"""Pictures of a few samples of a store (``pde-data plot STORE``), drawn with matplotlib.

One row per sample, one panel per field: Darcy shows ``log_k`` and the
pressure ``p`` (with Q and Q_in in the title), Poisson ``kappa`` and ``u``;
any other store shows its 2-D per-sample arrays. Every panel is an image on
the unit square with ``origin="lower"`` (row = y, col = x, as stored), axis
labels and its own colorbar; pixels are centred on the stored coordinates
``x``, ``y`` (cell centres for Darcy, grid points for Poisson).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from params import writable_dir
from pde_data.store import StoreError, StoreReader

#: Fields shown for each problem, in panel order.
FIELDS = {"darcy": ("log_k", "p"), "poisson": ("kappa", "u")}
_TITLES = {"log_k": "log permeability log k", "p": "pressure p", "kappa": "conductivity kappa", "u": "solution u"}
_CMAPS = {"log_k": "cividis", "p": "viridis", "kappa": "cividis", "u": "viridis"}


def default_output(store: str | Path) -> Path:
    """``data/darcy.zarr`` -> ``data/darcy_samples.png``."""
    store = Path(store)
    return store.with_name(f"{store.stem}_samples.png")


def _extent(group, rec) -> tuple[float, float, float, float]:
    """imshow extent that puts pixel centres on the stored coordinates ``x``, ``y`` (cell centres or grid points)."""
    if {"x", "y"} <= set(rec["store_arrays"]):
        x, y = (np.asarray(group[axis][...], dtype=float) for axis in "xy")
        if x.ndim == 2:  # formats 1-3 store the grid as (n, n) images
            x, y = x[0, :], y[:, 0]
        if x.size > 1 and y.size > 1:
            dx, dy = (x[-1] - x[0]) / (x.size - 1), (y[-1] - y[0]) / (y.size - 1)
            return (x[0] - dx / 2, x[-1] + dx / 2, y[0] - dy / 2, y[-1] + dy / 2)
    return (0.0, 1.0, 0.0, 1.0)


def plot_store(
    store: str | Path, out: str | Path | None = None, samples: int = 4, indices: list[int] | None = None
) -> Path:
    """Draw ``samples`` done samples (or those in ``indices``) of ``store`` into the PNG ``out``; returns its path."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    out = Path(out) if out is not None else default_output(store)
    writable_dir(out.parent, "--out")
    reader = StoreReader(store)
    group, rec, done = reader.group, reader.record, reader.done_index
    if indices is None:
        if samples < 1:
            raise StoreError(f"--samples: {samples} is too small; need an integer >= 1")
        if done.size == 0:
            raise StoreError(f"store {store}: no sample is done yet; nothing to plot")
        indices = [int(i) for i in done[:samples]]
    else:
        bad = [i for i in indices if i not in set(reader.done_in(i, i + 1).tolist())]
        if bad:
            raise StoreError(
                f"--index: sample {bad[0]} is not in the store or not done yet; "
                f"need one of the {done.size} done samples"
            )
    shapes = rec["sample_arrays"]
    fields = FIELDS.get(rec["problem"]) or tuple(name for name, (shape, _) in shapes.items() if len(shape) == 2)
    if not fields:
        raise StoreError(f"store {store}: has no 2-D per-sample field to plot")

    extent = _extent(group, rec)
    fig = Figure(figsize=(4.2 * len(fields), 3.6 * len(indices)), layout="constrained")
    axes = fig.subplots(len(indices), len(fields), squeeze=False)
    for row, i in enumerate(indices):
        caption = f"sample {i}"
        for name in ("Q", "Q_in"):
            if name in shapes:
                caption += f", {name} = {float(reader.read(name, np.array([i]))[0]):.4g}"
        for col, name in enumerate(fields):
            ax = axes[row, col]
            image = ax.imshow(
                reader.read(name, np.array([i]))[0], origin="lower", extent=extent, cmap=_CMAPS.get(name, "viridis")
            )
            fig.colorbar(image, ax=ax, shrink=0.9, label=name)
            ax.set_title(f"{_TITLES.get(name, name)}\n{caption}", fontsize=9)
            ax.set_xlabel("x")
            ax.set_ylabel("y")
    params = rec["params"]
    if rec["problem"] == "darcy":
        nu = f", nu {params['nu']}" if params.get("nu") is not None else ""
        fig.suptitle(
            f"{store}: darcy, {params['kernel']}{nu}, mean {params['mean']}, variance {params['variance']}, "
            f"length {params['length']}; p = {params['p_in']} on {params['inflow']}, "
            f"{params['p_out']} on {params['outflow']}",
            fontsize=10,
        )
    else:
        fig.suptitle(f"{store}: {rec['problem']}", fontsize=10)
    fig.savefig(out, dpi=100)
    return out
