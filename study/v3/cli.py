"""``python -m study.v3``: the third study -- searches, final runs, ``results.json``, report.

    python -m study.v3 [--quick] [--report-only] [--setups ...] [--methods ...] [--jobs N] [--threads T]

Order: the stores (shared with the first two studies, made with ``pde-data generate`` when missing), every
unfinished search (``OUT/tuning/<set-up>/<method>``, resumable), every final run whose record is missing or
stale (``OUT/runs/...``), then ``OUT/results.json`` and the report (``--docs``/RESULTS_v3.md + a PNG). Each step
skips what is done, so a killed call resumes where it stopped. ``--report-only`` trains nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from study.core import (
    ROOT,
    command_line,
    edition_paths,
    ensure_store,
    hold_lock,
    relative,
    run_pool,
    store_fingerprint,
    write_json,
)

PROG = "python -m study.v3"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny preset (a few minutes), a smoke test of the tooling")
    p.add_argument("--out", default=None, help="study directory (default: results/study/v3 ; quick: "
                   "$TMPDIR/fas-study-v3-quick)")
    p.add_argument("--docs", default=None, help="where RESULTS_v3.md and its PNG go (default: docs/ ; quick: "
                   "OUT/docs)")
    p.add_argument("--data", default=None, help="directory of the stores (default: results/study/data ; quick: "
                   "OUT/data)")
    p.add_argument("--params", default=str(ROOT / "params.yaml"), help="params.yaml for the generators only")
    p.add_argument("--setups", nargs="+", default=None, metavar="SETUP", help="search and run only these set-ups")
    p.add_argument("--methods", nargs="+", default=None, metavar="METHOD", help="only these methods")
    p.add_argument("--seeds", type=int, default=None, help="final seeds per method (default 5; quick 2)")
    p.add_argument("--jobs", type=int, default=1, help="searches or runs in parallel (processes; default 1)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per process (default: CPUs / jobs)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"], help="training device (default cpu)")
    p.add_argument("--report-only", action="store_true", help="train nothing: results.json and the report from "
                   "what is finished")
    p.add_argument("--no-report", action="store_true", help="do not write RESULTS_v3.md")
    p.add_argument("--keep-models", action="store_true", help="keep the final runs' model files")
    return p


def _sweep_command(args: argparse.Namespace, out: Path, this_command: str) -> str:
    """The command that ran the study: this one, or under --report-only the one that results.json names."""
    previous = out / "results.json"
    if args.report_only and previous.exists():
        try:
            return json.loads(previous.read_text())["command"]
        except (ValueError, KeyError, TypeError):
            pass
    return this_command


def _report_failures(kind: str, failures: list[tuple[str, str]]) -> None:
    for key, trace in failures:
        print(f"study v3: {kind} {key} failed:\n{trace}", file=sys.stderr)


def searches(spec: dict, stores: dict[str, Path], out: Path, device: str, jobs: int, threads: int) -> list:
    from study.v3.runs import search_done, search_worker

    todo = [(s, m) for s in spec["selected"] for m in spec["methods"] if search_done(spec, s, m, out) is None]
    failures: list = []
    items = [(spec, s, m, str(stores[spec["setups"][s]["problem"]]), out, device, threads) for s, m in todo]
    run_pool(items, search_worker, jobs, lambda key, rec, err: err and failures.append((key, err)),
             desc="searches", unit="search", name=lambda it: f"{it[1]} {it[2]}")
    return failures


def final_tasks(spec: dict, stores: dict[str, Path], out: Path, device: str) -> list[dict]:
    from study.v3.runs import final_task, search_done

    tasks = []
    for setup in spec["setups"]:
        for method in spec["methods"]:
            rec = search_done(spec, setup, method, out)
            if rec is not None:
                store = str(stores[spec["setups"][setup]["problem"]])
                tasks += [final_task(spec, setup, method, seed, rec["best"]["values"], store, out, device)
                          for seed in range(spec["seeds"])]
    return tasks


def finals(spec: dict, tasks: list[dict], fps: dict, jobs: int, threads: int, keep: bool) -> list:
    from study.v3.runs import final_done, final_worker

    todo = [t for t in tasks if t["setup"] in spec["selected"]
            and not final_done(t, fps[spec["setups"][t["setup"]]["problem"]])]
    failures: list = []
    items = [(t, threads, keep, fps[spec["setups"][t["setup"]]["problem"]]) for t in todo]
    run_pool(items, final_worker, jobs, lambda key, rec, err: err and failures.append((key, err)),
             desc="final runs", unit="run", name=lambda it: it[0]["run_id"])
    return failures


def collect(spec: dict, tasks: list[dict], fps: dict, out: Path, command: str) -> dict:
    """``results.json``: the spec, the command, every finished search and every current final record."""
    from study.v3.runs import final_done, search_done

    results: dict = {"spec": spec, "command": command, "searches": {}, "finals": {}}
    for setup in spec["setups"]:
        for method in spec["methods"]:
            rec = search_done(spec, setup, method, out)
            if rec is not None:
                results["searches"].setdefault(setup, {})[method] = rec
    for t in tasks:
        if final_done(t, fps[spec["setups"][t["setup"]]["problem"]]):
            record = json.loads((Path(t["dir"]) / "record.json").read_text())
            results["finals"].setdefault(t["setup"], {}).setdefault(t["method"], []).append(record)
    return results


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    from study.v3.report import write_report
    from study.v3.spec import build_spec

    out, docs, data = edition_paths("v3", "fas-study-v3-quick", out=args.out, docs=args.docs, data=args.data,
                                   quick=args.quick)
    params = args.params if args.params and Path(args.params).exists() else None
    jobs = max(1, int(args.jobs))
    threads = args.threads or max(1, (os.cpu_count() or 2) // jobs)
    spec = build_spec("quick" if args.quick else "full", setups=args.setups, methods=args.methods, seeds=args.seeds)
    stores = {prob: data / f"{prob}.zarr" for prob in ("poisson", "darcy")}
    lock = None if args.report_only else hold_lock(out)  # noqa: F841 - held until the process exits
    if not args.report_only:
        data.mkdir(parents=True, exist_ok=True)
        for prob in sorted({spec["setups"][s]["problem"] for s in spec["selected"]}):
            ensure_store(prob, stores[prob], spec["data"][prob], spec["data_seed"], params)
        _report_failures("search", searches(spec, stores, out, args.device, jobs, threads))
    fps = {prob: store_fingerprint(path) for prob, path in stores.items()}
    tasks = final_tasks(spec, stores, out, args.device)
    if not args.report_only:
        _report_failures("run", finals(spec, tasks, fps, jobs, threads, args.keep_models))
    results = collect(spec, tasks, fps, out, _sweep_command(args, out, command_line(PROG, argv)))
    if args.report_only and not any(recs for by_method in results["finals"].values() for recs in by_method.values()):
        raise SystemExit(f"study v3: no finished run matches the stores {', '.join(map(str, stores.values()))} "
                         f"(regenerated since the runs, or nothing has run yet); {relative(out / 'results.json')} "
                         "and the report are left as they are")
    write_json(out / "results.json", results)
    print(f"study v3: {relative(out / 'results.json')}", file=sys.stderr)
    if not args.no_report and results["finals"]:
        print(f"study v3: report -> {relative(write_report(results, docs))}", file=sys.stderr)
    return 0
