"""What a surrogate cost to build, for Monte Carlo figures at total cost: its FEM data and its training.

**Data**: every sample of the store the surrogate was trained on (train,
validation and test splits: all were solved for it). The store's
``generation`` attribute (seconds and samples of the ``pde-data generate``
runs that wrote it, summed over the MPI ranks) when it has one; otherwise
the per-sample time of a few draws and solves timed now with the store's
parameters, times the store's size (said so in ``source``).

**Training**: ``elapsed_s`` of the model's ``train_summary.json`` (beside
the model file); for the pipeline's selected model (``selection.json``),
the chosen model's training, and the training of the other candidates as
``selection_s``: the user paid for them to pick one. Both are wall seconds
of one process; a model trained on several processes counts its wall time
times the processes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

#: Draws and solves timed when a store records no generation time.
TIMED_SOLVES = 16


def store_generation(info: Mapping | None) -> dict[str, Any]:
    """{"seconds", "samples", "source"} of the store a model's ``meta["store"]`` describes."""
    info = dict(info or {})
    samples = int(info.get("n_samples") or info.get("n_done") or 0)
    path = info.get("path")
    recorded = _recorded(path)
    if recorded is not None and recorded.get("samples"):
        seconds = float(recorded["seconds"]) * samples / int(recorded["samples"])
        return {"seconds": seconds, "samples": samples, "source": f"recorded by pde-data generate ({path})"}
    params = info.get("params")
    if info.get("problem") == "darcy" and isinstance(params, Mapping) and samples:
        per_sample = timed_darcy_sample(params)
        if per_sample is not None:
            return {"seconds": per_sample * samples, "samples": samples,
                    "source": f"estimated: {samples} samples x {per_sample * 1e3:.3g} ms, the mean of "
                              f"{TIMED_SOLVES} draws and solves timed now (the store records no generation time)"}
    return {"seconds": None, "samples": samples, "source": "unknown (the store and the FEM stack are not available)"}


def _recorded(path: Any) -> dict | None:
    if not path or not Path(path).exists():
        return None
    try:
        from pde_data.store import GENERATION, StoreReader

        gen = StoreReader(path).group.attrs.get(GENERATION)
    except Exception:  # noqa: BLE001 - an unreadable store records nothing
        return None
    return dict(gen) if isinstance(gen, Mapping) and "seconds" in gen else None


def timed_darcy_sample(params: Mapping) -> float | None:
    """Seconds per draw + solve of a Darcy sample with ``params`` (the mean of :data:`TIMED_SOLVES`, after one)."""
    try:
        from pde_data.darcy import DarcyProblem
    except ImportError:
        return None
    problem = DarcyProblem(**{k: v for k, v in params.items() if k in DarcyProblem.PARAMS and v is not None})
    rng = np.random.default_rng(0)
    problem.solve(problem.draw(rng))
    t0 = time.perf_counter()
    for _ in range(TIMED_SOLVES):
        problem.solve(problem.draw(rng))
    return (time.perf_counter() - t0) / TIMED_SOLVES


def training(model: str | Path | None) -> dict[str, Any]:
    """{"seconds", "selection_s", "source"}: the model's training and the other candidates' (if selected)."""
    if model is None:
        return {"seconds": None, "selection_s": 0.0, "source": "unknown (no model path)"}
    folder = Path(model) if Path(model).is_dir() else Path(model).parent
    own = _elapsed(folder)
    if own is not None:
        return {"seconds": own, "selection_s": 0.0, "source": f"{folder / 'train_summary.json'}"}
    selection = folder / "selection.json"
    if selection.exists():
        try:
            sel = json.loads(selection.read_text())
            chosen = Path(sel["chosen"]["model"])
            others = [Path(c["model"]) for c in sel.get("candidates", []) if Path(c["model"]) != chosen]
        except (ValueError, KeyError, TypeError):
            return {"seconds": None, "selection_s": 0.0, "source": f"unknown ({selection} unreadable)"}
        seconds = _elapsed(chosen)
        spent = [_elapsed(o) for o in others]
        return {"seconds": seconds, "selection_s": float(sum(s for s in spent if s is not None)),
                "candidates": len(others) + 1,
                "source": f"{chosen / 'train_summary.json'} (selected by {selection}; selection_s: the other "
                          f"{len(others)} candidates' training)"}
    return {"seconds": None, "selection_s": 0.0, "source": f"unknown (no train_summary.json beside {model})"}


def _elapsed(folder: Path) -> float | None:
    path = folder / "train_summary.json"
    if not path.exists():
        return None
    try:
        s = json.loads(path.read_text())
        return float(s["elapsed_s"]) * int(s.get("processes") or 1)
    except (ValueError, KeyError, TypeError):
        return None


def surrogate_cost(model: str | Path | None, meta: Mapping | None) -> dict[str, Any]:
    """Data and training of the surrogate at ``model`` (path) with metadata ``meta``; ``total_s`` counts
    data + training + selection (None parts count as 0 and are named in ``unknown``)."""
    data = store_generation((meta or {}).get("store"))
    train = training(model)
    parts = {"data_s": data["seconds"], "training_s": train["seconds"], "selection_s": train["selection_s"]}
    unknown = [k for k, v in parts.items() if v is None]
    total = float(sum(v for v in parts.values() if v is not None))
    return {**parts, "total_s": total, "unknown": unknown, "data": data, "training": train}
