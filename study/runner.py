"""Run the study: stores, calibration, every missing run, then ``results.json`` and the report.

    python -m study.runner [--quick] [--estimate] [--setups ...] [--jobs N] [--out DIR] [--docs DIR]

Before running, a short calibration (time per FLOP work unit of every set-up
and trainer, fastest of 3 passes) prints the expected wall time (``--jobs
N`` runs N runs at once with CPU count / N threads each).  The study is
resumable: a run whose ``record.json`` matches its configuration is skipped,
an interrupted run resumes from its checkpoint.  Model files are deleted
after a run's record is written (``--keep-models`` keeps them).  At the end
the report (``RESULTS_v1.md`` + PNGs) is written to ``--docs`` (default
``docs/``; quick: ``OUT/docs``).  See :mod:`study` for what runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from study.calibrate import calibrate, estimate_task, level1_cost, print_estimate
from study.plan import plan
from study.pool import run_pool
from study.presets import build_spec
from study.readout import readout
from study.record import record_is_current, round_floats, worker, write_json
from study.report import build_report, report_command
from study.text import fmt

ROOT = Path(__file__).resolve().parents[1]


def ensure_store(problem: str, path: Path, n: int, seed: int, params: str | None) -> None:
    """Generate (or finish) a store with `pde-data generate` unless it is complete."""
    from surrogate.dataset import open_store

    if path.exists():
        try:
            st = open_store(path, problem)
            if st.n_total == n and st.n_done == n:
                return
        except Exception:  # noqa: BLE001 - let pde-data decide (it resumes or refuses with a message)
            pass
    cmd = [sys.executable, "-m", "pde_data.cli", "generate", problem, "--out", str(path), "--n", str(n),
           "--seed", str(seed), "--no-progress"]
    if params:
        cmd += ["--params", str(params)]
    print(f"study: generating {n} {problem} samples -> {path}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"study: {problem} store done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)


def _store_fingerprint(path: str) -> str:
    from surrogate.dataset import open_store

    return open_store(path).fingerprint()


def _command_line(argv: list[str]) -> str:
    return " ".join(["python", "-m", "study.runner"] + [shlex.quote(a) for a in argv])


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m study.runner", description=__doc__.split("\n\n")[0],
                                epilog="See the docstring of the study package for what runs and where it goes.")
    p.add_argument("--quick", action="store_true", help="tiny preset (a couple of minutes), a smoke test")
    p.add_argument("--out", default=None, help="study directory (default: results/study/v1 ; quick: $TMPDIR/fas-study-quick)")
    p.add_argument("--docs", default=None,
                   help="where RESULTS_v1.md and the PNGs go (default: docs/ ; quick: OUT/docs)")
    p.add_argument("--data", default=None, help="directory of the stores (default: results/study/data, shared with study v2; with "
                   "--quick or --out: OUT/data)")
    p.add_argument("--params", default=str(ROOT / "params.yaml"),
                   help="params.yaml for the generators and the data/models/train defaults (every training knob "
                        "that the comparison depends on is set explicitly by the study)")
    p.add_argument("--setups", nargs="+", default=None, metavar="SETUP",
                   help="run only these set-ups (poisson_fc poisson_cnn darcy_fc darcy_cnn); the report covers "
                        "all finished runs of the preset")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default: 5; quick: 3)")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes; default 1)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per run (default: CPU count / jobs)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"], help="training device (default cpu)")
    p.add_argument("--estimate", action="store_true", help="calibrate, print the expected wall time and stop")
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

    run_pool(args_list, worker, jobs, done, desc="study", unit="run", name=lambda a: a[0]["run_id"])
    return failures


def _finished_records(tasks: list[dict]) -> list[dict]:
    """The records of the tasks that have one, in plan order."""
    paths = [Path(t["dir"]) / "record.json" for t in tasks]
    return [json.loads(p.read_text()) for p in paths if p.exists()]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)

    preset = "quick" if args.quick else "full"
    out = Path(args.out) if args.out else (Path(tempfile.gettempdir()) / "fas-study-quick" if args.quick
                                           else ROOT / "results" / "study" / "v1")
    docs = Path(args.docs) if args.docs else (out / "docs" if args.quick else ROOT / "docs")
    data = Path(args.data) if args.data else (out / "data" if args.quick or args.out else
                                              ROOT / "results" / "study" / "data")
    params = args.params if args.params and Path(args.params).exists() else None
    jobs = max(1, int(args.jobs))
    threads = args.threads or max(1, (os.cpu_count() or 2) // jobs)

    import torch

    torch.set_num_threads(threads)
    spec = build_spec(preset, args.seeds, args.setups)
    stores = {prob: data / f"{prob}.zarr" for prob in ("poisson", "darcy")}
    needed = sorted({spec["setups"][s]["problem"] for s in spec["selected"]})

    lock = None if args.estimate else _lock(out)  # noqa: F841 - held until the process exits
    if not args.estimate:
        data.mkdir(parents=True, exist_ok=True)
        for prob in needed:
            ensure_store(prob, stores[prob], spec["data"][prob], spec["data_seed"], params)
    for setup in spec["setups"]:
        spec["setups"][setup]["flops_ratio_level1"] = level1_cost(spec, setup, params)
    cal = calibrate(spec, params=params, device=args.device, stores=None if args.estimate else stores)
    tasks = plan(spec, out, stores, params=params, device=args.device)
    estimate = print_estimate(spec, tasks, cal, jobs)
    if args.estimate:
        return 0

    fps = {prob: _store_fingerprint(str(stores[prob])) for prob in needed}
    todo = [t for t in tasks if not record_is_current(t, fps[spec["setups"][t["setup"]]["problem"]])]
    todo_s = sum(estimate_task(t, spec, cal) for t in todo)
    print(f"study: {len(tasks) - len(todo)} of {len(tasks)} runs already done; {len(todo)} to run "
          f"(about {todo_s / 60:.1f} min sequential) -> {out}", file=sys.stderr, flush=True)
    failures = _run_all([(t, threads, args.keep_models, fps[spec["setups"][t["setup"]]["problem"]]) for t in todo],
                        jobs)

    records = _finished_records(tasks)
    # records of set-ups not selected this time but finished before (e.g. on another machine)
    if args.setups:
        seen = {r["run_id"] for r in records}
        records += [r for r in _finished_records(plan(build_spec(preset, args.seeds), out, stores, params=params,
                                                      device=args.device)) if r["run_id"] not in seen]
    results = {"spec": spec, "calibration": cal, "estimate_s": estimate, "threads": threads, "jobs": jobs,
               "command": _command_line(argv), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "versions": {"python": sys.version.split()[0], "torch": str(torch.__version__)},
               "records": records}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", round_floats(results))
    print(f"study: {len(records)} records -> {out / 'results.json'}", file=sys.stderr, flush=True)
    if not args.no_report and records:
        info = build_report(json.loads((out / "results.json").read_text()), docs, command=_command_line(argv),
                            report_command=report_command(_rel(out / "results.json"), _rel(docs)))
        write_json(out / "summary.json", round_floats({"verdicts": info["verdicts"], "results_md": info["results_md"]}),
                   compact=False)
        print(f"study: report -> {info['results_md']} ({len(info['pngs'])} plots); paired statistics -> "
              f"{out / 'summary.json'}", file=sys.stderr, flush=True)
    if failures:
        print(f"study: {len(failures)} run(s) failed with an error (not divergence): "
              f"{', '.join(r for r, _ in failures)}; rerun the same command to retry them", file=sys.stderr)
        return 1
    return 0


def _lock(out: Path):
    """Hold an exclusive lock on OUT/study.lock for the life of the process (one study per directory)."""
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    fh = open(out / "study.lock", "w")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise SystemExit(f"study: another study process is running in {out} (lock {out / 'study.lock'}); "
                         "wait for it or use another --out") from None
    fh.write(str(os.getpid()))
    fh.flush()
    return fh


def _rel(p: Path) -> Path:
    try:
        return p.resolve().relative_to(ROOT)
    except ValueError:
        return p


if __name__ == "__main__":
    sys.exit(main())
