"""The third study's work: one search per (set-up, method) with ``surrogate tune``, then the final runs.

* A search (:func:`search`) is :func:`surrogate.tune.tune` on the set-up's store with the method's config at
  the tuning seed: trials of ``tuning.seeds`` training seeds each, at full width or on the level-1 proxy, until
  the method's share of the FLOP budget is spent (in full-width runs; the last trial may pass it) or
  ``tuning.max_trials``. Its journal and ``tune.json`` live in ``OUT/tuning/<set-up>/<method>``; a killed
  search resumes there (a search for other settings gets a study of its own in the same journal).
* A final run (:func:`final_task`, :func:`run_final`) trains the full network with the search's best values
  for each of the seeds 0, 1, ...: the core's record (:func:`study.core.run_task`) plus ``hp`` (the values),
  ``test`` (MSE, L-inf, relative L2 of ``best.pt`` on the test split), the curve's ``elapsed_s`` column (the
  seconds of training at each evaluation) and, for nested iteration, the coarse nets' evaluations moved out
  of the validation columns (``grow_val_*``: ``best.pt`` is always the fine net).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from study.core import Setup, guarded, make_task, mask_growth, record_is_current, round_floats, run_task
from study.v3.methods import METHODS
from surrogate.outputs import BEST

MASKED = ("val_mse", "val_linf", "train_mse", "train_linf", "train_loss")


def base_config(spec: Mapping, setup: str, method: str, seed: int, device: str):
    """The run config of ``method`` on ``setup`` before any tuned value, at ``seed``."""
    import dataclasses

    cfg = Setup.from_spec(spec, setup).run(seed=seed, device=device)
    return dataclasses.replace(cfg, train=METHODS[method].train(cfg.train))


def search_dir(out: Path, setup: str, method: str) -> Path:
    return Path(out) / "tuning" / setup / method


def tune_config(spec: Mapping, method: str):
    """The method's :class:`surrogate.config.TuneConfig` in this spec."""
    from surrogate.config import TuneConfig

    m, t = METHODS[method], spec["tuning"]
    return TuneConfig(level=m.tune_level, trials=t["max_trials"], budget=t["budget"] * m.tune_share,
                      seeds=t["seeds"], startup=t["startup"], seed=t["seed"], space=m.space_ranges())


def search(spec: Mapping, setup: str, method: str, store: str, out: Path, device: str, threads: int) -> dict:
    """Run (or finish) the search of ``method`` on ``setup``; returns its ``tune.json`` record."""
    import sys

    import torch

    from surrogate.tune import tune

    torch.set_num_threads(threads)
    cfg = base_config(spec, setup, method, spec["tuning"]["seed"], device)
    say = lambda msg: print(f"study: {setup} {method}: {msg}", file=sys.stderr, flush=True)  # noqa: E731
    return tune(cfg, tune_config(spec, method), store, search_dir(out, setup, method), final=False,
                progress=False, say=say)


def search_worker(args: tuple) -> tuple[str, dict | None, str | None]:
    """:func:`search` for a process pool: ``args`` = (spec, setup, method, store, out, device, threads)."""
    spec, setup, method, *rest = args
    return guarded(search, f"{setup}/{method}", spec, setup, method, *rest)


def search_done(spec: Mapping, setup: str, method: str, out: Path) -> dict | None:
    """The finished search's record (its budget or its trial cap reached), or None."""
    path = search_dir(out, setup, method) / "tune.json"
    if not path.exists():
        return None
    rec = json.loads(path.read_text())
    t = tune_config(spec, method)
    spent, trials = rec["search"]["cost_runs"], rec["search"]["trials"]
    same = rec.get("space") == t.space and rec.get("level") == t.level and rec.get("seeds") == t.seeds
    return rec if same and (spent >= t.budget or trials >= t.trials) else None


def final_task(spec: Mapping, setup: str, method: str, seed: int, best: Mapping[str, float], store: str,
               out: Path, device: str) -> dict:
    """The final run of ``method`` on ``setup`` at ``seed`` with the search's ``best`` values."""
    from surrogate.tune import with_values

    s = spec["setups"][setup]
    cfg = with_values(base_config(spec, setup, method, seed, device), dict(best))
    run_dir = Path(out) / "runs" / setup / method / f"seed{seed}"
    task = make_task(f"{setup}/{method}/seed{seed}", setup, method, seed, "final", s["n_train"],
                     s["budget_wu"], run_dir, Path(store), cfg)
    task["hp"] = dict(best)
    return task


def test_metrics(run_dir: Path, store: str) -> dict[str, Any]:
    """``test``: MSE, L-inf and relative L2 of the fine ``best.pt`` on the test split (first target)."""
    from surrogate.evaluate import evaluate

    errors = next(iter(evaluate(run_dir, store)["fine"].values()))
    return {"test": {m: float(errors[m]) for m in ("mse", "linf", "rel_l2")}}


def _extend(store: str, hp: Mapping[str, float], run_dir: Path, rec: Mapping) -> dict:
    summary = json.loads((run_dir / "train_summary.json").read_text()) if rec["status"] == "ok" else {}
    curve = mask_growth(rec["curve"], MASKED)
    seconds = summary.get("eval_elapsed_s") or []
    if len(seconds) == len(curve["step"]):
        curve["elapsed_s"] = seconds
    extra: dict[str, Any] = {"hp": dict(hp), "curve": curve, "test": None}
    if rec["status"] == "ok" and (run_dir / BEST).exists():
        extra.update(test_metrics(run_dir, store))
    return round_floats(extra)


def run_final(task: Mapping, threads: int, keep_models: bool, fingerprint: str) -> dict:
    """Train the run (resuming), score ``best.pt`` on the test split, write the record."""
    return run_task(task, threads, keep_models, fingerprint, functools.partial(_extend, task["store"], task["hp"]))


def final_worker(args: tuple) -> tuple[str, dict | None, str | None]:
    """:func:`run_final` for a process pool (``args``: task, threads, keep_models, fingerprint)."""
    task, *rest = args
    return guarded(run_final, task["run_id"], task, *rest)


def final_done(task: Mapping, fingerprint: str | None) -> bool:
    """A current record (:func:`study.core.record_is_current`) with its test scores."""
    if fingerprint is None or not record_is_current(task, fingerprint):
        return False
    rec = json.loads((Path(task["dir"]) / "record.json").read_text())
    return "test" in rec and (rec["status"] != "ok" or rec["test"] is not None)
