"""``python -m study.v2``: the second study -- search, final runs, regime map, ``results.json``, report.

    python -m study.v2 [--quick] [--estimate] [--report-only] [--setups ...] [--jobs N] [--trials T] ...

Order: the stores (shared with the first study, made with ``pde-data
generate`` when missing), a calibration that prints the expected wall time,
then every unfinished search (one Optuna journal per set-up and method),
then every final and regime-map run whose record is missing or stale, then
``OUT/results.json`` and the report (``--docs``/RESULTS.md + PNGs). Each
step skips what is done, so a killed call resumes where it stopped.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path

from study.runner import ROOT, _lock, _rel, ensure_store

DEFAULT_OUT = ROOT / "results" / "study" / "v2"
PROG = "python -m study.v2"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny preset (2 trials per method, 2 seeds; a few "
                   "minutes), a smoke test of the tooling")
    p.add_argument("--out", default=None,
                   help="study directory (default: results/study/v2 ; quick: $TMPDIR/fas-study-v2-quick)")
    p.add_argument("--docs", default=None, help="where RESULTS.md and the PNGs go (default: docs/ ; quick: OUT/docs)")
    p.add_argument("--data", default=None, help="directory of the stores (default: results/study/data, the first "
                   "study's ; quick: OUT/data)")
    p.add_argument("--params", default=str(ROOT / "params.yaml"), help="params.yaml for the generators and "
                   "defaults (every knob that the comparison depends on is set explicitly)")
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
                   "preset and stop (with --report-only: then write the report)")
    p.add_argument("--report-only", action="store_true", help="train nothing: write results.json and the report "
                   "from the finished searches and runs")
    p.add_argument("--no-report", action="store_true", help="do not write RESULTS.md / PNGs")
    p.add_argument("--keep-models", action="store_true", help="keep the final runs' model and checkpoint files")
    return p


def _paths(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    out = Path(args.out) if args.out else (Path(tempfile.gettempdir()) / "fas-study-v2-quick" if args.quick
                                           else DEFAULT_OUT)
    docs = Path(args.docs) if args.docs else (out / "docs" if args.quick else ROOT / "docs")
    data = Path(args.data) if args.data else (out / "data" if args.quick else ROOT / "results" / "study" / "data")
    return out, docs, data


def _fingerprint(path: Path) -> str | None:
    """The store's fingerprint, None when it is missing or incomplete."""
    from surrogate.dataset import open_store

    try:
        st = open_store(path)
        return st.fingerprint() if st.n_done == st.n_total else None
    except Exception:  # noqa: BLE001 - a missing or unfinished store has no runs to read
        return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    from study.v2 import steps
    from study.v2.presets import build_spec

    out, docs, data = _paths(args)
    params = args.params if args.params and Path(args.params).exists() else None
    jobs = max(1, int(args.jobs))
    threads = args.threads or max(1, (os.cpu_count() or 2) // jobs)
    import torch

    torch.set_num_threads(threads)
    from study.plan import known_keys

    if "train.fas.match" not in known_keys():
        raise SystemExit("study v2: this trainer has no train.fas.match (HEM matching after pre-smoothing), "
                         "which every run of the study sets")
    preset = "quick" if args.quick else "full"
    spec = build_spec(preset, setups=args.setups, trials=args.trials, seeds=args.seeds, match=args.fas_match)
    stores = {prob: data / f"{prob}.zarr" for prob in ("poisson", "darcy")}
    ctx = steps.Context(spec, out, stores, params, args.device, threads, jobs)
    train = not (args.estimate or args.report_only)
    lock = _lock(out) if train else None  # noqa: F841 - held until the process exits
    if train:
        data.mkdir(parents=True, exist_ok=True)
        for prob in sorted({spec["setups"][s]["problem"] for s in spec["selected"]}):
            ensure_store(prob, stores[prob], spec["data"][prob], spec["data_seed"], params)
    ctx.fps = {prob: _fingerprint(path) for prob, path in stores.items()}
    ctx.level1()
    if args.estimate or train:
        ctx.calibrate()
    if args.estimate and not args.report_only:
        return 0
    failures = steps.search_all(ctx) + steps.run_all(ctx) if train else []
    command = " ".join([PROG] + [shlex.quote(a) for a in argv])
    results = steps.write_results(ctx, build_spec(preset, trials=args.trials, seeds=args.seeds,
                                                  match=args.fas_match), command)
    if not args.no_report:
        from study.v2.report import build_report, report_command

        info = build_report(results, docs, report_command=report_command(_rel(out / "results.json"), _rel(docs)))
        print(f"study v2: report -> {info['results_md']} ({len(info['pngs'])} plots)", file=sys.stderr)
    if failures:
        print(f"study v2: {len(failures)} job(s) failed with an error (not divergence): "
              f"{', '.join(failures)}; rerun the same command to retry them", file=sys.stderr)
        return 1
    return 0

