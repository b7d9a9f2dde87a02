"""The first study's generated prose: the conclusion drawn from the verdicts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from study.core import LEVEL, fmt, regime_cells, verdict_counts
from study.v1.index import Study
from study.v1.verdicts import BASE_NAME, BASELINES, METRIC_NAME, METRICS, baselines

PAPER_COARSE_COST = 0.25   # the paper's cost of a level-1 pass relative to the fine net (4^-l)


def _item(v: Mapping) -> str:
    return f"{v['fas']}{' aux' if v['aux'] else ''} {METRIC_NAME[v['metric']]}"


def _compress(sel: Sequence[Mapping], universe: Sequence[Mapping]) -> str:
    """A short description of the comparisons ``sel`` out of ``universe`` (same set-up and baseline)."""
    if not sel:
        return "none"
    if len(sel) == len(universe):
        return f"all {len(sel)}"
    parts, rest = [], list(sel)
    for metric in ("mse", "linf"):
        for aux in (False, True):
            u = [v for v in universe if v["metric"] == metric and v["aux"] == aux]
            s = [v for v in rest if v["metric"] == metric and v["aux"] == aux]
            if u and len(s) == len(u) and len(u) > 1:
                parts.append(f"every {'aux ' if aux else ''}{METRIC_NAME[metric]} comparison")
                rest = [v for v in rest if v not in s]
    parts += [_item(v) for v in rest]
    return ", ".join(parts)


class _Verdicts:
    """The main verdicts of a study, selectable by field (``setup``, ``fas``, ``baseline``, ``how`` ...)."""

    def __init__(self, study: Study, verdicts: Mapping):
        self.study, self.main = study, verdicts["main"]
        self.title = {s: study.spec["setups"][s]["title"] for s in study.setups}

    def sel(self, **kw) -> list[Mapping]:
        return [v for v in self.main if all(v[k] == x for k, x in kw.items())]


def _paper_claim(vs: _Verdicts) -> list[str]:
    """The paper's headline claim (Tables 1-2): two-level FAS beats one-level SGD in best validation L2 and L-inf."""
    if not {"fas2", "sgd"} <= set(vs.study.methods):
        return []
    parts = []
    for measure, mname in (("flops", "FLOP"), ("paper", "paper")):
        rep, notrep = [], []
        for s in vs.study.setups:
            for metric, _ in METRICS:
                v = vs.sel(setup=s, fas="fas2", aux=False, metric=metric, how="best", measure=measure, baseline="sgd")
                if v:
                    (rep if v[0]["verdict"] == "win" else notrep).append(
                        f"{vs.title[s]} {METRIC_NAME[metric]} ({v[0]['verdict']})")
        parts.append(f"under {mname} accounting it reproduces for {', '.join(rep) if rep else 'none'} and "
                     f"does not for {', '.join(notrep) if notrep else 'none'}")
    return ["**The paper's claim** (Tables 1–2: two-level FAS reaches a lower best validation L2 and L∞ "
            "than one-level SGD on every set-up): " + "; ".join(parts) + ".", ""]


def _against(vs: _Verdicts, b: str) -> list[str]:
    """FAS against one baseline under FLOP accounting: the totals, then per set-up what wins and loses."""
    alls = vs.sel(how="best", measure="flops", baseline=b)
    out = [f"**Against {BASE_NAME[b]} (FLOP accounting):** {verdict_counts(alls)} in {len(alls)} comparisons.", ""]
    for s in vs.study.setups:
        u = vs.sel(setup=s, how="best", measure="flops", baseline=b)
        w, lo, t = ([v for v in u if v["verdict"] == k] for k in ("win", "loss", "tie"))
        if not w and not lo:
            out.append(f"- {vs.title[s]}: FAS ties {BASE_NAME[b]} in all {len(u)} comparisons.")
            continue
        if not w:
            head = f"FAS never beats {BASE_NAME[b]}"
        elif not lo:
            head = f"FAS beats {BASE_NAME[b]} in {len(w)} of {len(u)} comparisons and never loses"
        else:
            head = f"mixed: {len(w)} wins and {len(lo)} losses against {BASE_NAME[b]}"
        out.append(f"- {vs.title[s]}: {head}. Wins: {_compress(w, u)}. Losses: {_compress(lo, u)}. Ties: {len(t)}.")
    return out + [""]


def _better_than_both(vs: _Verdicts) -> list[str]:
    both = []
    for s in vs.study.setups:
        for m in vs.study.fas_methods():
            for aux in (False, True):
                for metric, _ in METRICS:
                    v = vs.sel(setup=s, fas=m, aux=aux, metric=metric, how="best", measure="flops")
                    if v and all(x["verdict"] == "win" for x in v):
                        both.append(f"{vs.title[s]} {_item(v[0])}")
    return [f"**FAS better than both baselines** (FLOP accounting, CI below 0 against each): "
            f"{', '.join(both) if both else 'nowhere'}.", ""]


def _overfitting(vs: _Verdicts) -> list[str]:
    """Where the one-level net overfits, and how FAS fares there (the regularisation claim)."""
    study = vs.study
    if "sgd" not in study.methods:
        return []
    gap = {s: study.overfit(s, "sgd", study.budget(s))[1] for s in study.setups}
    gap = {s: g for s, g in gap.items() if math.isfinite(g)}
    if not gap:
        return []
    worst = max(gap, key=gap.get)
    there = vs.sel(setup=worst, how="best", measure="flops", baseline="sgd")
    return ["**Overfitting.** Final validation over final training MSE of one-level SGD at the FLOP "
            "budget (mean over seeds; well above 1 means the net fits its training set much better "
            "than unseen data): " + ", ".join(f"{vs.title[s]} {fmt(g)}" for s, g in gap.items())
            + f". The set-up that overfits most is {vs.title[worst]}; there FAS against SGD (best values, "
            f"FLOP accounting) has {verdict_counts(there)} in {len(there)} comparisons.", ""]


def _accounting(vs: _Verdicts) -> list[str]:
    """Which best-value verdicts change when the same runs are read under the paper's work count."""
    idx = {(v["setup"], v["fas"], v["aux"], v["metric"], v["how"], v["baseline"], v["measure"]): v for v in vs.main}
    rank = {"loss": 0, "tie": 1, "win": 2}
    groups: dict[tuple[str, str, str], list[Mapping]] = {}
    n_up = n_down = 0
    for (s, m, aux, metric, how, b, measure), v in idx.items():
        if measure != "flops" or how != "best":
            continue
        vp = idx.get((s, m, aux, metric, how, b, "paper"))
        if vp is None or vp["verdict"] == v["verdict"] or "n/a" in (v["verdict"], vp["verdict"]):
            continue
        up = rank[vp["verdict"]] > rank[v["verdict"]]
        n_up += up
        n_down += not up
        groups.setdefault((s, b, f"{v['verdict']} → {vp['verdict']}"), []).append(v)
    setups = vs.study.spec["setups"]
    ratios = ", ".join(f"{vs.title[s]} {setups[s]['flops_ratio_level1']:.2f}" for s in vs.study.setups
                       if "flops_ratio_level1" in setups[s])
    out = [f"**Effect of the accounting.** The true FLOP cost of a level-1 pass relative to the fine net is "
           f"{ratios} (the paper assumes {PAPER_COARSE_COST:g}). Reading the same runs under the paper's count "
           f"changes {n_up + n_down} of {len(vs.sel(how='best', measure='flops'))} best-value verdicts, {n_up} in "
           f"FAS's favour and {n_down} against it" + (":" if groups else "."), ""]
    order = {s: i for i, s in enumerate(vs.study.setups)}
    for (s, b, change), changed in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], BASELINES.index(kv[0][1]),
                                                                          kv[0][2])):
        out.append(f"- {vs.title[s]} vs {BASE_NAME[b]}, {change}: "
                   f"{_compress(changed, vs.sel(setup=s, how='best', measure='flops', baseline=b))}.")
    return out + ([""] if groups else [])


def _final_values(vs: _Verdicts) -> list[str]:
    fin = vs.sel(how="final", measure="flops")
    if not fin:
        return []
    by_base = {b: [v for v in fin if v["baseline"] == b] for b in baselines(vs.study)}
    parts = [f"against {BASE_NAME[b]} {verdict_counts(f)} in {len(f)}" for b, f in by_base.items()]
    return ["**Final values** (the net at the end of the FLOP budget, no early stopping): "
            + "; ".join(parts) + " (details in the verdict matrix).", ""]


def _regime(verdicts: Mapping) -> list[str]:
    reg = verdicts["regime"]
    if not reg:
        return []
    n_win = sum(v["verdict"] == "win" for v in reg)
    n_loss = sum(v["verdict"] == "loss" for v in reg)
    out = [f"**Regime map** (FAS with τ against SGD, {len(reg)} cells): FAS helps at "
           f"{regime_cells(reg, 'win')}; it hurts at {regime_cells(reg, 'loss')}; the other "
           f"{len(reg) - n_win - n_loss} cells are ties."]
    sgd = verdicts["regime_sgd"]
    if sgd:
        fb = max(sgd, key=lambda r: r["final_over_best"])
        vt = max(sgd, key=lambda r: r["val_over_train"])
        rising = fb["final_over_best"] > 1.0
        out.append(f"Overfitting of the one-level SGD runs in the map: the largest ratio of final to best "
                   f"validation MSE is {fmt(fb['final_over_best'])} ({fb['n_train']} samples), so "
                   + (f"validation loss rises before the end of the budget at {fb['n_train']} samples"
                      if rising else
                      "in no cell does the validation loss rise before the end of the budget")
                   + f"; the largest ratio of validation to training MSE is {fmt(vt['val_over_train'])} "
                   f"({vt['n_train']} samples).")
    return out + [""]


def conclusion(study: Study, verdicts: Mapping) -> list[str]:
    """The conclusion's paragraphs, every statement counted from ``verdicts`` (:func:`study.v1.report.build_report`)."""
    vs = _Verdicts(study, verdicts)
    out = ["Verdicts below are for the best validation values (the paper's tables), first under FLOP "
           "accounting (the study's budget), then what changes under the paper's accounting. \"fasL\" is the "
           "L-level FAS net, \"aux\" its first auxiliary net; L2 = MSE.", ""]
    out += _paper_claim(vs)
    for b in baselines(study):
        out += _against(vs, b)
    out += _better_than_both(vs) + _overfitting(vs) + _accounting(vs) + _final_values(vs) + _regime(verdicts)
    n_cmp = len(vs.main) + len(verdicts["regime"])
    out.append(f"Caveat: this report makes {n_cmp} paired comparisons at the {100 * LEVEL:.0f}% level without "
               f"correction for multiple testing; with no true difference about {100 * (1 - LEVEL):.0f}% of them "
               "would still show as a win or a loss. "
               "Isolated verdicts deserve less weight than patterns that repeat across metrics, seeds and set-ups.")
    return out
