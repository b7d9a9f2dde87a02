"""``RESULTS_v3.md`` and its figure, from ``results.json`` alone (:mod:`study.v3.analysis` computes every number).

    python -m study.v3.report [--results results/study/v3/results.json] [--docs docs]
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from study.core import fmt, relative, table
from study.v3 import analysis
from study.v3.methods import METHODS

REPORT, FIGURE = "RESULTS_v3.md", "study_v3_curves.png"
WIDTH_METHODS = ("ni", "ni-mup", "fas-mup", "ni-mup@coarse", "fas-mup@coarse")


def _ratio(t: Mapping[str, Any]) -> str:
    if t["gm"] is None:
        return f"not reached ({t['missing']}/{t['n']})" if t["missing"] else "-"
    ci = t.get("ci")
    return f"{t['gm']:.2f}x" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def _label(method: str) -> str:
    return METHODS[method].label if method in METHODS else method


def _setup_title(spec: Mapping, setup: str) -> str:
    return spec["setups"][setup]["title"]


def what_ran(spec: Mapping, command: str) -> list[str]:
    t = spec["tuning"]
    lines = ["## What ran", "",
             f"Set-ups (the second study's sizes): "
             f"{', '.join(s['title'] + ' ' + str(s['budget_wu']) + ' WU' for s in spec['setups'].values())}; "
             f"{spec['seeds']} final seeds per method. Every method trains with a cosine schedule to the budget.",
             "",
             f"Searches: an equal FLOP budget of {t['budget']:g} full-width runs per method searched at full width "
             f"(a coarse-level search: {METHODS['ni-mup@coarse'].tune_share:g} of it), each trial the mean best "
             f"validation MSE of {t['seeds']} training seeds, TPE after {t['startup']} random trials "
             "(`surrogate tune`).", "",
             *table(["method", "trainer", "growth", "parametrization", "searched", "where"],
                    [[_label(m), d["trainer"], str(d["growth"]), d["parametrization"],
                      ", ".join(f"{k} [{lo:g}, {hi:g}]" for k, (lo, hi) in d["space"].items()),
                      "full width" if d["tune_level"] == 0 else f"level {d['tune_level']}"]
                     for m, d in spec["method_defs"].items()]),
             "", f"Command: `{command}`", ""]
    return lines


def chosen(results: Mapping, spec: Mapping) -> list[str]:
    rows = analysis.chosen_values(results)
    body = [[_setup_title(spec, r["setup"]), _label(r["method"]), r["key"], f"{r['value']:.3g}",
             f"[{r['low']:g}, {r['high']:g}]", f"{r['position']:.2f}" + (" (edge)" if not 0.05 < r["position"] < 0.95
                                                                        else ""),
             str(r["trials"]), f"{r['cost_runs']:.2f}", f"{r['seconds']:.0f}"] for r in rows]
    return ["## Searches: the chosen values and where they sit", "",
            "Position: 0 at the low end of the log range, 1 at the high end; (edge) within 5% of an end.", "",
            *table(["set-up", "method", "key", "chosen", "range", "position", "trials", "cost (runs)", "seconds"],
                   body), ""]


def finals(results: Mapping, spec: Mapping) -> list[str]:
    body = []
    for setup, by_method in results["finals"].items():
        for method, records in by_method.items():
            mses = [v for v in analysis.test_mse(records).values() if math.isfinite(v)]
            best = [analysis.best_at(r, spec["setups"][setup]["budget_wu"]) for r in records]
            body.append([_setup_title(spec, setup), _label(method), str(len(records)),
                         fmt(sum(mses) / len(mses)) if mses else "-", fmt(min(best)), fmt(max(best))])
    return ["## Final runs: test MSE", "", *table(["set-up", "method", "seeds", "mean test MSE",
                                                   "best val MSE (min)", "best val MSE (max)"], body), ""]


def to_target(rows: list[dict], spec: Mapping) -> list[str]:
    body = [[_setup_title(spec, r["setup"]), _label(r["method"]), _label(r["reference"]),
             f"B{'/' + str(int(1 / r['fraction'])) if r['fraction'] < 1 else ''}", fmt(r["target"]),
             _ratio(r["flops"]), fmt(r["flops"].get("p_holm")), _ratio(r["seconds"])] for r in rows]
    return ["## FLOPs and seconds to the reference's targets", "",
            "Ratios method / reference, paired over seeds (geometric mean); FLOPs with a Bonferroni interval and "
            "Holm-adjusted p over the whole table, seconds with a 95% interval (this CPU, other work running "
            "beside the study).", "",
            *table(["set-up", "method", "reference", "target at", "val MSE", "FLOPs to target", "Holm p",
                    "seconds to target"], body), ""]


def costs(rows: list[dict], spec: Mapping) -> list[str]:
    body = [[_setup_title(spec, r["setup"]), _label(r["method"]), f"{r['cost_runs']:.2f}", f"{r['seconds']:.0f}",
             f"{r['runs_ratio']:.2f}x", f"{r['seconds_ratio']:.2f}x", fmt(r["test_mse_ratio"])] for r in rows]
    return ["## Total cost to a tuned model (search + one final run)", "",
            *table(["set-up", "method", "cost (full-width runs)", "seconds", "/ AdamW (FLOPs)", "/ AdamW (seconds)",
                    "test MSE / AdamW"], body), ""]


def coarse(rows: list[dict], spec: Mapping) -> list[str]:
    body = [[_setup_title(spec, r["setup"]), _label(r["method"]), fmt(r["test_mse_ratio"]),
             f"{r['search_cost_ratio']:.2f}x"] for r in rows]
    return ["## Tuning on the coarse level against tuning at full width", "",
            *table(["set-up", "method", "test MSE / full-width-tuned", "search cost / full-width search"], body), ""]


def verdicts(targets: list[dict], cost_rows: list[dict], coarse_rows: list[dict], spec: Mapping) -> list[str]:
    """The issue's targets, each met or missed, from the tables above."""
    n_setups = len(spec["setups"])
    lines = ["## Targets", ""]
    for method in (m for m in WIDTH_METHODS if m in spec["methods"]):
        wins = {}
        for r in targets:
            if r["method"] != method or r["fraction"] < 0.5:
                continue
            f, s = r["flops"], r["seconds"]
            ok = (f["gm"] is not None and f["gm"] <= 0.7 and f.get("p_holm", 1) < analysis.ALPHA
                  and f["ci"][1] < 1 and s["gm"] is not None and s["gm"] <= 0.8)
            wins.setdefault(r["setup"], []).append(ok)
        met = sum(all(v) for v in wins.values())
        lines.append(f"- {_label(method)} against the best tuned single-level baseline, FLOPs to the B/2 and B "
                     f"targets <= 0.7x (Holm) and seconds <= 0.8x: met on {met} of {n_setups} set-ups "
                     f"({'met' if met >= 3 else 'missed'}; target: >= 3).")
    for r in coarse_rows:
        ok = r["test_mse_ratio"] is not None and r["test_mse_ratio"] <= 1.05 and r["search_cost_ratio"] <= 0.3
        lines.append(f"- {_setup_title(spec, r['setup'])}, {_label(r['method'])}: test MSE "
                     f"{fmt(r['test_mse_ratio'])}x of full-width tuning at {r['search_cost_ratio']:.2f}x its search "
                     f"cost ({'met' if ok else 'missed'}; target <= 1.05x at <= 0.3x).")
    for r in cost_rows:
        if r["method"] == "adamw":
            continue
        ok = r["runs_ratio"] <= 0.5 and r["test_mse_ratio"] is not None and r["test_mse_ratio"] <= 1.0
        if ok:
            lines.append(f"- {_setup_title(spec, r['setup'])}, {_label(r['method'])}: total cost "
                         f"{r['runs_ratio']:.2f}x tuned AdamW's at test MSE {fmt(r['test_mse_ratio'])}x (met).")
    if not any(r["method"] != "adamw" and r["runs_ratio"] <= 0.5 and (r["test_mse_ratio"] or 9) <= 1.0
               for r in cost_rows):
        lines.append("- Total cost to a tuned model <= 0.5x tuned AdamW's at equal test MSE: met by no method on "
                     "any set-up (missed).")
    return [*lines, ""]


def figure(results: Mapping, spec: Mapping, path: Path) -> None:
    """Median best-so-far validation MSE against FLOP work units, per set-up and method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    setups = list(results["finals"])
    fig, axes = plt.subplots(1, max(len(setups), 1), figsize=(4.2 * max(len(setups), 1), 3.6), squeeze=False)
    for ax, setup in zip(axes[0], setups):
        for method, records in results["finals"][setup].items():
            curves = []
            for r in records:
                v = np.array([np.inf if x is None else x for x in r["curve"]["val_mse"]], dtype=float)
                curves.append((np.array(r["curve"]["wu_flops"]), np.minimum.accumulate(v)))
            if curves:
                grid = curves[0][0]
                med = np.median([np.interp(grid, w, c) for w, c in curves], axis=0)
                ax.plot(grid, med, label=_label(method), lw=1.2)
        ax.set(title=_setup_title(spec, setup), xlabel="FLOP work units", yscale="log")
    axes[0][0].set_ylabel("best validation MSE (median over seeds)")
    axes[0][-1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(results: Mapping, docs: Path) -> Path:
    spec = results["spec"]
    targets = analysis.to_target_table(results, spec)
    cost_rows, coarse_rows = analysis.total_cost(results, spec), analysis.coarse_tuning(results)
    docs.mkdir(parents=True, exist_ok=True)
    figure(results, spec, docs / FIGURE)
    lines = ["# Study 3: does the width hierarchy pay? (generated by `python -m study.v3`)", "",
             *verdicts(targets, cost_rows, coarse_rows, spec), *what_ran(spec, results["command"]),
             *chosen(results, spec), *finals(results, spec), f"![best validation MSE]({FIGURE})", "",
             *to_target(targets, spec), *costs(cost_rows, spec), *coarse(coarse_rows, spec)]
    path = docs / REPORT
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    from study.core import edition_dir

    p = argparse.ArgumentParser(prog="python -m study.v3.report", description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default=str(edition_dir("v3") / "results.json"))
    p.add_argument("--docs", default="docs")
    args = p.parse_args(argv)
    print(relative(write_report(json.loads(Path(args.results).read_text()), Path(args.docs))))


if __name__ == "__main__":
    main()
