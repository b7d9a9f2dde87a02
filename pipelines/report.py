"""DVC `report` stage: the paper's Tables 1-2 for this run, and its figures.

Reads what the train, evaluate, mc_qoi and uq_qoi stages wrote and produces

* ``reports/summary.md``: best validation and training MSE ("L2") and maximum
  error ("L-infinity") for every problem, model and trainer, the first
  auxiliary network of each FAS run, the test-split metrics, and the Monte
  Carlo estimate of the Darcy outflow QoI;
* ``reports/val_curves_<problem>.png``: validation MSE against work units
  of every training run of the problem (fine and, for FAS, auxiliary network).

Every number comes from the JSON files of the stages before; nothing is typed in.

Usage: ``python -m pipelines.report [--models models] [--logs logs] [--metrics metrics] [--out reports]``
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _read_curve(path: Path) -> tuple[list[float], list[float]]:
    """A dvclive TSV (step, value); the step is the work-unit count."""
    if not path.exists():
        return [], []
    with path.open() as fh:
        rows = list(csv.reader(fh, delimiter="\t"))[1:]
    return [float(r[0]) for r in rows], [float(r[1]) for r in rows]


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def collect_runs(models: Path, metrics: Path) -> list[dict]:
    """One record per trained model directory: its training summary and test metrics."""
    runs = []
    for summary_path in sorted(models.glob("*/train_summary.json")):
        key = summary_path.parent.name
        runs.append({"key": key, "summary": json.loads(summary_path.read_text()),
                     "test": _read_json(metrics / "eval" / f"{key}.meta.json")})
    return runs


def training_table(runs: list[dict]) -> list[str]:
    """Best losses over training, as the paper's Tables 1-2 (validation and training split)."""
    lines = ["| problem | model | trainer | network | val L2 (MSE) | val L-inf | train L2 (MSE) | train L-inf "
             "| work units |",
             "|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        s = run["summary"]
        trainer = s["trainer"] + (f" ({s['levels']} levels)" if s["trainer"] == "fas" else "")
        best, best_train = s["best"], s.get("best_train", {})
        lines.append(f"| {s['problem']} | {s['model']} | {trainer} | fine | {_fmt(best['mse'])} | "
                     f"{_fmt(best['linf'])} | {_fmt(best_train.get('mse'))} | {_fmt(best_train.get('linf'))} | "
                     f"{s['work_units']:.0f} |")
        if "aux_best" in s:
            aux = s["aux_best"]
            lines.append(f"| {s['problem']} | {s['model']} | {trainer} | first auxiliary | {_fmt(aux['mse'])} | "
                         f"{_fmt(aux['linf'])} | - | - | {s['work_units']:.0f} |")
    return lines


def test_table(runs: list[dict]) -> list[str]:
    """Test-split errors of the best (by validation) fine and auxiliary networks, in physical units; relative
    L2 per sample (mean, median, 95th percentile), nRMSE = RMSE / std of the true values, Pearson correlation."""
    lines = ["| problem | model | trainer | network | target | test MSE | test L-inf | rel. L2 mean | rel. L2 median "
             "| rel. L2 p95 | nRMSE | corr. |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        test = run["test"]
        if test is None:
            continue
        s = run["summary"]
        for network, label in (("fine", "fine"), ("aux", "first auxiliary")):
            for target, m in (test.get(network) or {}).items():
                lines.append(f"| {s['problem']} | {s['model']} | {s['trainer']} | {label} | {target} | "
                             f"{_fmt(m['mse'])} | {_fmt(m['linf'])} | {_pct(m.get('rel_l2_mean'))} | "
                             f"{_pct(m.get('rel_l2_median'))} | {_pct(m.get('rel_l2_p95'))} | "
                             f"{_fmt(m.get('nrmse'))} | {_fmt(m.get('corr'))} |")
    return lines


def mc_section(mc: dict | None) -> list[str]:
    """The mc_qoi stage's estimates of E[Q] side by side, with the cost comparison."""
    if mc is None:
        return []
    lines = ["## Monte Carlo estimate of the Darcy outflow QoI", "",
             f"Surrogate `{mc['model']}`, {mc['n']} fresh fields, {mc['fem_n']} FEM solves on the first of them.", "",
             "| estimator | samples | E[Q] | standard error | 95% CI |", "|---|---|---|---|---|"]
    rows = (("surrogate only (estimates E[Q_sur], biased by the surrogate error)", "surrogate", mc["n"]),
            ("plain FEM", "fem", mc["fem_n"]),
            ("control variate (FEM + surrogate, unbiased)", "control_variate", f"{mc['fem_n']} + {mc['n']}"))
    for label, key, samples in rows:
        est = mc.get(key)
        if est:
            lines.append(f"| {label} | {samples} | {_fmt(est['mean'])} | {_fmt(est['se'])} | "
                         f"[{_fmt(est['ci95_low'])}, {_fmt(est['ci95_high'])}] |")
    cost, err = mc.get("cost", {}), mc.get("surrogate_error")
    if err:
        lines += ["", f"Surrogate error on the FEM pairs: mean {_fmt(err['mean'])} +- {_fmt(err['se'])}, "
                      f"RMSE {_fmt(err['rmse'])}, max {_fmt(err['max_abs'])}."]
    if "variance_reduction_equal_cost" in cost:
        lines += ["", "Variance reduction of the control variate against plain FEM Monte Carlo of the same "
                      f"sampling cost: x{_fmt(cost['variance_reduction_equal_cost'])}."]
    if "variance_reduction_equal_total_cost" in cost:
        lines += ["", f"Counting the surrogate's data and training ({_fmt(cost['fixed_s'])} s): "
                      f"x{_fmt(cost['variance_reduction_equal_total_cost'])} against plain FEM Monte Carlo of the "
                      f"same total cost ({_fmt(cost['cost_total_s'])} s)."]
    return lines + [""]


def uq_section(uq: dict | None) -> list[str]:
    """The uq_qoi stage: E[Q] to a tolerance by multilevel Monte Carlo over grids, level by level."""
    if uq is None:
        return []
    est, cost, tol = uq["estimate"], uq["cost"], uq["tolerance"]
    lines = ["## E[Q] to a tolerance: multilevel Monte Carlo over grids", "",
             f"{uq['target']}: {_fmt(est['mean'])} +- {_fmt(est['se'])} (standard error; 95% CI "
             f"[{_fmt(est['ci95_low'])}, {_fmt(est['ci95_high'])}]), tolerance {_fmt(tol['eps'])}, {uq['status']}, "
             f"{'quasi-' if uq.get('qmc') else ''}Monte Carlo.", "",
             "| level | samples | mean | variance | seconds per sample |", "|---|---|---|---|---|"]
    lines += [f"| {' '.join(lv['label'].split())} | {lv['samples']} | {_fmt(lv['mean'])} | {_fmt(lv['var'])} | "
              f"{_fmt(lv['cost_per_sample_s'])} |" for lv in uq["levels"]]
    lines += ["", f"Total cost {_fmt(cost['total_s'])} s (set-up included) against {_fmt(cost['plain_cost_s'])} s "
                  f"for plain FEM Monte Carlo on the finest grid to the same standard error: "
                  f"x{_fmt(cost['speedup_total'])}."]
    return lines + [""]


def _section(render, path: Path) -> list[str]:
    """``render`` of the stage output ``path``; one line naming the file when it is not what the stage writes."""
    try:
        return render(_read_json(path))
    except (ValueError, KeyError, TypeError, IndexError) as err:
        raise SystemExit(f"report: {path} is not what its stage writes ({type(err).__name__}: {err}); "
                         "rerun that stage (dvc repro)") from None


def plot_curves(runs: list[dict], logs: Path, out: Path) -> list[Path]:
    """Validation MSE against work units: one panel per model, one line per trainer (+ FAS aux net)."""
    written = []
    for problem in sorted({r["summary"]["problem"] for r in runs}):
        mine = [r for r in runs if r["summary"]["problem"] == problem]
        model_names = sorted({r["summary"]["model"] for r in mine})
        fig, axes = plt.subplots(1, len(model_names), figsize=(5.5 * len(model_names), 4), squeeze=False)
        for ax, model in zip(axes[0], model_names):
            for run in (r for r in mine if r["summary"]["model"] == model):
                curves = logs / run["key"] / "plots" / "metrics"
                label = run["summary"]["trainer"]
                ax.semilogy(*_read_curve(curves / "val" / "mse.tsv"), label=f"{label} (fine)")
                wu, mse = _read_curve(curves / "aux_val" / "mse.tsv")
                if wu:
                    ax.semilogy(wu, mse, "--", label=f"{label} (first auxiliary)")
            ax.set(title=f"{problem} {model}", xlabel="work units", ylabel="validation MSE")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
        fig.tight_layout()
        path = out / f"val_curves_{problem}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def write_report(models: Path, logs: Path, metrics: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    runs = collect_runs(models, metrics)
    if not runs:
        raise SystemExit(f"report: no trained models under {models}/ (expected */train_summary.json)")
    figures = plot_curves(runs, logs, out)
    lines = ["# Summary of the pipeline run", "",
             "Generated by `python -m pipelines.report` from the JSON outputs of the train, evaluate and "
             "mc_qoi and uq_qoi stages (`dvc repro` regenerates it). Errors are in physical units; "
             "L2 = mean squared error, L-inf = maximum absolute error, as in the paper's tables.", "",
             "## Best losses during training (paper Tables 1-2)", "", *training_table(runs), "",
             "## Test split (best-by-validation networks)", "", *test_table(runs), "",
             *_section(mc_section, metrics / "mc.meta.json"),
             *_section(uq_section, metrics / "uq.meta.json"),
             "## Figures", ""]
    lines += [f"![{p.stem}]({p.name})" for p in figures]
    lines += [f"![{name}]({name})" for name in ("mc/mc_qoi_hist.png", "uq/uq_levels.png") if (out / name).exists()]
    lines += [f"![predictions {r['key']}](predictions/{r['key']}/samples.png)" for r in runs
              if (out / "predictions" / r["key"] / "samples.png").exists()]
    path = out / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=Path("models"), help="train stage outputs")
    parser.add_argument("--logs", type=Path, default=Path("logs"), help="dvclive directories of the train stage")
    parser.add_argument("--metrics", type=Path, default=Path("metrics"), help="evaluate and mc_qoi metrics")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="report directory")
    args = parser.parse_args(argv)
    print(f"wrote {write_report(args.models, args.logs, args.metrics, args.out)}")


if __name__ == "__main__":
    main()
