"""Plots every edition draws: curves on a common work grid (for seed bands) and the regime map's heat maps."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def curve_on_grid(records: Sequence[Mapping], key: str, grid: np.ndarray, measure: str = "flops") -> np.ndarray:
    """Each run's curve ``key`` interpolated on ``grid`` (NaN outside its finite values), one row per run."""
    rows = []
    for r in records:
        c = r["curve"]
        wu = np.asarray(c[f"wu_{measure}"], float)
        v = np.asarray([np.nan if x is None else x for x in c.get(key, [])], float)
        if v.size == 0 or wu.size == 0:
            continue
        ok = np.isfinite(v)
        row = np.full(grid.shape, np.nan)
        if ok.sum() >= 1:
            inside = (grid >= wu[ok][0]) & (grid <= wu[ok][-1])
            row[inside] = np.interp(grid[inside], wu[ok], v[ok])
        rows.append(row)
    return np.array(rows) if rows else np.full((1,) + grid.shape, np.nan)


def plot_regime(cells: Mapping, sizes: Sequence[int], levels: Sequence[str], labels: Sequence[str],
                panels: Sequence[tuple[str, str]], path: Path, *, xlabel: str = "FAS levels (τ minibatch)",
                base: str = "SGD", what: str = "FAS") -> None:
    """One heat map per panel: the paired ``what`` - ``base`` change in % of ``base``, per training-set size
    (rows) and column (``levels``: the methods, ``labels`` their tick labels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    ncols = min(2, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.0 * ncols, (0.8 * len(sizes) + 2.0) * nrows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (pkey, ptitle) in zip(axes.flat, panels):
        Z = np.full((len(sizes), len(levels)), np.nan)
        for i, n in enumerate(sizes):
            for j, m in enumerate(levels):
                p = cells.get((n, m, pkey))
                if p and p.get("rel") is not None:
                    Z[i, j] = 100.0 * p["rel"]
        lim = np.nanmax(np.abs(Z)) if np.isfinite(Z).any() else 1.0
        lim = max(float(lim), 1.0)
        im = ax.imshow(Z, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -lim, lim), aspect="auto")
        for i, n in enumerate(sizes):
            for j, m in enumerate(levels):
                p = cells.get((n, m, pkey))
                if not p:
                    continue
                txt = "n/a" if p.get("rel") is None else f"{100 * p['rel']:+.0f}%"
                dark = np.isfinite(Z[i, j]) and abs(Z[i, j]) > 0.6 * lim
                ax.text(j, i, f"{txt}\n{p['verdict']}", ha="center", va="center", fontsize=9,
                        color="white" if dark else "black")
        ax.set_xticks(range(len(levels)), labels)
        ax.set_yticks(range(len(sizes)), [str(n) for n in sizes])
        ax.set_xlabel(xlabel)
        ax.set_ylabel("training samples")
        ax.set_title(ptitle, fontsize=10)
        fig.colorbar(im, ax=ax, label=f"mean {what} − {base}, % of {base} mean")
    against = f"one-level {base}" if base == "SGD" else base
    fig.suptitle(f"Regime map: paired change against {against} (blue: {what} better, red: worse)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

