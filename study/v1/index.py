"""The first study's index of a results file: runs by set-up, method and seed, their readouts and comparisons."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from study.core import mean_sd, paired, readout


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
        """:func:`~study.core.paired` comparison of ``fas`` against ``base`` on the seeds both have.

        ``runs`` (``seeds``, ``group``, ``n_train``) selects the runs of both methods, as in :meth:`values`.
        """
        a = self.values(setup, fas, key, measure, budget, how, **runs)
        b = self.values(setup, base, base_key or key, measure, budget, how, **runs)
        seeds = sorted(set(a) & set(b))
        return paired([a[s] for s in seeds], [b[s] for s in seeds])
