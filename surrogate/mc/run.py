""":func:`estimate`: the Monte Carlo run, surrogate only or as a control variate beside FEM solves."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from surrogate import distributed
from surrogate.config import MCConfig
from surrogate.mc.cost import surrogate_cost
from surrogate.mc.errors import MCError, MCWarning
from surrogate.mc.estimators import control_variate, equal_cost, plain_mc, surrogate_error
from surrogate.mc.fields import FieldSampler
from surrogate.mc.models import Predict, as_model, darcy_fem, resolve_field, trained_store_params, training_field
from surrogate.mc.result import MCResult
from surrogate.mc.reuse import REUSE, heldout_pairs
from surrogate.runtime import pick_device

_DEFAULTS = MCConfig()
#: Fields i..j-1 of a run as a (j - i, n, n) array.
Draw = Callable[[int, int], np.ndarray]


def _sizes(fields: Any, n: int | None) -> tuple[Any, np.ndarray | None]:
    """(N, the caller's fields or None) from ``fields`` (an array (N, n, n), N or None) and ``n``."""
    if isinstance(fields, (int, np.integer)) and not isinstance(fields, bool):
        if n is not None and n != fields:
            raise MCError(f"estimate: n given twice ({fields} and {n})")
        return int(fields), None
    if fields is None:
        if n is None:
            raise MCError("estimate: give the fields or their number N")
        return n, None
    given = np.asarray(fields, dtype=np.float64)
    if given.ndim != 3 or given.shape[1] != given.shape[2]:
        raise MCError(f"estimate: fields must have shape (N, n, n), got {given.shape}")
    if n is not None and n != given.shape[0]:
        raise MCError(f"estimate: n = {n} but {given.shape[0]} fields were given")
    return given.shape[0], given


def _per_s(t: float) -> float | None:
    return 1.0 / t if t > 0 else None


def _surrogate_pass(predict: Predict, draw: Draw, cfg: MCConfig, progress: bool,
                    device: Any) -> tuple[np.ndarray, float, float]:
    """(Q_sur of the N fields, seconds per field drawing, seconds per prediction).

    Under ``torchrun`` each process takes every P-th batch of fields (field i
    depends on (seed, i) alone) and the Q values are summed over the processes.
    """
    n, size, rank, world = cfg.n, cfg.batch_size, distributed.rank(), distributed.joined_processes()
    q_sur = np.zeros(n)
    t_field = t_sur = 0.0
    starts = range(rank * size, n, world * size)
    bar = tqdm(total=n, unit="field", desc="surrogate", disable=not progress or n <= size or rank != 0)
    for a in starts:
        b = min(a + size, n)
        t0 = time.perf_counter()
        x = draw(a, b)
        t1 = time.perf_counter()
        q_sur[a:b] = predict(x, size)
        t_field, t_sur = t_field + (t1 - t0), t_sur + (time.perf_counter() - t1)
        bar.update((b - a) * world)
    bar.close()
    q_sur = distributed.sum_over_processes(q_sur, device)
    if not np.all(np.isfinite(q_sur)):
        raise MCError(f"the surrogate predicted {int((~np.isfinite(q_sur)).sum())} non-finite Q values")
    mine = sum(min(a + size, n) - a for a in starts) or 1
    return q_sur, t_field / mine, t_sur / mine


def _fem_pass(hifi: Callable[[np.ndarray], Any], draw: Draw, m: int, progress: bool,
              device: Any) -> tuple[np.ndarray, float]:
    """(Q_fem of the first ``m`` fields, seconds per solve); processes share the solves by index."""
    rank, world = distributed.rank(), distributed.joined_processes()
    fields = draw(0, m)
    if isinstance(fields, torch.Tensor):  # drawn on the surrogate's device
        fields = fields.double().cpu().numpy()
    q_fem = np.zeros(m)
    mine = range(rank, m, world)
    t0 = time.perf_counter()
    for i in tqdm(mine, unit="solve", desc="FEM", disable=not progress or rank != 0):
        out = hifi(fields[i])
        q_fem[i] = float(out["Q"] if isinstance(out, Mapping) else out)
    t_fem = (time.perf_counter() - t0) / max(len(mine), 1)
    q_fem = distributed.sum_over_processes(q_fem, device)
    if not np.all(np.isfinite(q_fem)):
        raise MCError("the high-fidelity model returned non-finite Q values")
    return q_fem, t_fem


def _reused(sur, predict: Predict, params: Mapping, trained: Mapping | None, batch_size: int) -> dict:
    """The store's test pairs (:mod:`surrogate.mc.reuse`) with the surrogate's predictions and their seconds."""
    if sur is None:
        raise MCError("mc.reuse: test needs a trained surrogate (its store and splits are in the model file)")
    log_k, q_fem, info = heldout_pairs(sur, params, training_field(trained))
    t0 = time.perf_counter()
    q_sur = predict(log_k, batch_size)
    return {"q_fem": q_fem, "q_sur": q_sur, "info": info, "t_sur": (time.perf_counter() - t0) / len(q_fem)}


def _fem_time(t_fem: float | None, sur_cost: dict | None) -> float:
    """Seconds per FEM solve: measured in this run, else from the surrogate's data cost."""
    if t_fem is not None:
        return t_fem
    data = (sur_cost or {}).get("data") or {}
    if data.get("seconds") and data.get("samples"):
        return data["seconds"] / data["samples"]
    raise MCError("mc: no FEM solve was timed (fem_n: 0) and the store's generation time is unknown; set "
                  "mc.fem_n >= 3 for the cost comparison")


def _field_source(sur, trained, given, grid, cfg: MCConfig, dev) -> tuple[dict, list[str], int, Any]:
    """(field params, differences from training, grid, sampler or None for the caller's ``given`` fields)."""
    grid_n = sur.layout.n if sur is not None else None
    if given is not None:
        if grid_n is not None and given.shape[1] != grid_n:
            raise MCError(f"estimate: fields are {given.shape[1]} x {given.shape[1]}, the surrogate's grid is "
                          f"{grid_n} x {grid_n}")
        # the caller's fields are drawn as the caller chose; the params only configure the FEM problem
        return {**training_field(trained), **cfg.field}, [], given.shape[1], None
    params, diffs = resolve_field(trained, cfg.field, sur is not None)
    grid_n = grid_n or grid
    if grid_n is None:
        raise MCError("estimate: the grid size is unknown; pass fields, a Surrogate or grid=n")
    on_device = sur is not None and params.get("method", "fft") == "fft" and cfg.sampler != "numpy"
    return params, diffs, grid_n, FieldSampler(grid_n, params, cfg.seed, device=dev if on_device else None)


def _with_fem(q_sur, q_fem, reused: dict | None, m: int, beta) -> tuple[np.ndarray, dict, dict, dict]:
    """(FEM values of the pairs, their plain MC, the surrogate's error on them, the control variate)."""
    f, g = _pairs(q_fem, q_sur, reused, m)
    fem_stats = plain_mc(f)
    return f, fem_stats, surrogate_error(g, f), control_variate(f, g, q_sur, beta, shared=m)


def _fem_costs(cost: dict, t_fem, setup: float, sur, cfg: MCConfig, fem_stats: dict, cv: dict,
               reused: dict | None) -> dict:
    """The FEM side of the cost: per-solve seconds, the surrogate's build, the equal-cost comparisons."""
    sur_cost = surrogate_cost(sur.path, sur.meta) if sur is not None else None
    t_fem = _fem_time(t_fem, sur_cost)
    return {"t_fem_s": t_fem, "fem_per_s": _per_s(t_fem), "fem_setup_s": setup, "surrogate_build": sur_cost,
            **equal_cost(cfg.n, cfg.fem_n, cost["t_field_s"], cost["t_surrogate_s"], t_fem, fem_stats["var"], cv,
                         reused=len(reused["q_fem"]) if reused else 0,
                         fixed_s=(sur_cost or {}).get("total_s", 0.0))}


def _pairs(q_fem, q_sur, reuse: dict | None, m: int) -> tuple[np.ndarray, np.ndarray]:
    """(FEM, surrogate) values of every pair: the reused store pairs, then the first M fresh fields."""
    f = [reuse["q_fem"]] if reuse else []
    g = [reuse["q_sur"]] if reuse else []
    if m:
        f.append(q_fem)
        g.append(q_sur[:m])
    return np.concatenate(f), np.concatenate(g)


def _sources(model: Any, given: np.ndarray | None, grid: int | None, cfg: MCConfig, dev) -> tuple:
    """The surrogate and the fields: (predict, Surrogate or None, name, training store params, field params,
    their differences from training (warned about), grid, sampler or None for the caller's ``given`` fields)."""
    predict, sur, name = as_model(model, dev)
    trained = trained_store_params(sur)
    params, diffs, grid_n, sampler = _field_source(sur, trained, given, grid, cfg, dev)
    for d in diffs:
        warnings.warn(f"Monte Carlo fields differ from the surrogate's training fields: {d}", MCWarning,
                      stacklevel=3)
    return predict, sur, name, trained, params, diffs, grid_n, sampler


def estimate(model: Any, fields: np.ndarray | int | None = None, *, n: int | None = None, fem_n: int = 0,
             seed: int = _DEFAULTS.seed, batch_size: int = _DEFAULTS.batch_size, device: Any = "auto",
             field_params: Mapping | None = None, sampler: str = "auto",
             hifi: Callable[[np.ndarray], Any] | None = None,
             beta: float | None = None, grid: int | None = None, progress: bool = False,
             reuse: str = "none") -> MCResult:
    """Monte Carlo estimate of E[Q] with a surrogate, alone or as a control variate beside FEM solves.

    ``model``: a model path (file or directory), a :class:`surrogate.io.Surrogate`
    (must be a Darcy surrogate of Q), or any callable / object with ``predict``
    mapping fields (B, n, n) to Q (B,) (then ``field_params`` or ``fields``
    must be given).  ``fields``: an array (N, n, n) of log-permeability fields,
    or the number N of fresh fields to draw (also ``n=``).  ``fem_n``: M
    high-fidelity solves on the first M fields (0: surrogate only).
    ``hifi``: the high-fidelity model, a callable log_k (n, n) -> Q (a float
    or a dict with ``"Q"``); default: :class:`pde_data.darcy.DarcyProblem` with
    the training store's parameters (needs DOLFINx).  ``field_params``:
    overrides of the training field parameters (warns when they differ).
    ``beta``: a fixed control-variate coefficient (default: estimated).
    ``grid``: cells per side of the fields to draw for a bare callable model.
    ``reuse``: ``test`` adds the store's test split as FEM/surrogate pairs without new
    solves (:mod:`surrogate.mc.reuse`); the cost figures then count the
    surrogate's data and training too (:mod:`surrogate.mc.cost`).
    ``device``: where the surrogate runs (a Surrogate on another device is copied there). ``sampler``: where
    fresh fields are drawn: ``numpy`` (per-index reference), ``torch`` or ``auto`` (torch on ``device`` for
    FFT fields of a trained surrogate, else numpy; :mod:`surrogate.mc.fields`). Warns (:class:`MCWarning`)
    when the fields differ from the training fields. Sizes, seed and ``field_params`` are checked as
    :class:`surrogate.config.MCConfig`.
    """
    n, given = _sizes(fields, n)
    cfg = MCConfig(n=n, fem_n=fem_n, seed=seed, batch_size=batch_size, sampler=sampler, field=field_params)
    if reuse not in REUSE:
        raise MCError(f"mc.reuse: {reuse!r} is not allowed; need one of {', '.join(REUSE)}")
    n = cfg.n
    dev = pick_device(device, key="mc.device")
    predict, sur, name, trained, params, diffs, grid_n, sampler = _sources(model, given, grid, cfg, dev)

    # the FEM model first (fail before the surrogate pass when the FEM stack is missing)
    setup = 0.0
    if cfg.fem_n > 0 and hifi is None:
        hifi, setup = darcy_fem(trained, params, grid_n)
    reused = _reused(sur, predict, params, trained, cfg.batch_size) if reuse == "test" else None

    draw = sampler.draw if sampler is not None else (lambda a, b: given[a:b])
    q_sur, t_field, t_sur = _surrogate_pass(predict, draw, cfg, progress, dev)
    t_field = t_field if sampler is not None else 0.0
    sur_stats = {**plain_mc(q_sur), "note": "estimates E[Q_sur]: biased by the surrogate's mean error (not in the SE)"}
    cost = {"t_field_s": t_field, "t_surrogate_s": t_sur, "surrogate_per_s": _per_s(t_sur),
            "cost_s": n * (t_field + t_sur)}
    q_fem = fem_stats = err = cv = t_fem = None
    if cfg.fem_n > 0:
        q_fem, t_fem = _fem_pass(hifi, draw, cfg.fem_n, progress, dev)
    if cfg.fem_n > 0 or reused is not None:
        q_fem, fem_stats, err, cv = _with_fem(q_sur, q_fem, reused, cfg.fem_n, beta)
        cost.update(_fem_costs(cost, t_fem, setup, sur, cfg, fem_stats, cv, reused))
    return MCResult(n=n, fem_n=cfg.fem_n, seed=cfg.seed if sampler is not None else None, surrogate=sur_stats,
                    fem=fem_stats, surrogate_error=err, control_variate=cv, cost=cost, field_params=params,
                    field_params_trained=training_field(trained) if trained else None, field_params_differ=diffs,
                    model=name, device=str(dev), q_sur=q_sur, q_fem=q_fem,
                    reuse=reused["info"] if reused else None)
