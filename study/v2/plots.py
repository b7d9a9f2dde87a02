"""The second study's plots: validation MSE against FLOPs with seed bands, per set-up, and the regime map."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from study.core import curve_on_grid, plot_regime
from study.v2.analysis import REGIME_PANELS, Results

COLORS = {"sgd-paper": "0.55", "sgd": "k", "adamw": "tab:red", "fas-sgd-paper": "tab:cyan", "fas-sgd": "tab:blue",
          "fas-adamw": "tab:purple", "ni-adamw": "tab:orange", "ni-fas": "tab:green"}
PANELS = (("FAS cycles", lambda d: d["trainer"] == "fas" and d["growth"] == 1),
          ("nested iteration", lambda d: d["growth"] > 1))


def _band(ax: Any, grid: np.ndarray, runs: list, key: str, color: str, label: str, band: bool) -> None:
    """Mean over seeds (line) and, with ``band``, the min-max band of curve ``key``."""
    Y = curve_on_grid(runs, key, grid)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN columns outside a run's curve
        mean, lo, hi = np.nanmean(Y, axis=0), np.nanmin(Y, axis=0), np.nanmax(Y, axis=0)
    if not np.isfinite(mean).any():
        return
    ax.plot(grid, mean, "-" if band else ":", color=color, lw=1.4 if band else 1.0, label=label)
    if band:
        ax.fill_between(grid, lo, hi, color=color, alpha=0.15, lw=0)


def plot_curves(res: Results, setup: str, path: Path) -> None:
    """Validation MSE against FLOP work units: the one-level methods in both panels, FAS left, NI right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    B, defs = res.budget(setup), res.spec["method_defs"]
    grid = np.linspace(0.0, B, 201)
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5), sharey=True)
    for ax, (title, pick) in zip(axes, PANELS):
        for m in res.methods:
            d = defs[m]
            if not ((d["trainer"] != "fas" and d["growth"] == 1) or pick(d)):
                continue
            runs = list(res.runs(setup, m).values())
            _band(ax, grid, runs, "val_mse", COLORS.get(m, "tab:brown"), f"{res.label(m)} (n={len(runs)})", True)
            if d["growth"] > 1:
                _band(ax, grid, runs, "grow_val_mse", COLORS.get(m, "tab:brown"), f"{res.label(m)}: coarse net",
                      False)
        ax.axhline(res.target(setup), color="tab:red", ls="--", lw=0.8, label="target (median tuned AdamW best)")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.set_xlabel("FLOP work units")
        ax.set_title(f"one-level methods and {title}", fontsize=10)
        ax.legend(fontsize=7, loc="upper right")
    axes[0].set_ylabel("validation MSE")
    fig.suptitle(f"{res.spec['setups'][setup]['title']}: mean over seeds (line), min–max band; dotted: the "
                 "coarse net while a nested iteration grows", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_regime_map(res: Results, reg: Mapping, path: Path) -> None:
    """The regime map's heat maps (the first study's plot) against tuned AdamW."""
    labels = [res.spec["method_defs"][m]["label"].replace(" (tuned)", "").replace(", ", "\n") for m in
              reg["variants"]]
    plot_regime(reg["cells"], reg["sizes"], reg["variants"], labels, REGIME_PANELS, path, xlabel="method",
                base="AdamW", what="method")
