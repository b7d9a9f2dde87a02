"""The first study's plot: validation curves of a set-up, mean and min-max band over seeds, FAS with and
without the tau correction."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from study.core import curve_on_grid
from study.v1.index import Study

COLORS = {"sgd": "k", "adam": "tab:gray", 2: "tab:blue", 3: "tab:orange", 4: "tab:green", 5: "tab:red"}


def plot_setup(study: Study, setup: str, path: Path) -> None:
    """Validation MSE, L-inf and training MSE against FLOP work units; FAS with tau above, without below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    B = study.budget(setup)
    grid = np.linspace(0.0, B, 201)
    variants = [("minibatch", "FAS, τ minibatch"), ("none", "FAS, τ none")]
    cols = [("val_mse", "validation MSE"), ("val_linf", "validation L∞"), ("train_mse", "training MSE (subset)")]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5), sharex=True)
    for i, (tau, title) in enumerate(variants):
        for j, (key, ylabel) in enumerate(cols):
            ax = axes[i, j]
            for m in study.methods:
                d = study.spec["method_defs"][m]
                if d["trainer"] == "fas" and d["tau"] != tau:
                    continue
                runs = list(study.runs(setup, m).values())
                if not runs:
                    continue
                color = COLORS.get(d["levels"] if d["trainer"] == "fas" else m, None)
                keys = [(key, "-", d["label"])]
                if d["trainer"] == "fas" and key.startswith("val_"):
                    keys.append(("aux_" + key, ":", d["label"] + " aux 1"))
                for k, ls, lab in keys:
                    Y = curve_on_grid(runs, k, grid)
                    with np.errstate(all="ignore"), warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN columns past a divergence
                        mean = np.nanmean(Y, axis=0)
                        lo, hi = np.nanmin(Y, axis=0), np.nanmax(Y, axis=0)
                    ax.plot(grid, mean, ls, color=color, lw=1.4, label=f"{lab} (n={len(runs)})")
                    if ls == "-":
                        ax.fill_between(grid, lo, hi, color=color, alpha=0.15, lw=0)
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            if i == 1:
                ax.set_xlabel("FLOP work units")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{title}: {ylabel}", fontsize=10)
    handles, labels = [], []
    for ax in axes[:, 0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(f"{study.spec['setups'][setup]['title']}: mean over seeds (line), min–max band; "
                 "dotted: first auxiliary net", fontsize=11)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
