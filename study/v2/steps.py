"""The steps of ``python -m study.v2``: calibrate, search, run, collect (:mod:`study.v2.cli` calls them)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from study.core import fmt, guarded, level1_cost, readout, round_floats, run_pool, write_json
from study.v2 import runs, tuning
from study.v2.plan import all_tasks, trial_tasks
from study.v2.presets import tuned_methods


@dataclass
class Context:
    """What every step needs: the spec, where things go, how to train, the stores' fingerprints."""

    spec: dict
    out: Path
    stores: dict
    params: str | None
    device: str
    threads: int
    jobs: int
    fps: dict = field(default_factory=dict)
    cal: dict | None = None
    estimate_s: float | None = None

    def fp(self, spec: Mapping, setup: str) -> str | None:
        return self.fps.get(spec["setups"][setup]["problem"])

    @property
    def ctx(self) -> dict:
        """What the plan's functions take besides the spec: the training device."""
        return {"device": self.device}

    def level1(self) -> None:
        """The FLOP cost of a half-width pass of every set-up (the report's set-up table)."""
        for setup in self.spec["setups"]:
            self.spec["setups"][setup]["flops_ratio_level1"] = level1_cost(self.spec, setup, self.params)

    def calibrate(self) -> None:
        """Calibrate the selected set-ups and print the expected wall time of all their searches and runs."""
        from study.v2.calibrate import calibrate, print_estimate

        self.cal = calibrate(self.spec, params=self.params, device=self.device, stores=self.stores,
                             repeats=1 if self.spec.get("smoke_test") else 3)
        tasks = trial_tasks(self.spec, self.out, self.stores, **self.ctx)
        tasks += all_tasks(self.spec, self.out, self.stores, chosen(self, self.spec), True, **self.ctx)[0]
        self.estimate_s = print_estimate(self.spec, tasks, self.cal, self.jobs)


def _searches(c: Context, spec: Mapping) -> list[dict]:
    """One job per tuned (set-up, method) of ``spec``'s selection whose store exists."""
    jobs = []
    for setup in spec["selected"]:
        fp = c.fp(spec, setup)
        if fp is None:
            continue
        for m in tuned_methods(spec):
            jobs.append({"spec": spec, "setup": setup, "method": m, "out": c.out, "stores": c.stores,
                         "device": c.device, "threads": c.threads, "fingerprint": fp,
                         "key": tuning.search_key(spec, setup, m, fp)})
    return jobs


def summaries(c: Context, spec: Mapping) -> dict[str, dict]:
    """``"setup/method" -> tuning.summary`` of every search of ``spec`` that has a journal."""
    out = {}
    for job in _searches(c, spec):
        s = tuning.summary(tuning.journal_path(c.out, job["setup"], job["method"]),
                           f"{job['setup']}/{job['method']}", job["key"], spec["tuning"]["trials"])
        if s is not None:
            out[f"{job['setup']}/{job['method']}"] = s
    return out


def chosen(c: Context, spec: Mapping) -> dict[tuple[str, str], dict]:
    """The chosen settings of every finished search."""
    return {tuple(k.split("/")): s["params"] for k, s in summaries(c, spec).items() if "params" in s}


def tune_worker(job: Mapping) -> tuple[str, Any, str | None]:
    return guarded(tuning.search, f"{job['setup']}/{job['method']}", job)


def _searches_todo(c: Context) -> tuple[list[dict], list[dict]]:
    """The searches of the selection and those not complete."""
    have = summaries(c, c.spec)
    jobs = _searches(c, c.spec)
    return jobs, [j for j in jobs if not (have.get(f"{j['setup']}/{j['method']}") or {}).get("complete")]


def _runs_todo(c: Context) -> tuple[list[dict], list[dict], list[str]]:
    """The final and regime-map runs whose search is done, those without a current record, and what waits for
    its search."""
    tasks, waiting = all_tasks(c.spec, c.out, c.stores, chosen(c, c.spec), **c.ctx)
    todo = [t for t in tasks if c.fp(c.spec, t["setup"]) and not runs.is_done(t, c.fp(c.spec, t["setup"]))]
    return tasks, todo, waiting


def _runs_line(tasks: list[dict], todo: list[dict], waiting: list[str]) -> str:
    return (f"study v2: {len(tasks) - len(todo)} of {len(tasks)} runs done; {len(todo)} to run"
            + (f"; waiting for their search: {', '.join(waiting)}" if waiting else ""))


def status(c: Context) -> None:
    """Print what a resume would do: searches to finish, runs done and to run (nothing is trained)."""
    jobs, todo = _searches_todo(c)
    print(f"study v2: {len(jobs) - len(todo)} of {len(jobs)} searches complete; {len(todo)} to finish",
          file=sys.stderr)
    print(_runs_line(*_runs_todo(c)), file=sys.stderr)


def search_all(c: Context) -> list[str]:
    """Finish every search of the selection; return the ones that failed."""
    _, todo = _searches_todo(c)
    print(f"study v2: {len(todo)} searches to finish ({c.spec['tuning']['trials']} trials each)", file=sys.stderr)
    failures: list[str] = []

    def done(key: str, summary: dict | None, err: str | None) -> None:
        if err is not None:
            failures.append(key)
            print(f"study v2: search {key} FAILED:\n{err}", file=sys.stderr)
        else:
            print(f"study v2: search {key}: best trial {summary.get('best')} value {fmt(summary.get('best_value'))} "
                  f"{summary.get('params')}", file=sys.stderr)

    run_pool(todo, tune_worker, c.jobs, done, desc="search", unit="search",
             name=lambda j: f"{j['setup']}/{j['method']}")
    return failures


def run_all(c: Context) -> list[str]:
    """Every final and regime-map run of the selection whose search is done; return the failures."""
    tasks, todo, waiting = _runs_todo(c)
    print(_runs_line(tasks, todo, waiting), file=sys.stderr)
    failures: list[str] = []

    def done(run_id: str, rec: dict | None, err: str | None) -> None:
        if err is not None:
            failures.append(run_id)
            print(f"study v2: {run_id} FAILED:\n{err}", file=sys.stderr)
            return
        best = readout(rec, "val_mse", "flops", rec["budget_wu"], "best")
        test = (rec.get("test") or {}).get("mse")
        print(f"study v2: {run_id:34s} {rec['status']:8s} best val mse {fmt(best)} test mse {fmt(test)} "
              f"({rec['wall_s']:.1f} s)", file=sys.stderr)

    run_pool([(t, c.threads, False, c.fp(c.spec, t["setup"])) for t in todo], runs.worker, c.jobs, done,
             desc="runs", unit="run", name=lambda a: a[0]["run_id"])
    return failures


def _calibration(c: Context) -> dict[str, Any]:
    """This call's calibration over the previous results file's (set-ups this call did not calibrate keep
    theirs), and the estimate that covers the most set-ups."""
    path = c.out / "results.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    cal = {**(old.get("calibration") or {}), **(c.cal or {})}
    new = list(c.spec["selected"]) if c.estimate_s is not None else []
    keep = len(old.get("estimate_setups") or []) > len(new)
    return {"calibration": cal or None, "estimate_s": old.get("estimate_s") if keep else c.estimate_s,
            "estimate_setups": old.get("estimate_setups") if keep else new}


def write_results(c: Context, spec_all: dict, command: str, refuse_empty: bool = False) -> dict:
    """``OUT/results.json``: the spec, calibration, every search and every current record of the preset.

    ``refuse_empty`` (``--report-only``): with no current record, stop before writing anything, so that stores
    regenerated since the runs do not replace a finished report with an empty one."""
    for setup, s in c.spec["setups"].items():
        spec_all["setups"][setup].update({k: v for k, v in s.items() if k == "flops_ratio_level1"})
    picked = chosen(c, spec_all)
    tasks, _ = all_tasks(spec_all, c.out, c.stores, picked, **c.ctx)
    records = [json.loads((Path(t["dir"]) / "record.json").read_text()) for t in tasks
               if c.fp(spec_all, t["setup"]) and runs.is_done(t, c.fp(spec_all, t["setup"]))]
    if refuse_empty and not records:
        raise SystemExit(f"study v2: no finished run matches the stores {', '.join(map(str, c.stores.values()))} "
                         f"(regenerated since the runs, or nothing has run yet); {c.out / 'results.json'} and the "
                         "report are left as they are")
    planned = len(trial_tasks(spec_all, c.out, c.stores, **c.ctx)) + len(
        all_tasks(spec_all, c.out, c.stores, picked, True, **c.ctx)[0])
    import torch

    results = {"spec": spec_all, **_calibration(c), "threads": c.threads,
               "jobs": c.jobs, "command": command, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "versions": {"python": sys.version.split()[0], "torch": str(torch.__version__)},
               "tuning": summaries(c, spec_all), "planned": planned, "records": records}
    c.out.mkdir(parents=True, exist_ok=True)
    write_json(c.out / "results.json", round_floats(results))
    print(f"study v2: {len(records)} records, {len(results['tuning'])} searches -> {c.out / 'results.json'}",
          file=sys.stderr)
    return json.loads((c.out / "results.json").read_text())
