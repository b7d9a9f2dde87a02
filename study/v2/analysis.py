"""The numbers of the second study's report, from its results file.

* **Readouts** at the full FLOP budget B of a set-up: best validation MSE /
  L-inf up to B (:func:`study.core.readout`), final
  ones, and the test errors of ``best.pt``. A run that diverged before B
  counts as failed (+inf).
* **FLOPs to target.** The target of a set-up is the median over seeds of
  tuned AdamW's best validation MSE at B (of an even number of seeds, the
  upper middle value, so that more than half of AdamW's seeds reach it). A run's score is the FLOP work
  units of its first evaluation at or below the target (of the fine
  network; +inf if none up to B); a method's score is the median over its
  seeds, and its ratio is that over AdamW's. The paired statistics of
  log10(FLOPs) give a geometric-mean ratio with a confidence interval; a
  seed that never reaches the target counts as reaching it at B when its
  AdamW pair does not either or when it is AdamW's (a lower bound of the
  FLOPs, so the method's ratio is over- rather than underestimated), and
  leaves the interval undefined when the method's seed alone never does.
* **Moonshot** (issue 14): a multilevel variant reaches the target with at
  most :data:`MOONSHOT_RATIO` times AdamW's FLOPs on at least
  :data:`MOONSHOT_SETUPS` set-ups (median ratio, and the paired CI of the
  ratio below 1) and is never worse than :data:`MOONSHOT_WORST`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from study.core import paired, readout
from study.v2.calibrate import rate_keys

MOONSHOT_RATIO, MOONSHOT_SETUPS, MOONSHOT_WORST = 0.7, 3, 1.1
METRICS = ("mse", "linf")
REGIME_PANELS = (("best_mse", "best validation MSE"), ("final_mse", "final validation MSE"),
                 ("test_mse", "test MSE"), ("test_linf", "test L∞"))


def median(values: Sequence[float]) -> float:
    """Median of the values (+inf counts as the largest); NaN without values."""
    return float(np.median(np.asarray(values, float))) if len(values) else math.nan


def upper_median(values: Sequence[float]) -> float:
    """The median; of an even count the upper middle value (one a run reached: more than half reach it)."""
    return float(sorted(values)[len(values) // 2]) if len(values) else math.nan


def _log(flops: float) -> float:
    """log10 of a FLOP count (+inf stays +inf: a run that never reached the target)."""
    return math.log10(max(flops, 1e-12))


def flops_to_target(rec: Mapping, target: float, budget: float) -> float:
    """FLOP work units of the first fine-net evaluation with validation MSE <= ``target`` up to ``budget``."""
    c = rec["curve"]
    for w, v in zip(c["wu_flops"], c["val_mse"]):
        if w > budget * (1 + 1e-9) + 1e-9:
            break
        if v is not None and v <= target:
            return float(w)
    return math.inf


def value(rec: Mapping, key: str, budget: float) -> float:
    """``best_mse``/``final_linf``... (validation, up to ``budget``) or ``test_mse``/``test_linf`` of one run."""
    how, metric = key.split("_")
    if how == "test":
        test = rec.get("test")
        return math.inf if not test else float(test[metric])
    return readout(rec, f"val_{metric}", "flops", budget, how)


class Results:
    """Index of a second-study results file: runs by set-up, method and seed, and their readouts."""

    def __init__(self, results: Mapping):
        self.results, self.spec = results, results["spec"]
        self.records = list(results["records"])
        self.base = self.spec["baseline"]
        self.setups = [s for s in self.spec["setups"] if self.runs(s, self.base)]
        self.methods = [m for m in self.spec["methods"] if any(self.runs(s, m) for s in self.setups)]

    def runs(self, setup: str, method: str, group: str = "main", n_train: int | None = None) -> dict[int, Mapping]:
        return {int(r["seed"]): r for r in self.records if r["setup"] == setup and r["method"] == method
                and r["group"] == group and (n_train is None or r["n_train"] == n_train)}

    def budget(self, setup: str) -> float:
        return float(self.spec["setups"][setup]["budget_wu"])

    def label(self, method: str) -> str:
        return self.spec["method_defs"][method]["label"]

    def multilevel(self) -> list[str]:
        """The methods that use the width hierarchy (FAS cycles or nested iteration)."""
        defs = self.spec["method_defs"]
        return [m for m in self.methods if defs[m]["trainer"] == "fas" or defs[m]["growth"] > 1]

    def values(self, setup: str, method: str, key: str, **runs: Any) -> dict[int, float]:
        B = self.budget(setup)
        return {k: value(r, key, B) for k, r in sorted(self.runs(setup, method, **runs).items())}

    def target(self, setup: str) -> float:
        return upper_median(list(self.values(setup, self.base, "best_mse").values()))

    def flops(self, setup: str, method: str) -> dict[int, float]:
        t, B = self.target(setup), self.budget(setup)
        return {k: flops_to_target(r, t, B) for k, r in sorted(self.runs(setup, method).items())}

    def compare(self, setup: str, method: str, key: str, base: str | None = None, **runs: Any) -> dict:
        """Paired ``method`` - baseline comparison of readout ``key`` on the seeds both have."""
        a, b = self.values(setup, method, key, **runs), self.values(setup, base or self.base, key, **runs)
        seeds = sorted(set(a) & set(b))
        return paired([a[k] for k in seeds], [b[k] for k in seeds])

    def flops_row(self, setup: str, method: str) -> dict[str, Any]:
        """Median FLOPs to target, its ratio to AdamW's, the reach count, the paired geometric-mean ratio."""
        a, b = self.flops(setup, method), self.flops(setup, self.base)
        seeds = sorted(set(a) & set(b))
        score, base = median(list(a.values())), median(list(b.values()))
        B = self.budget(setup)
        # never reached = reached at B (a lower bound: conservative for the method when AdamW's seed
        # never gets there, a tie when neither does); undefined when the method's seed alone never does
        p = paired([math.inf if math.isinf(a[k]) and math.isfinite(b[k]) else _log(min(a[k], B)) for k in seeds],
                   [_log(min(b[k], B)) for k in seeds])
        ratio = score / base if math.isfinite(base) and base > 0 else math.nan
        return {"flops": score, "ratio": ratio, "reached": sum(math.isfinite(v) for v in a.values()), "n": len(a),
                "gm": 10 ** p["mean"] if p["mean"] is not None else None,
                "ci": [10 ** x for x in p["ci"]] if p["ci"] is not None else None, "paired": p}

    def coarse_share(self, setup: str, method: str) -> float | None:
        """Share of a run's FLOPs spent on coarse nets: FAS cycles (calibrated), nested iteration (its share)."""
        d = self.spec["method_defs"][method]
        cal = (self.results.get("calibration") or {}).get(setup, {}).get("coarse_share", {})
        main, grow = rate_keys(d)
        fas = cal.get(main) if d["trainer"] == "fas" else 0.0
        if fas is None:
            return None
        if not grow:
            return fas
        shares = [float((r.get("hp") or {}).get("share", d["share"])) for r in self.runs(setup, method).values()]
        g = shares[0] if shares else float(d["share"])
        return g + (1.0 - g) * fas


def moonshot(res: Results) -> dict[str, Any]:
    """Per multilevel variant and set-up the FLOPs row, the hits, the worst ratio, and whether the target is met."""
    out: dict[str, Any] = {"variants": {}, "setups": res.setups, "complete": len(res.setups) == 4}
    for m in res.multilevel():
        rows = {s: res.flops_row(s, m) for s in res.setups if res.runs(s, m)}
        hits = [s for s, r in rows.items() if r["ratio"] <= MOONSHOT_RATIO and r["ci"] is not None
                and r["ci"][1] < 1.0]
        worst = max((r["ratio"] for r in rows.values()), default=math.nan)
        met = len(hits) >= MOONSHOT_SETUPS and not (worst > MOONSHOT_WORST) and len(rows) == len(res.setups)
        out["variants"][m] = {"rows": rows, "hits": hits, "worst": worst, "met": bool(met and out["complete"])}
    out["met"] = [m for m, v in out["variants"].items() if v["met"]]
    return out


def regime(res: Results) -> dict[str, Any] | None:
    """The regime map against tuned AdamW: per training-set size and variant, paired cells per panel."""
    reg = res.spec.get("regime")
    if not reg or reg["setup"] not in res.setups:
        return None
    s, full = reg["setup"], res.spec["setups"][reg["setup"]]["n_train"]
    variants = [m for m in reg["methods"] if m != res.base]
    out: dict[str, Any] = {"setup": s, "sizes": [*reg["n_train"], full], "variants": variants, "cells": {},
                           "adamw": {}}
    for n in out["sizes"]:
        for m in variants:
            group = "main" if n == full and m in res.spec["methods"] else "regime"
            for panel, _ in REGIME_PANELS:
                a = res.values(s, m, panel, group=group, n_train=n)
                b = res.values(s, res.base, panel, group="main" if n == full else "regime", n_train=n)
                seeds = sorted(set(a) & set(b))
                if seeds:
                    out["cells"][(n, m, panel)] = paired([a[k] for k in seeds], [b[k] for k in seeds])
        out["adamw"][n] = {p: list(res.values(s, res.base, p, group="main" if n == full else "regime",
                                              n_train=n).values()) for p, _ in REGIME_PANELS}
    return out if out["cells"] else None
