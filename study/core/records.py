"""One run of a study: the task the plan makes, its training (resuming from its checkpoint) and its record.

A record (``record.json``) holds the run's identity, status, work and wall
time, the training summary, the store fingerprint, the resolved config (what
:func:`study.core.runkey.record_is_current` compares) and the ``curve``: the
run's evaluations as columns (``step``, ``wu_flops``, ``wu_paper``,
``val_mse``, ``val_linf``, ``aux_val_*``, ``train_*``, ``train_loss``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from study.core.pool import guarded


def round_floats(obj: Any, digits: int = 7) -> Any:
    """Floats to ``digits`` significant digits (a compact JSON); NaN to None."""
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        if math.isinf(obj):
            return obj
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, dict):
        return {k: round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [round_floats(v, digits) for v in obj]
    return obj


def write_json(path: Path, obj: Any, compact: bool = True) -> None:
    """Atomic JSON write (compact by default: the curves make these files large)."""
    tmp = path.with_name(path.name + ".tmp")
    text = json.dumps(obj, separators=(",", ":")) if compact else json.dumps(obj, indent=1)
    tmp.write_text(text + "\n")
    os.replace(tmp, path)


def curve_from_history(history: list[Mapping]) -> dict[str, list]:
    """The run's evaluations as aligned columns; a metric that is missing or not finite is None.

    ``step`` is the position dvclive gave an evaluation: its work units,
    rounded, and at least one past the previous step.
    """
    columns = {"wu_flops": ("work_units_flops",), "wu_paper": ("work_units_paper",),
               "val_mse": ("val", "mse"), "val_linf": ("val", "linf"),
               "aux_val_mse": ("aux_val", "mse"), "aux_val_linf": ("aux_val", "linf"),
               "train_mse": ("train", "mse"), "train_linf": ("train", "linf"), "train_loss": ("train_loss",),
               "growth_level": ("growth_level",)}
    always = ("wu_flops", "wu_paper", "val_mse", "val_linf")

    def value(rec: Mapping, path: tuple[str, ...]) -> float | None:
        for key in path:
            if not isinstance(rec, Mapping) or key not in rec:
                return None
            rec = rec[key]
        return float(rec) if isinstance(rec, (int, float)) and math.isfinite(rec) else None

    steps: list[int] = []
    for rec in history:
        steps.append(max(steps[-1] + 1 if steps else 0, round(rec["work_units"])))
    curve: dict[str, list] = {"step": steps}
    for name, path in columns.items():
        col = [value(rec, path) for rec in history]
        if name in always or any(v is not None for v in col):
            curve[name] = col
    return curve


def make_task(run_id: str, setup: str, method: str, seed: int, group: str, n_train: int, budget_wu: float,
              run_dir: Path, store: Path, cfg: Any) -> dict:
    """One run: ``cfg`` (the :class:`~surrogate.config.RunConfig` that :func:`surrogate.train.train` takes)
    and ``config`` (its JSON dict, what the record keeps)."""
    return {"run_id": run_id, "setup": setup, "method": method, "seed": seed, "group": group, "n_train": n_train,
            "budget_wu": budget_wu, "dir": str(run_dir), "store": str(store), "cfg": cfg,
            "config": json.loads(json.dumps(cfg.to_dict(), default=str))}


def finished_records(tasks: list[dict]) -> list[dict]:
    """The records of the tasks that have one, in plan order."""
    paths = [Path(t["dir"]) / "record.json" for t in tasks]
    return [json.loads(p.read_text()) for p in paths if p.exists()]


def run_task(task: Mapping, threads: int, keep_models: bool, fingerprint: str,
             extend: Callable[[Path, dict], dict] | None = None) -> dict:
    """Train one run (resuming from its checkpoint), write its record.json, drop its model files.

    ``extend(run_dir, record)``: keys to add to the record before it is written (the model files are there).
    """
    import torch

    torch.set_num_threads(threads)
    from surrogate.train import QUIET, ResumeError, TrainingDiverged, train

    out = Path(task["dir"])
    rec_path = out / "record.json"
    rec_path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    status, error, summary, history = "ok", None, None, []
    try:
        try:
            summary = train(task["cfg"], task["store"], out, resume=True, reporting=QUIET)
        except ResumeError:
            shutil.rmtree(out, ignore_errors=True)
            summary = train(task["cfg"], task["store"], out, resume=False, reporting=QUIET)
    except TrainingDiverged as exc:
        status, error, history = "diverged", str(exc), exc.history   # the curve up to the divergence
    wall = time.perf_counter() - t0
    curve = curve_from_history(summary["history"] if summary is not None else history)
    rec = {
        "run_id": task["run_id"], "setup": task["setup"], "method": task["method"], "seed": task["seed"],
        "group": task["group"], "n_train": task["n_train"], "budget_wu": task["budget_wu"], "status": status,
        "error": error, "device": summary["device"] if summary else task["config"]["train"]["device"],
        "threads": threads, "wall_s": summary["elapsed_s"] if summary else wall, "process_s": wall,
        "cycles": summary["cycles"] if summary else None,
        "work_units": summary["work_units"] if summary else (curve["wu_flops"][-1] if curve["wu_flops"] else 0.0),
        "summary": ({k: summary.get(k) for k in ("best", "final", "aux_best", "aux_final", "best_train", "n_train",
                                                 "n_val")} if summary else None),
        "store_fingerprint": fingerprint, "config": task["config"], "curve": curve,
    }
    rec = round_floats(rec)
    rec["config"] = task["config"]  # as resolved, not rounded
    if extend is not None:
        rec.update(extend(out, rec))
    write_json(rec_path, rec)
    if not keep_models:
        for p in out.glob("*.pt"):
            p.unlink(missing_ok=True)
    return rec


def run_worker(args: tuple) -> tuple[str, dict | None, str | None]:
    """:func:`run_task` for a process pool (``args``: task, threads, keep_models, fingerprint):
    ``(run_id, record, None)`` or ``(run_id, None, traceback)``."""
    task, threads, keep, fp = args
    return guarded(run_task, task["run_id"], task, threads, keep, fp)
