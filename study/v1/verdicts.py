"""Every paired comparison of the first study: FAS runs against the baselines, and the regime map's cells."""

from __future__ import annotations

from typing import Any

from study.core import curve_key, readout
from study.v1.index import Study

BASELINES = ("sgd", "adam")
BASE_NAME = {"sgd": "SGD", "adam": "Adam"}
METRICS = (("mse", "L2 (MSE)"), ("linf", "L∞"))
METRIC_NAME = {"mse": "L2", "linf": "L∞"}
REGIME_PANELS = (("best_mse", "best validation MSE"), ("final_mse", "final validation MSE"),
                 ("best_linf", "best validation L∞"), ("final_linf", "final validation L∞"))


def baselines(study: Study) -> list[str]:
    return [b for b in BASELINES if b in study.methods]


def main_verdicts(study: Study) -> list[dict[str, Any]]:
    """Each FAS net (fine and first auxiliary) against each baseline, per set-up, accounting, metric, best/final."""
    out = []
    for s in study.setups:
        for measure, _, B in study.accountings(s):
            for how in ("best", "final"):
                for m in study.fas_methods():
                    for aux in (False, True):
                        for metric, _ in METRICS:
                            for base in baselines(study):
                                p = study.compare(s, m, base, curve_key(metric, aux), measure, B, how,
                                                  base_key=f"val_{metric}")
                                out.append({"setup": s, "fas": m, "aux": aux, "metric": metric, "how": how,
                                            "measure": measure, "budget": B, "baseline": base, **p})
    return out


def regime_map(study: Study) -> dict[str, Any] | None:
    """The regime map (None without regime runs): per training-set size, SGD's readouts and FAS - SGD cells.

    The full-set row reads the main runs' curves at the regime budget.
    Returns ``setup``, ``budget``, ``sizes``, ``fas`` (the FAS methods),
    ``rows`` (per size: SGD's best validation MSEs and overfitting ratios)
    and ``cells`` (``(size, fas method, panel)`` -> paired comparison).
    """
    reg = study.spec.get("regime")
    if not reg or not any(r["group"] == "regime" for r in study.records):
        return None
    s = reg["setup"]
    full_n = study.spec["setups"][s]["n_train"]
    budget = float(reg["budget_wu"])
    out: dict[str, Any] = {"setup": s, "budget": budget, "sizes": [*reg["n_train"], full_n],
                           "fas": [m for m in reg["methods"] if m != "sgd"], "rows": [], "cells": {}}
    for n in out["sizes"]:
        runs = {"group": "main", "n_train": None} if n == full_n else {"group": "regime", "n_train": n}
        sgd = study.runs(s, "sgd", **runs)
        seeds = [k for k in range(reg["seeds"]) if k in sgd]
        final_over_best, val_over_train = study.overfit(s, "sgd", budget, seeds, **runs)
        out["rows"].append({"n_train": n, "final_over_best": final_over_best, "val_over_train": val_over_train,
                            "sgd_best": [readout(sgd[k], "val_mse", "flops", budget, "best") for k in seeds]})
        for m in out["fas"]:
            for panel, _ in REGIME_PANELS:
                how, metric = panel.split("_")
                out["cells"][(n, m, panel)] = study.compare(s, m, "sgd", f"val_{metric}", "flops", budget, how,
                                                            seeds=seeds, **runs)
    return out
