""":func:`estimate_to_tolerance`: E[Q] of the Darcy outflow to a tolerance (``surrogate uq``).

Builds the coupled grid levels (:mod:`surrogate.mc.levels`) of the ``darcy``
problem, optionally with a trained surrogate as control variate on the
coarsest level, runs the adaptive algorithm (:mod:`surrogate.mc.adaptive`)
with resumable records (:mod:`surrogate.mc.records`) and returns a
:class:`surrogate.mc.uqresult.UQResult` with the total-cost comparison against
plain FEM Monte Carlo.

Records live in ``records/uq-KEY.jsonl`` under the records folder, KEY a
hash of what decides the samples (the problem, the grids, the seed, QMC
settings and the surrogate file): a second run with the same KEY, after a
kill or with a tighter tolerance, continues from them.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from surrogate.mc.adaptive import MultilevelRun, Plan, check_plan
from surrogate.mc.cost import surrogate_cost
from surrogate.mc.errors import MCError, MCWarning
from surrogate.mc.levels import FIELD_KEYS, DarcyHierarchy
from surrogate.mc.models import as_model, resolve_field, trained_store_params
from surrogate.mc.records import Records, key_of
from surrogate.mc.uqconfig import UQConfig
from surrogate.mc.uqresult import UQResult
from surrogate.outputs import model_file
from surrogate.runtime import pick_device

#: Batch of surrogate predictions.
PREDICT_BATCH = 4096


def darcy_problem(tree: Mapping) -> dict:
    """The Darcy keyword parameters (field and boundary, checked) of a params tree's ``darcy:`` section."""
    from pde_data.config import problem_config
    from pde_data.darcy import DarcyProblem

    family, _ = problem_config(tree, "darcy", DarcyProblem)
    return family


def store_problem(path: str | Path) -> dict:
    """The Darcy keyword parameters of the store at ``path`` (its record), for a DVC stage downstream of it."""
    from pde_data.darcy import DarcyProblem
    from pde_data.store import read_record

    rec = read_record(path)
    if rec["problem"] != "darcy":
        raise MCError(f"--store {path}: holds {rec['problem']!r} samples; uq estimates the Darcy outflow Q")
    return {k: v for k, v in rec["params"].items() if k in DarcyProblem.PARAMS}


def _surrogate(model: Any, problem: Mapping, device) -> tuple[tuple | None, dict | None, list[str]]:
    """((predict, n_g) for the hierarchy, the report's surrogate entry, warnings) of ``model`` (None: none)."""
    if model is None:
        return None, None, []
    predict, sur, name = as_model(model, device)
    if sur is None:
        raise MCError("uq.model: the control variate needs a trained surrogate (a model directory or file), "
                      "whose grid and training data are known")
    trained = trained_store_params(sur)
    field = {k: problem[k] for k in FIELD_KEYS if k in problem}
    _, diffs = resolve_field(trained, field, True)
    notes = [f"the surrogate's training fields differ from the darcy section: {d} (the control variate stays "
             "unbiased; only its correlation suffers)" for d in diffs]
    path = Path(sur.path) if sur.path else None
    entry = {"model": name, "grid": sur.layout.n, "sha256": _sha256(path), "cost": surrogate_cost(path, sur.meta)}
    return (lambda x: predict(x, PREDICT_BATCH), sur.layout.n), entry, notes


def _sha256(path: Path | None) -> str | None:
    if path is None:
        return None
    file = model_file(path)
    return hashlib.sha256(file.read_bytes()).hexdigest() if file.exists() else None


def estimate_to_tolerance(cfg: UQConfig, problem: Mapping, *, model: Any = None, records: str | Path | None = None,
                          progress: bool = False, device: Any = None) -> UQResult:
    """E[Q] to ``cfg``'s tolerance on the ``problem`` (Darcy keyword parameters); ``model``: surrogate CV.

    ``records``: the records folder (default ``cfg.records``; None in ``cfg`` and here: in memory only).
    Warns (:class:`MCWarning`) when the surrogate's training fields differ from ``problem``'s.
    """
    n = int(cfg.n or problem.get("n") or 32)
    dev = pick_device(device or cfg.device, key="uq.device")
    sur, entry, notes = _surrogate(model if model is not None else cfg.model, problem, dev)
    for note in notes:
        warnings.warn(note, MCWarning, stacklevel=2)
    hierarchy = DarcyHierarchy(problem, n, cfg.n_min, cfg.seed, qmc_dims=cfg.qmc_dims if cfg.qmc else 0,
                               surrogate=sur, device=dev)
    decides = {"problem": {k: v for k, v in problem.items() if k != "n"}, "grids": hierarchy.grids,
               "seed": cfg.seed, "qmc": [cfg.qmc_replicates, cfg.qmc_dims] if cfg.qmc else None,
               "surrogate": entry and entry["sha256"], "stream": "uq-1"}
    folder = records if records is not None else cfg.records
    path = None if folder is None else Path(folder) / f"uq-{key_of(decides)}.jsonl"
    plan = check_plan(Plan(rtol=cfg.rtol, atol=cfg.atol, adaptive=cfg.adaptive, theta=cfg.theta, pilot=cfg.pilot,
                           replicates=cfg.qmc_replicates if cfg.qmc else 0, max_cost_s=cfg.max_cost_s,
                           batch=cfg.batch))
    records = Records(path, decides)
    outcome = MultilevelRun(hierarchy, plan, records, progress).execute()
    records.add_setup(hierarchy.setup_s)
    return UQResult(outcome, n, hierarchy.grids, {"rtol": cfg.rtol, "atol": cfg.atol}, dict(records.setup_s),
                    entry, None if path is None else str(path), cfg.to_dict(), notes)
