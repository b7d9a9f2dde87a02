"""Reading the study's records: a run's curve at a budget, and an index of all runs of a results file.

A metric "at budget B in measure M" uses the evaluations whose M-count (FLOP
or paper work units) is <= B: *best* is their minimum (the paper's tables),
*final* the last one.  A run that diverged before B counts as failed (inf) at B.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from study.stats import mean_sd, paired


def cut(record: Mapping, measure: str, budget: float) -> list[int] | None:
    """Indices of the evaluations with ``measure`` count <= budget; None if the run failed before."""
    c = record["curve"]
    wu = c[f"wu_{measure}"]
    idx = [i for i, w in enumerate(wu) if w <= budget * (1 + 1e-9) + 1e-9]
    if record.get("status") != "ok":
        last = wu[-1] if wu else 0.0
        if last < budget * (1 - 1e-9):
            return None
    return idx


def readout(record: Mapping, key: str, measure: str, budget: float, how: str) -> float:
    """``best`` (min) or ``final`` (last) of curve ``key`` up to ``budget`` in ``measure``; inf if failed."""
    idx = cut(record, measure, budget)
    if idx is None:
        return math.inf
    vals = record["curve"].get(key)
    if vals is None:
        return math.nan
    sel = [vals[i] for i in idx if vals[i] is not None and math.isfinite(vals[i])]
    if not sel:
        return math.nan
    if how == "best":
        return min(sel)
    if how == "final":
        v = vals[idx[-1]]
        return v if v is not None and math.isfinite(v) else math.nan
    raise ValueError(f"how = {how!r}: allowed: 'best', 'final'")


def curve_key(metric: str, aux: bool, split: str = "val") -> str:
    """The curve column of ``metric`` on ``split``, of the first auxiliary net when ``aux`` (validation only)."""
    return f"{'aux_' if aux and split == 'val' else ''}{split}_{metric}"


class Study:
    """Index of the records of a results file."""

    def __init__(self, results: Mapping):
        self.results = results
        self.spec = results["spec"]
        self.records = list(results["records"])
        self.setups = [s for s in self.spec["setups"] if any(r["setup"] == s and r["group"] == "main"
                                                              for r in self.records)]
        self.methods = list(self.spec["methods"])

    def runs(self, setup: str, method: str, group: str = "main", n_train: int | None = None) -> dict[int, Mapping]:
        """The runs of one set-up and method by seed (``group`` "regime" with ``n_train`` for the regime map)."""
        out = {}
        for r in self.records:
            if r["setup"] == setup and r["method"] == method and r["group"] == group and (
                    n_train is None or r.get("n_train") == n_train):
                out[int(r["seed"])] = r
        return out

    def fas_methods(self) -> list[str]:
        return [m for m in self.methods if self.spec["method_defs"][m]["trainer"] == "fas"]

    def label(self, method: str, aux: bool = False) -> str:
        return self.spec["method_defs"][method]["label"] + (" — aux 1" if aux else "")

    def budget(self, setup: str) -> float:
        return float(self.spec["setups"][setup]["budget_wu"])

    def paper_budget(self, setup: str) -> float:
        """B_paper: the largest eval multiple every finished FAS run of the setup reached in paper units."""
        ev = float(self.spec["setups"][setup]["eval_every_wu"])
        reach = []
        for m in self.fas_methods():
            for r in self.runs(setup, m).values():
                if r.get("status") == "ok" and r["curve"]["wu_paper"]:
                    reach.append(r["curve"]["wu_paper"][-1])
        if not reach:
            return self.budget(setup)
        return max(ev, math.floor(min(reach) / ev + 1e-9) * ev)

    def accountings(self, setup: str) -> list[tuple[str, str, float]]:
        """``(measure, name, budget)`` of the FLOP and the paper accounting."""
        return [("flops", "FLOP WU", self.budget(setup)), ("paper", "paper WU", self.paper_budget(setup))]

    def values(self, setup: str, method: str, key: str, measure: str, budget: float, how: str,
               seeds: Sequence[int] | None = None, group: str = "main", n_train: int | None = None) -> dict[int, float]:
        """:func:`readout` of every run (or of ``seeds``) by seed."""
        runs = self.runs(setup, method, group, n_train)
        seeds = sorted(runs) if seeds is None else seeds
        return {s: readout(runs[s], key, measure, budget, how) for s in seeds if s in runs}

    def overfit(self, setup: str, method: str, budget: float, seeds: Sequence[int] | None = None,
                group: str = "main", n_train: int | None = None) -> tuple[float, float]:
        """Mean over seeds of final/best validation MSE and of final validation/final training MSE at ``budget``."""
        kw = {"seeds": seeds, "group": group, "n_train": n_train}
        best = self.values(setup, method, "val_mse", "flops", budget, "best", **kw)
        fin = self.values(setup, method, "val_mse", "flops", budget, "final", **kw)
        tr = self.values(setup, method, "train_mse", "flops", budget, "final", **kw)
        fb = mean_sd([fin[k] / best[k] for k in fin if 0 < best.get(k, 0) < math.inf])[0]
        vt = mean_sd([fin[k] / tr[k] for k in fin if 0 < tr.get(k, 0) < math.inf])[0]
        return fb, vt

    def compare(self, setup: str, fas: str, base: str, key: str, measure: str, budget: float, how: str,
                base_key: str | None = None, **runs: Any) -> dict:
        """:func:`~study.stats.paired` comparison of ``fas`` against ``base`` on the seeds both have.

        ``runs`` (``seeds``, ``group``, ``n_train``) selects the runs of both methods, as in :meth:`values`.
        """
        a = self.values(setup, fas, key, measure, budget, how, **runs)
        b = self.values(setup, base, base_key or key, measure, budget, how, **runs)
        seeds = sorted(set(a) & set(b))
        return paired([a[s] for s in seeds], [b[s] for s in seeds])
