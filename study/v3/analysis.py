"""The third study's figures, from the final runs' records and the searches: every number of its report.

* **Reference** of a set-up: the better single-level baseline (tuned AdamW or tuned SGD), by the median over
  seeds of the best validation MSE at the budget B.
* **Targets**: the reference's median best validation MSE at B/4, B/2 and B.
* **FLOPs and seconds to a target**: the FLOP work units (fine-network runs of the budget) and the seconds of
  training (evaluations included) at the first evaluation whose best-so-far validation MSE reaches the target;
  a run that does not reach it is "not reached".
* **Paired comparison** with the reference, seed by seed: the geometric mean of the ratios
  ``method / reference``, a two-sided t-test on their logarithms, Holm's step-down correction over every
  (set-up, method, target) test of the FLOPs table (the family), and a Bonferroni interval at level
  1 - 0.05/m, which lies below 1 whenever Holm's test rejects at 0.05 with the same sign.
* **Total cost to a tuned model**: the search's FLOPs (in full-width runs: each trial's proxy runs' FLOPs
  over one full-width run's) plus one final training run, and the seconds of both (the final run's: the mean
  over seeds), against tuned AdamW's, beside the paired ratio of test MSEs.
* **Coarse-level against full-width tuning** of one method: the paired ratio of final test MSEs and the ratio
  of the searches' costs.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from study.core import readout
from study.v3.methods import METHODS

ALPHA = 0.05


def to_target(record: Mapping, target: float) -> tuple[float, float | None]:
    """(FLOP work units, seconds) at the first evaluation whose best-so-far validation MSE is <= ``target``;
    (inf, None) when the run never reaches it."""
    c = record["curve"]
    best = math.inf
    for i, v in enumerate(c["val_mse"]):
        if v is not None and math.isfinite(v):
            best = min(best, v)
        if best <= target:
            seconds = c.get("elapsed_s")
            return float(c["wu_flops"][i]), None if seconds is None else float(seconds[i])
    return math.inf, None


def best_at(record: Mapping, budget: float) -> float:
    return readout(record, "val_mse", "flops", budget, "best")


def reference(records: Mapping[str, Sequence[Mapping]], baselines: Sequence[str], budget: float) -> str | None:
    """The baseline with the lower median best validation MSE at ``budget`` (None: no baseline finished)."""
    medians = {b: statistics.median(best_at(r, budget) for r in records[b]) for b in baselines if records.get(b)}
    return min(medians, key=medians.get) if medians else None


def targets(ref_records: Sequence[Mapping], budget: float, fractions: Sequence[float]) -> dict[float, float]:
    return {f: statistics.median(best_at(r, f * budget) for r in ref_records) for f in fractions}


def _by_seed(records: Sequence[Mapping]) -> dict[int, Mapping]:
    return {int(r["seed"]): r for r in records}


def ratio_test(values: Mapping[int, float], ref: Mapping[int, float]) -> dict[str, Any]:
    """Seed-paired ``values / ref``: geometric mean, t-test on the log ratios; ``missing`` counts the seeds where
    either did not reach (inf) or is absent."""
    seeds = sorted(set(values) & set(ref))
    pairs = [(values[s], ref[s]) for s in seeds]
    ok = [(a, b) for a, b in pairs if math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0]
    out = {"n": len(pairs), "missing": len(pairs) - len(ok), "gm": None, "p": None, "logs": None}
    if len(ok) < 2 or out["missing"]:
        return out
    logs = np.log([a / b for a, b in ok])
    sd = float(np.std(logs, ddof=1))
    p = float(stats.ttest_1samp(logs, 0.0).pvalue) if sd > 0 else (0.0 if logs.mean() != 0 else 1.0)
    out.update(gm=float(np.exp(logs.mean())), p=p, logs=logs.tolist())
    return out


def interval(logs: Sequence[float], level: float) -> list[float]:
    """A t interval of the geometric-mean ratio at ``level``."""
    x = np.asarray(logs)
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1)) * float(np.std(x, ddof=1)) / math.sqrt(len(x))
    return [float(np.exp(x.mean() - half)), float(np.exp(x.mean() + half))]


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (in the input order)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def to_target_table(results: Mapping, spec: Mapping) -> list[dict[str, Any]]:
    """One row per (set-up, method, target): FLOPs and seconds to the target against the reference."""
    rows = []
    for setup, by_method in results["finals"].items():
        budget = spec["setups"][setup]["budget_wu"]
        ref = reference(by_method, spec["baselines"], budget)
        if ref is None:
            continue
        goals = targets(by_method[ref], budget, spec["fractions"])
        for method, records in by_method.items():
            if method == ref or not records:
                continue
            for f, goal in goals.items():
                mine = {s: to_target(r, goal) for s, r in _by_seed(records).items()}
                theirs = {s: to_target(r, goal) for s, r in _by_seed(by_method[ref]).items()}
                rows.append({"setup": setup, "method": method, "reference": ref, "fraction": f, "target": goal,
                             "flops": ratio_test({s: v[0] for s, v in mine.items()},
                                                 {s: v[0] for s, v in theirs.items()}),
                             "seconds": ratio_test({s: v[1] if v[1] is not None else math.inf
                                                    for s, v in mine.items()},
                                                   {s: v[1] if v[1] is not None else math.inf
                                                    for s, v in theirs.items()})})
    tested = [r for r in rows if r["flops"]["p"] is not None]
    level = 1 - ALPHA / max(len(tested), 1)
    for row, p_holm in zip(tested, holm([r["flops"]["p"] for r in tested])):
        row["flops"]["p_holm"] = p_holm
        row["flops"]["ci"] = interval(row["flops"]["logs"], level)
    for row in rows:
        if row["seconds"]["logs"]:
            row["seconds"]["ci"] = interval(row["seconds"]["logs"], 1 - ALPHA)
    return rows


def test_mse(records: Sequence[Mapping]) -> dict[int, float]:
    return {int(r["seed"]): float(r["test"]["mse"]) if r.get("test") else math.inf for r in records}


def paired_mean_ratio(a: Mapping[int, float], b: Mapping[int, float]) -> float | None:
    seeds = [s for s in set(a) & set(b) if math.isfinite(a[s]) and math.isfinite(b[s]) and b[s] > 0]
    return statistics.mean(a[s] / b[s] for s in seeds) if seeds else None


def search_and_final_cost(search: Mapping, finals: Sequence[Mapping]) -> tuple[float, float]:
    """A method's search and one final run: in training runs and in seconds (the finals' mean wall time)."""
    s = search["search"]
    return s["cost_runs"] + 1.0, s["seconds"] + statistics.mean(r["wall_s"] for r in finals)


def total_cost(results: Mapping, spec: Mapping) -> list[dict[str, Any]]:
    """Per (set-up, method): the search's and one final run's cost, against tuned AdamW's, and test MSE."""
    rows = []
    for setup, by_method in results["finals"].items():
        searches = results["searches"].get(setup, {})
        if "adamw" not in searches or not by_method.get("adamw"):
            continue

        base_runs, base_s = search_and_final_cost(searches["adamw"], by_method["adamw"])
        for method, finals in by_method.items():
            if method not in searches or not finals:
                continue
            runs, seconds = search_and_final_cost(searches[method], finals)
            rows.append({"setup": setup, "method": method, "cost_runs": runs, "seconds": seconds,
                         "runs_ratio": runs / base_runs, "seconds_ratio": seconds / base_s,
                         "test_mse_ratio": paired_mean_ratio(test_mse(finals), test_mse(by_method["adamw"]))})
    return rows


def coarse_tuning(results: Mapping) -> list[dict[str, Any]]:
    """Per (set-up, coarse-tuned method): its final test MSE and its search's cost against the full-width one's."""
    rows = []
    for setup, by_method in results["finals"].items():
        searches = results["searches"].get(setup, {})
        for method, finals in by_method.items():
            full = METHODS[method].full_width
            if full is None or not finals or not by_method.get(full) or full not in searches:
                continue
            rows.append({"setup": setup, "method": method, "full": full,
                         "test_mse_ratio": paired_mean_ratio(test_mse(finals), test_mse(by_method[full])),
                         "search_cost_ratio": (searches[method]["search"]["cost_runs"]
                                               / searches[full]["search"]["cost_runs"])})
    return rows


def chosen_values(results: Mapping) -> list[dict[str, Any]]:
    """Per search: each tuned value and where it sits in its log range (0: low end, 1: high end)."""
    rows = []
    for setup, searches in results["searches"].items():
        for method, rec in searches.items():
            for key, value in rec["best"]["values"].items():
                low, high = rec["space"][key]
                where = (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
                rows.append({"setup": setup, "method": method, "key": key, "value": value, "low": low,
                             "high": high, "position": where, "trials": rec["search"]["trials"],
                             "cost_runs": rec["search"]["cost_runs"], "seconds": rec["search"]["seconds"]})
    return rows
