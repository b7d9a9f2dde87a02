"""The second study's conclusion, every statement counted from the numbers (:mod:`study.v2.analysis`)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from study.core import LEVEL, regime_cells, verdict_counts
from study.v2.analysis import MOONSHOT_RATIO, MOONSHOT_SETUPS, MOONSHOT_WORST, Results
from study.v2.sections import summary_numbers

MOONSHOT = (f"a multilevel variant reaches tuned AdamW's target with at most {MOONSHOT_RATIO}× its FLOPs on at "
            f"least {MOONSHOT_SETUPS} of the 4 set-ups (median ratio, and the paired {100 * LEVEL:.0f}% CI of the "
            f"ratio below 1) and is never worse than {MOONSHOT_WORST}×")


def _r(x: float) -> str:
    return "never" if math.isinf(x) else ("n/a" if math.isnan(x) else f"{x:.2f}×")


def moonshot_lines(res: Results, moon: Mapping) -> list[str]:
    """The Moonshot target, whether it is met, and for each variant how close it came."""
    head = f"**Moonshot** ({MOONSHOT}): "
    if not moon["variants"]:
        return [head + "**not assessed**: no multilevel run has finished yet.", ""]
    if not moon["complete"]:
        head += (f"**not assessed** on all set-ups: {len(moon['setups'])} of 4 have finished runs; on those, ")
    elif moon["met"]:
        head += f"**met** by {', '.join(res.label(m) for m in moon['met'])}. "
    else:
        head += "**not met**: no multilevel variant gets there. "
    title = {s: res.spec["setups"][s]["title"] for s in res.setups}
    parts = []
    for m, v in moon["variants"].items():
        ratios = ", ".join(f"{title[s]} {_r(r['ratio'])}" for s, r in v["rows"].items())
        parts.append(f"{res.label(m)}: {len(v['hits'])} set-up(s) at ≤ {MOONSHOT_RATIO}× with a CI below 1 "
                     f"(ratios {ratios}; worst {_r(v['worst'])})")
    return [head + "; ".join(parts) + ".", ""]


def _closest(res: Results, moon: Mapping) -> list[str]:
    """Where the FLOPs of the closest variant go, when the target is not met."""
    if moon["met"] or not moon["variants"]:
        return []
    best = min(moon["variants"], key=lambda m: (-len(moon["variants"][m]["hits"]),
                                                sorted(r["ratio"] for r in moon["variants"][m]["rows"].values())))
    v = moon["variants"][best]
    shares = {s: res.coarse_share(s, best) for s in v["rows"]}
    parts = [f"{res.spec['setups'][s]['title']} {100 * sh:.0f}%" for s, sh in shares.items() if sh is not None]
    return [f"**Where the FLOPs go.** The closest variant is {res.label(best)}. The share of its FLOPs spent on "
            f"coarser nets is {', '.join(parts) or 'n/a'}; that work is what it has to earn back against AdamW, "
            "which spends every FLOP on the fine net. The table *Where the FLOPs go* gives it for every variant, "
            "with how far each stays from the target at the full budget.", ""]


def _against_adamw(res: Results) -> list[str]:
    """Each non-baseline method against tuned AdamW: verdict counts on best validation and test MSE."""
    out = [f"**Against tuned AdamW** (paired, {res.spec['seeds']} seeds, best validation and test MSE on "
           f"{len(res.setups)} set-up(s)):", ""]
    for m in res.methods:
        if m == res.base:
            continue
        vs = [res.compare(s, m, k) for s in res.setups for k in ("best_mse", "test_mse")]
        out.append(f"- {res.label(m)}: {verdict_counts(vs)}.")
    return out + [""]


def _tuning_effect(res: Results) -> list[str]:
    """Tuned against paper settings, for SGD and FAS-SGD (test MSE)."""
    pairs = [(t, p) for t, p in (("sgd", "sgd-paper"), ("fas-sgd", "fas-sgd-paper")) if {t, p} <= set(res.methods)]
    if not pairs:
        return []
    parts = []
    for tuned, paper in pairs:
        vs = [res.compare(s, tuned, "test_mse", base=paper) for s in res.setups]
        parts.append(f"{res.label(tuned)} against {res.label(paper)}: {verdict_counts(vs)}")
    return ["**Effect of tuning** (test MSE, tuned − paper settings, per set-up): " + "; ".join(parts) + ".", ""]


def _best(res: Results) -> list[str]:
    best = summary_numbers(res)
    if not best:
        return []
    return ["**Lowest mean test MSE** per set-up: " + ", ".join(
        f"{res.spec['setups'][s]['title']} {res.label(m)}" for s, m in best.items()) + ".", ""]


def _regime(reg: Mapping | None) -> list[str]:
    if not reg:
        return []
    cells = [{"n_train": n, "fas": m, "panel": p, "verdict": v["verdict"]} for (n, m, p), v in reg["cells"].items()]
    n_win = sum(c["verdict"] == "win" for c in cells)
    n_loss = sum(c["verdict"] == "loss" for c in cells)
    return [f"**Regime map** (against tuned AdamW at the same training-set size, {len(cells)} cells): better at "
            f"{regime_cells(cells, 'win')}; worse at {regime_cells(cells, 'loss')}; the other "
            f"{len(cells) - n_win - n_loss} cells are ties.", ""]


def conclusion(res: Results, moon: Mapping, reg: Mapping | None) -> list[str]:
    """The conclusion's paragraphs."""
    verdict = ("met by " + ", ".join(res.label(m) for m in moon["met"]) if moon["met"] else
               "not met" if moon["complete"] and moon["variants"] else "not assessed")
    out = [f"**Moonshot: {verdict}** (the numbers per variant and set-up are in *Answer* at the top and in (b)).", ""]
    out += _closest(res, moon) + _best(res) + _against_adamw(res)
    out += _tuning_effect(res) + _regime(reg)
    out.append(f"Caveats: every verdict is a paired comparison at the {100 * LEVEL:.0f}% level without correction "
               "for multiple testing; the sizes are reduced (see *Set-ups*), and each method had the same, small "
               f"search budget ({res.spec['tuning']['trials']} trials at one tuning seed), so a method that needs "
               "a finer search than that is handicapped equally for every method.")
    return out
