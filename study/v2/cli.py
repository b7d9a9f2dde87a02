"""``python -m study.v2``: the second study -- search, final runs, regime map, ``results.json``, report.

    python -m study.v2 [--quick] [--estimate] [--report-only] [--setups ...] [--jobs N] [--trials T] ...

Order: the stores (shared with the first study, made with ``pde-data
generate`` when missing), a calibration that prints the expected wall time,
then every unfinished search (one Optuna journal per set-up and method),
then every final and regime-map run whose record is missing or stale, then
``OUT/results.json`` and the report (``--docs``/RESULTS.md + PNGs). Each
step skips what is done, so a killed call resumes where it stopped; a
record is done when it is current for its run (:mod:`study.core.runkey`),
a search when its journal holds a study with its key
(:mod:`study.v2.tuning`). ``--estimate`` also says how much is done when the
stores exist; ``--report-only`` needs them (a record is current only for
the store it was trained on) -- ``python -m study.v2.report`` writes the
report from an existing ``results.json`` alone.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from study.core import ROOT, command_line, edition_paths, ensure_store, hold_lock, relative, store_fingerprint

PROG = "python -m study.v2"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny preset (2 trials per method, 2 seeds; a few "
                   "minutes), a smoke test of the tooling")
    p.add_argument("--out", default=None,
                   help="study directory (default: results/study/v2 ; quick: $TMPDIR/fas-study-v2-quick)")
    p.add_argument("--docs", default=None, help="where RESULTS.md and the PNGs go (default: docs/ ; quick: OUT/docs)")
    p.add_argument("--data", default=None, help="directory of the stores (default: results/study/data, shared "
                   "with the first study ; quick: OUT/data)")
    p.add_argument("--params", default=str(ROOT / "params.yaml"), help="params.yaml for the generators (the PDE "
                   "families and the grid); the runs' training configs are the study's own and do not read it")
    p.add_argument("--setups", nargs="+", default=None, metavar="SETUP", help="search and run only these "
                   "set-ups (poisson_fc poisson_cnn darcy_fc darcy_cnn); the report covers all finished ones")
    p.add_argument("--trials", type=int, default=None, help="trials per tuned method (default: the preset's, "
                   "16; quick 2); the same for every method")
    p.add_argument("--seeds", type=int, default=None, help="final seeds per configuration (default 5; quick 2)")
    p.add_argument("--fas-match", choices=["before", "after"], default=None,
                   help="train.fas.match of every run: HEM matching before or after pre-smoothing (default: "
                        "after, as in Algorithm 2; set explicitly, whatever the trainer's default)")
    p.add_argument("--jobs", type=int, default=1, help="searches or runs in parallel (processes; default 1)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per process (default: CPUs / jobs)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"], help="training device (default cpu)")
    p.add_argument("--estimate", action="store_true", help="calibrate, print the expected wall time of the whole "
                   "preset (and, when the stores exist, what is done) and stop (with --report-only: then write "
                   "the report)")
    p.add_argument("--report-only", action="store_true", help="train nothing: write results.json and the report "
                   "from the finished searches and runs (needs the stores)")
    p.add_argument("--no-report", action="store_true", help="do not write RESULTS.md / PNGs")
    p.add_argument("--keep-models", action="store_true", help="keep the final runs' model and checkpoint files")
    return p


def _stores_for_report(ctx, stores: dict[str, Path]) -> None:
    """Stop with a one-line message (before anything is written) when a store the report reads is missing."""
    missing = [str(stores[p]) for p, fp in ctx.fps.items() if fp is None]
    if missing:
        raise SystemExit(f"study v2: --report-only: {', '.join(missing)} missing or unfinished; a record is "
                         "current only for the store it was trained on (python -m study.v2 makes the stores; "
                         "python -m study.v2.report writes the report from an existing results.json)")


def _report(results: dict, out: Path, docs: Path) -> None:
    from study.v2.report import build_report, report_command

    info = build_report(results, docs, report_command=report_command(relative(out / "results.json"), relative(docs)))
    print(f"study v2: report -> {info['results_md']} ({len(info['pngs'])} plots)", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    from study.v2 import steps
    from study.v2.presets import build_spec

    out, docs, data = edition_paths("v2", "fas-study-v2-quick", out=args.out, docs=args.docs, data=args.data,
                                   quick=args.quick)
    params = args.params if args.params and Path(args.params).exists() else None
    jobs = max(1, int(args.jobs))
    threads = args.threads or max(1, (os.cpu_count() or 2) // jobs)
    import torch

    torch.set_num_threads(threads)
    preset = "quick" if args.quick else "full"
    spec = build_spec(preset, setups=args.setups, trials=args.trials, seeds=args.seeds, match=args.fas_match)
    stores = {prob: data / f"{prob}.zarr" for prob in ("poisson", "darcy")}
    ctx = steps.Context(spec, out, stores, params, args.device, threads, jobs)
    train = not (args.estimate or args.report_only)
    lock = hold_lock(out) if train else None  # noqa: F841 - held until the process exits
    if train:
        data.mkdir(parents=True, exist_ok=True)
        for prob in sorted({spec["setups"][s]["problem"] for s in spec["selected"]}):
            ensure_store(prob, stores[prob], spec["data"][prob], spec["data_seed"], params)
    ctx.fps = {prob: store_fingerprint(path) for prob, path in stores.items()}
    if args.report_only:
        _stores_for_report(ctx, stores)
    ctx.level1()
    if args.estimate or train:
        ctx.calibrate()
    if args.estimate and all(ctx.fps.values()):
        steps.status(ctx)
    if args.estimate and not args.report_only:
        return 0
    failures = steps.search_all(ctx) + steps.run_all(ctx) if train else []
    results = steps.write_results(ctx, build_spec(preset, trials=args.trials, seeds=args.seeds,
                                                  match=args.fas_match), command_line(PROG, argv),
                                  refuse_empty=args.report_only)
    if not args.no_report:
        _report(results, out, docs)
    if failures:
        print(f"study v2: {len(failures)} job(s) failed with an error (not divergence): "
              f"{', '.join(failures)}; rerun the same command to retry them", file=sys.stderr)
        return 1
    return 0
