"""The tables of the second study's report: (a) errors at the budget, (b) FLOPs to target, (d) paired
statistics, (e) the regime map, the chosen configurations and where the FLOPs go."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from study.core import LEVEL, count, fmt, fmt_ms, fmt_pair, mean_sd, rel_verdict, table
from study.v2.analysis import MOONSHOT_RATIO, REGIME_PANELS, Results, median

READOUTS = (("best_mse", "val MSE"), ("best_linf", "val L∞"), ("test_mse", "test MSE"), ("test_linf", "test L∞"))


def _title(res: Results, setup: str) -> str:
    return res.spec["setups"][setup]["title"]


def _ms(res: Results, setup: str, method: str, key: str) -> str:
    return fmt_ms(*mean_sd(res.values(setup, method, key).values()))


def errors(res: Results) -> list[str]:
    """(a) Mean ± sd over seeds of the best validation and the test errors at the full FLOP budget."""
    L = ["## (a) Errors at the full FLOP budget", "",
         "Mean ± sd over the final seeds. *val*: the best validation value up to the budget; *test*: the errors "
         "of `best.pt` (the net with the best validation MSE) on the store's test split, which neither the "
         "search nor the selection saw. A run that diverged counts as failed (*div.*).", ""]
    for s in res.setups:
        rows = [[res.label(m)] + [_ms(res, s, m, k) for k, _ in READOUTS] for m in res.methods]
        L += [f"### {_title(res, s)} (budget {count(res.budget(s))} FLOP WU)", ""]
        L += table(["method", *[name for _, name in READOUTS]], rows) + [""]
    return L


def _ratio(row: Mapping) -> str:
    r = row["ratio"]
    return "n/a" if math.isnan(r) else ("never" if math.isinf(r) else f"{r:.2f}×")


def _gm(row: Mapping) -> str:
    if row["ci"] is None:
        return "n/a (a seed never reached it where AdamW's did)"
    return f"{row['gm']:.2f}× [{row['ci'][0]:.2f}, {row['ci'][1]:.2f}]"


def flops_table(res: Results) -> list[str]:
    """(b) FLOPs to reach tuned AdamW's target, per method, with the ratio to AdamW's."""
    L = ["## (b) FLOPs to reach tuned AdamW's target", "",
         "Target of a set-up: the median over seeds of tuned AdamW's best validation MSE at the full budget (of "
         "an even number of seeds the upper middle value). "
         "A run's score is the FLOP work units of its first evaluation at or below the target (of the fine "
         "network; a nested iteration's coarse phase does not count), infinite if it never gets there within "
         "the budget; the resolution is the evaluation interval. *median*: over seeds (infinite when more than "
         "half never reach the target); *ratio*: median over AdamW's median; *paired*: the geometric mean over "
         f"seeds of the per-seed ratio with its t-based {100 * LEVEL:.0f}% CI (log10 FLOPs). By design about "
         "half of AdamW's seeds never reach its median: a seed that never reaches the target counts there as "
         "reaching it at the full budget (a lower bound of its FLOPs, so a method's ratio is overestimated, "
         "not flattered, and a pair where neither reaches it is a tie); the interval is undefined (n/a) when "
         "the method's seed alone never reaches the target.", ""]
    for s in res.setups:
        rows = []
        for m in res.methods:
            r = res.flops_row(s, m)
            rows.append([res.label(m), f"{r['reached']}/{r['n']}", "never" if math.isinf(r["flops"]) else
                         fmt(r["flops"]), _ratio(r), _gm(r)])
        L += [f"### {_title(res, s)}: target {fmt(res.target(s))}", ""]
        L += table(["method", "seeds reaching", "median FLOP WU", "ratio to AdamW", "paired ratio [CI]"], rows)
        L.append("")
    return L


def paired_tables(res: Results) -> list[str]:
    """(d) Each method against tuned AdamW, same seed, as in the first study."""
    n = res.spec["seeds"]
    L = ["## (d) Paired differences against tuned AdamW (method − AdamW, same seed)", "",
         f"Each cell: mean difference (in % of AdamW's mean) [t-based {100 * LEVEL:.0f}% CI]; seeds where the "
         "method is better / pairs and the exact two-sided sign-test p-value; verdict (**win**: CI below 0, "
         f"**tie**: CI contains 0, **loss**: CI above 0). Lower is better. {n} seeds; scipy.stats.", ""]
    for s in res.setups:
        rows = [[res.label(m)] + [fmt_pair(res.compare(s, m, k)) for k, _ in READOUTS]
                for m in res.methods if m != res.base]
        L += [f"### {_title(res, s)}", ""] + table(["method", *[name for _, name in READOUTS]], rows) + [""]
    return L


def chosen(res: Results) -> list[str]:
    """The search of every tuned method: trials, divergences and the chosen settings."""
    tuning = res.results.get("tuning") or {}
    rows = []
    for s in res.spec["setups"]:
        for m in res.spec["methods"]:
            t = tuning.get(f"{s}/{m}")
            if t is None:
                continue
            div = sum(r.get("status") == "diverged" for r in t["trials"])
            hp = ", ".join(f"{k} {fmt(v)}" for k, v in (t.get("params") or {}).items()) or "pending"
            rows.append([_title(res, s), res.label(m), f"{t['n_done']}", str(div), str(t.get("best", "—")),
                         fmt(t.get("best_value")), hp])
    if not rows:
        return []
    L = ["## The searches and the chosen settings", "",
         "Per set-up and tuned method: trials finished, trials that diverged (scored +inf), the chosen trial "
         "(lowest best validation MSE at the full budget, tuning seed) and its settings. The journals are "
         "`tuning/<setup>/<method>.journal` beside the results file.", ""]
    return L + table(["set-up", "method", "trials", "diverged", "chosen", "its val MSE", "settings"], rows) + [""]


def regime_section(res: Results, reg: Mapping, png_name: str) -> list[str]:
    """(e) Training-set size × levels against tuned AdamW."""
    s = res.spec["setups"][reg["setup"]]
    L = [f"## (e) Regime map against tuned AdamW ({s['title']})", "",
         f"Training-set sizes {', '.join(count(n) for n in reg['sizes'])} (the last is the full set, whose 2-level "
         f"cells are the final runs), {count(res.budget(reg['setup']))} FLOP work units, seeds "
         f"{', '.join(map(str, range(res.spec['regime']['seeds'])))}. Every method runs with the settings its "
         "search chose at full size (2 levels), also with 3 levels. The smaller sets are the first n samples "
         "of the store; validation is the next block. AdamW's rows: mean ± sd; the others: paired change of the "
         "mean against tuned AdamW at the same size, in % of AdamW's mean, with the verdict.", ""]
    rows = []
    for n in reg["sizes"]:
        rows.append([count(n), f"{res.label(res.base)}, absolute"]
                    + [fmt_ms(*mean_sd(reg["adamw"][n][p])) for p, _ in REGIME_PANELS])
        rows += [[count(n), res.label(m)] + [rel_verdict(reg["cells"][(n, m, p)]) if (n, m, p) in reg["cells"]
                                             else "n/a" for p, _ in REGIME_PANELS] for m in reg["variants"]]
    L += table(["train samples", "method", *[name for _, name in REGIME_PANELS]], rows)
    return L + ["", f"![regime map]({png_name})", ""]


def flops_go(res: Results, moon: Mapping) -> list[str]:
    """Where a multilevel run's FLOPs go, and how far it is from the target at the budget."""
    rows = []
    for m, v in moon["variants"].items():
        for s, r in v["rows"].items():
            share = res.coarse_share(s, m)
            best = median(list(res.values(s, m, "best_mse").values()))
            rows.append([_title(res, s), res.label(m), "n/a" if share is None else f"{100 * share:.0f}%",
                         _ratio(r), fmt(best / res.target(s)) if res.target(s) > 0 else "n/a"])
    if not rows:
        return []
    return ["## Where the FLOPs go", "",
            "*coarse share*: the part of a run's FLOPs spent on coarser nets: for FAS the coarse smoothing and "
            "the τ-correction passes (counted by the trainer's work counter in the calibration), for a nested "
            "iteration its tuned budget share (plus the FAS share of the rest). *ratio*: FLOPs to the target "
            f"over AdamW's (the Moonshot asks ≤ {MOONSHOT_RATIO}). *best / target*: the median best validation "
            "MSE at the full budget over the target (above 1: the method does not reach AdamW's median at any "
            "budget up to B).", ""] + table(["set-up", "method", "coarse share", "ratio", "best / target"],
                                             rows) + [""]


def summary_numbers(res: Results) -> dict[str, Any]:
    """The best method per set-up by mean test MSE (for the conclusion)."""
    out = {}
    for s in res.setups:
        means = {m: mean_sd(res.values(s, m, "test_mse").values())[0] for m in res.methods}
        means = {m: v for m, v in means.items() if math.isfinite(v)}
        if means:
            out[s] = min(means, key=means.get)
    return out
