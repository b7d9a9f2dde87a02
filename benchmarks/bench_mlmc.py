"""E[Q] of the Darcy outflow to a relative RMSE at total cost: multilevel (QMC) Monte Carlo against plain FEM MC.

For each finest grid n (``--sizes``) and method (``--methods``: ``mlmc``,
``mlmc+cv``, ``mlqmc``, ``mlqmc+cv``), runs ``surrogate uq``'s estimator
(:func:`surrogate.mc.uq.estimate_to_tolerance`, levels ``--n-min`` .. n) to
relative RMSE ``--rtol`` and prints E[Q], its RMSE, what it cost and the
speed-up over plain FEM Monte Carlo at n for the same sampling error.

* Plain FEM MC is not run (hours at n = 256): its cost is Var(Q_n) / sigma^2
  samples (sigma^2 the multilevel sampling variance, Var(Q_n) telescoped from
  the levels; :mod:`surrogate.mc.uqresult`) at the seconds per draw + solve at
  n: the smaller of what the finest level measured and the median of
  ``--plain-solves`` samples timed before the runs of that n (on a shared
  machine the load changes during a run; the smaller plain cost is the
  conservative choice).
* The multilevel cost is the measured total: every sampled batch, the set-up
  (fields, FEM compilation, Sobol' engines) and, for ``+cv``, the surrogate's
  FEM data and training: a ``pde-data generate`` store at ``--surrogate-n``
  and a ``surrogate train`` run, timed in this script (wall seconds, the larger
  of that and what the store and model record). The surrogate is built once
  and shared by every ``+cv`` row, and each row counts all of it.
* ``--coverage R``: the coverage of the 95% intervals of every estimator on
  the toy model with a known mean of the tests (``tests/mlmc_toy.py``), over
  R repetitions.

Resumable: the level batches go to ``--records`` (one JSON-lines file per
configuration, committed for the figures of docs/MLMC.md), the surrogate's
store and model to ``--work``, its build times to ``--records``/surrogate.json;
a killed run continues, a finished one prints again without sampling.

    OMP_NUM_THREADS=1 python benchmarks/bench_mlmc.py [--sizes 32 128 256] [--rtol 1e-3]
        [--methods mlmc mlmc+cv mlqmc mlqmc+cv] [--coverage 1000] [--plot docs/mlmc_levels.png]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROBLEM = {"kernel": "matern", "mean": 0.0, "variance": 1.0, "length": 0.2, "nu": 1.5, "method": "fft",
           "inflow": "left", "outflow": "right", "p_in": 1.0, "p_out": 0.0}
#: The issue's targets: speed-up at equal RMSE (total cost) for plain multilevel and with the surrogate.
TARGETS = {32: (5.0, None), 128: (50.0, 150.0), 256: (200.0, 600.0)}


def build_surrogate(args) -> tuple[Path, dict]:
    """(model dir, build seconds): a store at the surrogate grid and one trained MLP, timed (or as recorded)."""
    from pde_data.generate import generate
    from surrogate import config
    from surrogate.train import QUIET, train

    work, info_path = Path(args.work), Path(args.records) / "surrogate.json"
    model = work / "model"
    spec = {"n": args.surrogate_n, "samples": args.surrogate_samples, "hidden": args.surrogate_hidden,
            "budget_wu": args.surrogate_budget}
    if info_path.exists() and (model / "best.pt").exists():
        info = json.loads(info_path.read_text())
        if info["spec"] == spec:
            return model, info
    params = work / "params.yaml"
    work.mkdir(parents=True, exist_ok=True)
    params.write_text(yaml.safe_dump({
        "darcy": {"n": args.surrogate_n, "samples": args.surrogate_samples, "seed": 0},
        "data": {"split": {"train": 0.8, "val": 0.1, "test": 0.1}},
        "models": {"darcy": {"mlp": {"hidden": args.surrogate_hidden}}},
        "train": {"trainer": "adamw", "budget_wu": args.surrogate_budget, "batch_size": 200, "lr": 0.001,
                  "device": "cpu", "eval_every_wu": 50, "checkpoint_every_wu": 10_000}}))
    t0 = time.perf_counter()
    generate("darcy", work / "store.zarr", params, progress=False)
    t1 = time.perf_counter()
    train(config.resolve(params, problem="darcy", model="mlp", trainer="adamw"), work / "store.zarr", model,
          reporting=QUIET)
    t2 = time.perf_counter()
    info = {"spec": spec, "generate_wall_s": t1 - t0, "train_wall_s": t2 - t1,
            "when": time.strftime("%Y-%m-%d %H:%M")}
    info_path.parent.mkdir(parents=True, exist_ok=True)
    info_path.write_text(json.dumps(info, indent=1) + "\n")
    return model, info


def run(n: int, method: str, args, model: Path | None):
    from surrogate.mc.uq import estimate_to_tolerance
    from surrogate.mc.uqconfig import UQConfig

    cfg = UQConfig(rtol=args.rtol, n=n, n_min=args.n_min, pilot=args.pilot, qmc=method.startswith("mlqmc"),
                   qmc_replicates=args.replicates, qmc_dims=args.qmc_dims, seed=args.seed, max_cost_s=args.max_cost,
                   records=args.records, device="cpu")
    return estimate_to_tolerance(cfg, PROBLEM, model=model if method.endswith("+cv") else None,
                                 progress=not args.no_progress)


def plain_seconds(n: int, count: int, records: Path) -> float:
    """Median seconds of one plain FEM sample at n (a point field drawn at n and one solve), ``count`` timed,
    kept in ``records``/plain.json so that a resumed or reprinted benchmark uses the same figure."""
    path = records / "plain.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    if str(n) not in known:
        known[str(n)] = _time_plain(n, count)
        records.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(known, indent=1) + "\n")
    return float(known[str(n)])


def _time_plain(n: int, count: int) -> float:
    from pde_data.darcy import DarcyProblem

    problem = DarcyProblem(n=n, **PROBLEM)
    rng = np.random.default_rng(0)
    problem.solve(problem.draw(rng))
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        problem.solve(problem.draw(rng))
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def row(n: int, method: str, result, build: dict | None, plain_direct: float) -> dict:
    """The figures of one run, the surrogate counted at the larger of its recorded and its measured seconds,
    plain FEM at the smaller of the per-sample seconds measured on the finest level and timed directly."""
    c = result.costs()
    if plain_direct < c["plain_sample_s"]:
        c["plain_cost_s"] *= plain_direct / c["plain_sample_s"]
        c["plain_sample_s"] = plain_direct
    sur = 0.0
    if build is not None:
        rec = result.surrogate["cost"]
        sur = max(rec["total_s"], build["generate_wall_s"] + build["train_wall_s"])
    total = c["sampling_s"] + c["setup_s"] + sur
    e = result.outcome.estimate
    return {"n": n, "method": method, "mean": e["mean"], "rmse": e["rmse"], "eps": result.outcome.eps,
            "status": result.outcome.status, "sampling_s": c["sampling_s"], "setup_s": c["setup_s"],
            "surrogate_s": sur, "total_s": total, "plain_s": c["plain_cost_s"], "var_q": c["var_q_finest"],
            "plain_sample_s": c["plain_sample_s"], "speedup": c["plain_cost_s"] / total,
            "speedup_sampling": c["plain_cost_s"] / c["sampling_s"]}


def target_text(r: dict) -> str:
    plain, cv = TARGETS.get(r["n"], (None, None))
    want = cv if r["method"].endswith("+cv") and cv else plain
    if want is None:
        return ""
    verdict = "met" if r["speedup"] >= want else f"MISSED by {want / r['speedup']:.2f}x"
    return f">= {want:g}x: {verdict}"


def print_rows(rows: list[dict]) -> None:
    print(f"{'n':>4s} {'method':<10s} {'E[Q]':>9s} {'RMSE':>9s} {'eps':>9s} {'sampling':>9s} {'set-up':>7s} "
          f"{'surrogate':>9s} {'total s':>8s} {'Var(Q_n)':>8s} {'plain/sample':>12s} {'plain FEM s':>11s} "
          f"{'speed-up':>9s} {'sampl.only':>10s}  target")
    for r in rows:
        print(f"{r['n']:4d} {r['method']:<10s} {r['mean']:9.5f} {r['rmse']:9.2e} {r['eps']:9.2e} "
              f"{r['sampling_s']:9.1f} {r['setup_s']:7.1f} {r['surrogate_s']:9.1f} {r['total_s']:8.1f} "
              f"{r['var_q']:8.4f} {1e3 * r['plain_sample_s']:9.1f} ms {r['plain_s']:11.4g} "
              f"{r['speedup']:8.1f}x {r['speedup_sampling']:9.1f}x  {target_text(r)}"
              + ("" if r["status"] == "converged" else f"  [{r['status']}]"))


def coverage(reps: int, rtol: float) -> None:
    """Coverage of the 95% intervals on the toy of the tests (known mean), every estimator, ``reps`` repetitions."""
    sys.path.insert(0, str(ROOT / "tests"))
    from mlmc_toy import ToyHierarchy, true_mean
    from surrogate.mc.adaptive import MultilevelRun, Plan
    from surrogate.mc.estimators import control_variate, cross_fit, plain_mc
    from surrogate.mc.records import Records

    rng = np.random.default_rng(2024)
    base = math.exp(0.08) + 1.0

    def covers(est, truth):
        return est["ci95_low"] <= truth <= est["ci95_high"]

    def features(u):
        return np.stack([np.ones(len(u)), u[:, 0], u[:, 0] ** 2, u[:, 1]], axis=1)

    hits = {k: 0 for k in ("plain MC", "control variate (nested)", "control variate (reused pairs)",
                           "cross-fitted CV (K = 5)", "MLMC", "MLMC + CV", "MLQMC (R = 16)")}
    fold = np.arange(100) % 5
    for r in range(reps):
        x = rng.standard_normal((2060, 3))
        f, g = ToyHierarchy.p(x, 0), ToyHierarchy.g(x) + 0.3
        hits["plain MC"] += covers(plain_mc(f[:200]), base)
        hits["control variate (nested)"] += covers(control_variate(f[:60], g[:60], g[:2000]), base)
        hits["control variate (reused pairs)"] += covers(control_variate(f[2000:], g[2000:], g[:2000], shared=0), base)
        xs, fs = x[:100], f[:100]
        coef = [np.linalg.lstsq(features(xs[fold != j]), fs[fold != j], rcond=None)[0] for j in range(5)]
        paired = np.einsum("ij,ij->i", features(xs), np.stack([coef[k] for k in fold]))
        hits["cross-fitted CV (K = 5)"] += covers(cross_fit(fs, paired, fold, np.stack([features(x[100:]) @ c
                                                                                       for c in coef])), base)
        for name, cv, reps_q in (("MLMC", False, 0), ("MLMC + CV", True, 0), ("MLQMC (R = 16)", False, 16)):
            plan = Plan(rtol=rtol, pilot=32, replicates=reps_q)
            out = MultilevelRun(ToyHierarchy(3, seed=10_000 + r, cv=cv, qmc=reps_q > 0), plan, Records(None, {}))
            hits[name] += covers(out.execute().estimate, true_mean(3))
    sd = math.sqrt(0.95 * 0.05 / reps)
    print(f"coverage of the 95% intervals on the toy model, {reps} repetitions (binomial sd {100 * sd:.1f}%; "
          f"target 95% +- 3%); multilevel runs to rtol {rtol:g}")
    for name, h in hits.items():
        share = h / reps
        print(f"  {name:<32s} {100 * share:5.1f}%  {'met' if abs(share - 0.95) <= 0.03 else 'MISSED'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 128, 256])
    ap.add_argument("--methods", nargs="+", default=["mlmc", "mlmc+cv", "mlqmc", "mlqmc+cv"],
                    choices=["mlmc", "mlmc+cv", "mlqmc", "mlqmc+cv"])
    ap.add_argument("--rtol", type=float, default=1e-3)
    ap.add_argument("--n-min", type=int, default=4)
    ap.add_argument("--pilot", type=int, default=64)
    ap.add_argument("--replicates", type=int, default=16, help="QMC randomizations")
    ap.add_argument("--qmc-dims", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-cost", type=float, default=7200.0, help="sampling budget of one run, seconds")
    ap.add_argument("--surrogate-n", type=int, default=8, help="grid of the control-variate surrogate")
    ap.add_argument("--surrogate-samples", type=int, default=4000)
    ap.add_argument("--surrogate-hidden", type=int, nargs="+", default=[64, 64])
    ap.add_argument("--surrogate-budget", type=float, default=1000.0, help="training work units")
    ap.add_argument("--records", default=str(ROOT / "benchmarks" / "records" / "mlmc"))
    ap.add_argument("--work", default=str(ROOT / "data" / "bench-mlmc"), help="the surrogate's store and model")
    ap.add_argument("--coverage", type=int, default=0, metavar="R", help="also the coverage study, R repetitions")
    ap.add_argument("--coverage-rtol", type=float, default=1e-2, help="rtol of the multilevel runs of the study")
    ap.add_argument("--plain-solves", type=int, default=16, help="plain FEM samples timed at each n")
    ap.add_argument("--plot", default=None, metavar="PNG", help="MLMC diagnostic plot of the last mlmc run")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--verbose", action="store_true", help="print every run's full report (per-level table)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    if args.coverage:
        coverage(args.coverage, args.coverage_rtol)
    build, model = None, None
    if any(m.endswith("+cv") for m in args.methods):
        model, build = build_surrogate(args)
        print(f"surrogate: {args.surrogate_samples} FEM samples at n = {args.surrogate_n} "
              f"({build['generate_wall_s']:.1f} s) + MLP {args.surrogate_hidden} trained {args.surrogate_budget:g} WU "
              f"({build['train_wall_s']:.1f} s), built {build['when']}")
    rows = []
    for n in args.sizes:
        plain_direct = plain_seconds(n, args.plain_solves, Path(args.records))
        print(f"plain FEM sample at n = {n}: {1e3 * plain_direct:.1f} ms (median of {args.plain_solves} draws + "
              "solves, timed before the first run of this n)")
        for method in args.methods:
            result = run(n, method, args, model)
            if args.verbose:
                print(f"--- n = {n}, {method}\n{result.report()}")
            rows.append(row(n, method, result, build if method.endswith("+cv") else None, plain_direct))
            if args.plot and method == "mlmc":
                result.plot(args.plot)
    print(f"E[Q] to relative RMSE {args.rtol:g}, levels n = {args.n_min}..n; speed-up = plain FEM MC cost at n for "
          "the same sampling error / total multilevel cost (= variance reduction at equal total cost)")
    print_rows(rows)


if __name__ == "__main__":
    main()
