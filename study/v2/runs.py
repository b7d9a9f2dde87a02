"""A final or regime-map run of the second study: the first study's record plus the test split.

The record (``record.json``, :func:`study.core.run_task`) gains ``hp`` (the
tuned settings it ran with), ``test`` (MSE, L-inf and relative L2 of
``best.pt`` on the store's test split, :func:`surrogate.evaluate.evaluate`)
and, for nested iteration, ``grow_val_mse``/``grow_val_linf``: the curve's
evaluations of the coarse nets while the network grows, moved out of the
validation columns (which then hold the fine network only, the one that
``best.pt`` can be).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from study.core import guarded, mask_growth, record_is_current, round_floats, run_task

MASKED = ("val_mse", "val_linf", "aux_val_mse", "aux_val_linf", "train_mse", "train_linf", "train_loss")


def test_metrics(run_dir: Path, store: str) -> dict[str, Any]:
    """``test`` (fine ``best.pt``) and ``test_aux`` (``aux_best.pt``) errors on the test split, first target."""
    from surrogate.evaluate import evaluate

    res = evaluate(run_dir, store)
    out: dict[str, Any] = {}
    for role, key in (("fine", "test"), ("aux", "test_aux")):
        if isinstance(res.get(role), Mapping) and res[role]:
            target, errors = next(iter(res[role].items()))
            out[key] = {m: float(errors[m]) for m in ("mse", "linf", "rel_l2")}
            out["test_target"] = target
    return out


def _extend(store: str, hp: Mapping[str, float], run_dir: Path, rec: Mapping) -> dict:
    extra: dict[str, Any] = {"hp": dict(hp), "curve": mask_growth(rec["curve"], MASKED), "test": None}
    if rec["status"] == "ok" and (run_dir / "best.pt").exists():
        extra.update(test_metrics(run_dir, store))
    return round_floats(extra)


def run_final(task: Mapping, threads: int, keep_models: bool, fingerprint: str) -> dict:
    """Train the run (resuming), score ``best.pt`` on the test split, write the record."""
    return run_task(task, threads, keep_models, fingerprint, functools.partial(_extend, task["store"], task["hp"]))


def worker(args: tuple) -> tuple[str, dict | None, str | None]:
    """:func:`run_final` for a process pool: ``(run_id, record, None)`` or ``(run_id, None, traceback)``."""
    task, threads, keep, fp = args
    return guarded(run_final, task["run_id"], task, threads, keep, fp)


def is_done(task: Mapping, fingerprint: str) -> bool:
    """A current record (:func:`study.core.record_is_current`) that has its test scores."""
    if not record_is_current(task, fingerprint):
        return False
    rec = json.loads((Path(task["dir"]) / "record.json").read_text())
    return "test" in rec and (rec["status"] != "ok" or rec["test"] is not None)
