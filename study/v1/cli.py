"""Run the first study: stores, calibration, every missing run, then ``results.json`` and the report.

    python -m study.v1 [--quick] [--estimate] [--setups ...] [--jobs N] [--out DIR] [--docs DIR]

(``python -m study.runner`` is the same command under its first name.)
Before running, a short calibration (time per FLOP work unit of every set-up
and trainer, fastest of 3 passes) prints the expected wall time (``--jobs
N`` runs N runs at once with CPU count / N threads each).  The study is
resumable: a run whose ``record.json`` is current (:mod:`study.core.runkey`)
is skipped, an interrupted run resumes from its checkpoint; ``--estimate``
also says how many runs are done when the stores exist.  Model files are
deleted after a run's record is written (``--keep-models`` keeps them).  At
the end the report (``RESULTS_v1.md`` + PNGs) is written to ``--docs``
(default ``docs/``; quick: ``OUT/docs``).  See :mod:`study.v1` for what runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from study.core import (
    ROOT,
    command_line,
    edition_paths,
    ensure_store,
    finished_records,
    fmt,
    hold_lock,
    level1_cost,
    readout,
    record_is_current,
    relative,
    round_floats,
    run_pool,
    run_worker,
    store_fingerprint,
    write_json,
)
from study.v1.calibrate import calibrate, estimate_task, print_estimate
from study.v1.plan import plan
from study.v1.presets import build_spec
from study.v1.report import build_report, report_command

PROG = "python -m study.v1"


def _parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                epilog="See the docstring of study.v1 for what runs and where it goes.")
    p.add_argument("--quick", action="store_true", help="tiny preset (a couple of minutes), a smoke test")
    p.add_argument("--out", default=None,
                   help="study directory (default: results/study/v1 ; quick: $TMPDIR/fas-study-quick)")
    p.add_argument("--docs", default=None,
                   help="where RESULTS_v1.md and the PNGs go (default: docs/ ; quick: OUT/docs)")
    p.add_argument("--data", default=None, help="directory of the stores (default: results/study/data, shared "
                   "with study v2; with --quick or --out: OUT/data)")
    p.add_argument("--params", default=str(ROOT / "params.yaml"),
                   help="params.yaml for the generators (the PDE families and the grid); the runs' training "
                        "configs are the study's own and do not read it")
    p.add_argument("--setups", nargs="+", default=None, metavar="SETUP",
                   help="run only these set-ups (poisson_fc poisson_cnn darcy_fc darcy_cnn); the report covers "
                        "all finished runs of the preset")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default: 5; quick: 3)")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes; default 1)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per run (default: CPU count / jobs)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"], help="training device (default cpu)")
    p.add_argument("--estimate", action="store_true", help="calibrate, print the expected wall time (and, when "
                   "the stores exist, how many runs are done) and stop")
    p.add_argument("--no-report", action="store_true", help="do not write RESULTS_v1.md / PNGs")
    p.add_argument("--keep-models", action="store_true", help="keep each run's model and checkpoint files")
    return p


def _run_all(args_list: list[tuple], jobs: int) -> list[tuple[str, str]]:
    """Run the tasks (in ``jobs`` processes when more than one); return ``(run_id, traceback)`` of the failures."""
    from tqdm.auto import tqdm

    failures: list[tuple[str, str]] = []

    def done(run_id: str, rec: dict | None, err: str | None) -> None:
        if err is not None:
            failures.append((run_id, err))
            tqdm.write(f"study: {run_id} FAILED:\n{err}", file=sys.stderr)
            return
        best = readout(rec, "val_mse", "flops", rec["budget_wu"], "best")
        tqdm.write(f"study: {run_id:34s} {rec['status']:8s} best val mse {fmt(best)} "
                   f"({rec['wall_s']:.1f} s)", file=sys.stderr)

    run_pool(args_list, run_worker, jobs, done, desc="study", unit="run", name=lambda a: a[0]["run_id"])
    return failures


def _todo(spec: dict, tasks: list[dict], fps: dict, cal: dict, out: Path) -> list[dict]:
    """The tasks without a current record; prints how many are done."""
    todo = [t for t in tasks if not record_is_current(t, fps[spec["setups"][t["setup"]]["problem"]])]
    todo_s = sum(estimate_task(t, spec, cal) for t in todo)
    print(f"study: {len(tasks) - len(todo)} of {len(tasks)} runs already done; {len(todo)} to run "
          f"(about {todo_s / 60:.1f} min sequential) -> {out}", file=sys.stderr, flush=True)
    return todo


def _write_results(args: argparse.Namespace, spec: dict, tasks: list[dict], extra: dict, out: Path,
                   command: str) -> None:
    """``OUT/results.json``: the spec, calibration and every finished record of the preset."""
    import torch

    records = finished_records(tasks)
    if args.setups:   # records of set-ups not selected this time but finished before (e.g. on another machine)
        seen = {r["run_id"] for r in records}
        everything = plan(build_spec(spec["preset"], args.seeds), out, extra["stores"], device=args.device)
        records += [r for r in finished_records(everything) if r["run_id"] not in seen]
    results = {"spec": spec, "calibration": extra["calibration"], "estimate_s": extra["estimate_s"],
               "threads": extra["threads"], "jobs": extra["jobs"], "command": command,
               "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "versions": {"python": sys.version.split()[0], "torch": str(torch.__version__)}, "records": records}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", round_floats(results))
    print(f"study: {len(records)} records -> {out / 'results.json'}", file=sys.stderr, flush=True)


def _report(out: Path, docs: Path, command: str) -> None:
    """``RESULTS_v1.md`` and the PNGs from ``OUT/results.json``; the verdicts to ``OUT/summary.json``."""
    results = json.loads((out / "results.json").read_text())
    if not results["records"]:
        return
    info = build_report(results, docs, command=command,
                        report_command=report_command(relative(out / "results.json"), relative(docs)))
    write_json(out / "summary.json", round_floats({"verdicts": info["verdicts"], "results_md": info["results_md"]}),
               compact=False)
    print(f"study: report -> {info['results_md']} ({len(info['pngs'])} plots); paired statistics -> "
          f"{out / 'summary.json'}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser(prog).parse_args(argv)
    out, docs, data = edition_paths("v1", "fas-study-quick", out=args.out, docs=args.docs, data=args.data,
                                   quick=args.quick, data_under_out=True)
    params = args.params if args.params and Path(args.params).exists() else None
    jobs = max(1, int(args.jobs))
    threads = args.threads or max(1, (os.cpu_count() or 2) // jobs)
    import torch

    torch.set_num_threads(threads)
    spec = build_spec("quick" if args.quick else "full", args.seeds, args.setups)
    stores = {prob: data / f"{prob}.zarr" for prob in ("poisson", "darcy")}
    needed = sorted({spec["setups"][s]["problem"] for s in spec["selected"]})
    lock = None if args.estimate else hold_lock(out)  # noqa: F841 - held until the process exits
    if not args.estimate:
        data.mkdir(parents=True, exist_ok=True)
        for prob in needed:
            ensure_store(prob, stores[prob], spec["data"][prob], spec["data_seed"], params)
    for setup in spec["setups"]:
        spec["setups"][setup]["flops_ratio_level1"] = level1_cost(spec, setup, params)
    cal = calibrate(spec, params=params, device=args.device, stores=None if args.estimate else stores)
    tasks = plan(spec, out, stores, device=args.device)
    estimate = print_estimate(spec, tasks, cal, jobs)
    fps = {prob: store_fingerprint(stores[prob]) for prob in needed}
    if args.estimate:
        if all(fps.values()):
            _todo(spec, tasks, fps, cal, out)
        return 0
    todo = _todo(spec, tasks, fps, cal, out)
    failures = _run_all([(t, threads, args.keep_models, fps[spec["setups"][t["setup"]]["problem"]]) for t in todo],
                        jobs)
    command = command_line(prog, argv)
    _write_results(args, spec, tasks, {"calibration": cal, "estimate_s": estimate, "threads": threads, "jobs": jobs,
                                       "stores": stores}, out, command)
    if not args.no_report:
        _report(out, docs, command)
    if failures:
        print(f"study: {len(failures)} run(s) failed with an error (not divergence): "
              f"{', '.join(r for r, _ in failures)}; rerun the same command to retry them", file=sys.stderr)
        return 1
    return 0
