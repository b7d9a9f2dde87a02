"""What a Monte Carlo run evaluates: the surrogate as fields -> Q, its training fields, the FEM model."""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pde_data.fields import FIELD_PARAMS, check_field_params
from pde_data.store import StoreReader
from surrogate.io import Surrogate, load
from surrogate.mc.errors import MCError, MCWarning

#: The model of a run: fields (B, n, n) and a batch size -> Q (B,) as float64.
Predict = Callable[[np.ndarray, int], np.ndarray]
#: The boundary data of a Darcy store; without them the FEM solves use DarcyProblem's defaults.
BOUNDARY = ("inflow", "outflow", "p_in", "p_out")


def _q(y: Any) -> np.ndarray:
    return np.asarray(y, dtype=np.float64).reshape(-1)


def _darcy_q(model: Surrogate, device: torch.device) -> Surrogate:
    """``model`` on ``device`` (a copy when it is elsewhere), checked to be a Darcy surrogate of Q."""
    if model.problem != "darcy":
        raise MCError(f"model {model.path or ''!s}: it is a {model.problem!r} surrogate; the Monte Carlo "
                      "estimate of the Darcy outflow QoI needs a Darcy surrogate trained with target Q "
                      "(data.target: {darcy: Q} or {darcy: Q+p})")
    if "Q" not in model.targets:
        raise MCError(f"model {model.path or ''!s}: this Darcy surrogate predicts {list(model.targets)}, "
                      "not the outflow QoI Q; train it with data.target: {darcy: Q} or {darcy: Q+p}")
    if model.device != device:
        return Surrogate(copy.deepcopy(model.net), model.meta, device, model.path)
    return model


def as_model(model: Any, device: torch.device) -> tuple[Predict, Surrogate | None, str]:
    """(predict, the Surrogate or None, a description) of a model path, a Surrogate or a callable."""
    if isinstance(model, (str, Path)):
        model = load(model, device)
    if isinstance(model, Surrogate):
        sur = _darcy_q(model, device)

        def predict(x: np.ndarray, batch_size: int) -> np.ndarray:
            y = sur.predict(x, batch_size=batch_size)
            return _q(y["Q"] if isinstance(y, dict) else y)

        return predict, sur, str(sur.path)
    if hasattr(model, "predict") and callable(model.predict):
        return (lambda x, b: _q(model.predict(x))), None, repr(model)
    if callable(model):
        return (lambda x, b: _q(model(x))), None, repr(model)
    raise MCError(f"model: expected a model path, a Surrogate or a callable fields -> Q; got {type(model).__name__}")


def trained_store_params(sur: Surrogate | None) -> dict | None:
    """The generator params of the store ``sur`` was trained on (model metadata, else the store itself)."""
    if sur is None:
        return None
    info = sur.meta.get("store") or {}
    if isinstance(info.get("params"), Mapping):
        return dict(info["params"])
    path = info.get("path")
    if path and Path(path).exists():  # older model files: read the store, if it is still the same one
        try:
            store = StoreReader(path)
            if store.fingerprint() == info.get("fingerprint") and isinstance(store.record.get("params"), Mapping):
                return dict(store.record["params"])
        except Exception:  # noqa: BLE001 - then the params are unknown
            return None
    return None


#: Keys that choose how fields are drawn, not their distribution: a store that does not record one
#: (written before the key existed) takes the default.
SAMPLER_KEYS = {"method"}


def training_field(trained: Mapping | None) -> dict:
    """The random-field parameters among the training store's params ({} when unknown)."""
    return {k: trained[k] for k in FIELD_PARAMS if k in trained} if trained else {}


def resolve_field(trained: Mapping | None, overrides: Mapping, surrogate: bool = True) -> tuple[dict, list[str]]:
    """(checked field params to draw from: the training ones <- ``overrides``, readable differences).

    ``surrogate``: the model is a trained surrogate (not a bare callable), so
    unknown training parameters are worth a warning.
    """
    trained_field = training_field(trained)
    defaults = {k: FIELD_PARAMS[k].default for k in SAMPLER_KEYS & set(FIELD_PARAMS)}
    params = {**defaults, **trained_field, **overrides}
    missing = [k for k in FIELD_PARAMS if k not in params and not (k == "nu" and params.get("kernel") != "matern")]
    if missing:
        raise MCError("the random-field parameters of the model's training store are unknown "
                      f"(missing {', '.join(missing)}); give them in mc.field (keys {', '.join(FIELD_PARAMS)})")
    params = check_field_params(**params, prefix="mc.field.")
    diffs = []
    matern = trained_field.get("kernel") == "matern"
    needed = [k for k in FIELD_PARAMS if k not in SAMPLER_KEYS and (k != "nu" or matern)]
    if surrogate and not all(trained_field.get(k) is not None for k in needed):
        diffs.append("the training store records no (or incomplete) field parameters; MC uses "
                     + ", ".join(f"{k}={params[k]!r}" for k in FIELD_PARAMS))
    diffs += [f"{k}: trained on {trained_field[k]!r}, MC uses {params[k]!r}" for k in FIELD_PARAMS
              if k in trained_field and k in overrides and _differs(trained_field[k], params[k])]
    return params, diffs


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return not math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    return a != b


def darcy_fem(trained: Mapping | None, field: Mapping, n: int) -> tuple[Callable[[np.ndarray], float], float]:
    """(log_k -> Q with :class:`pde_data.darcy.DarcyProblem`, set-up seconds); needs DOLFINx.

    The problem takes the training store's params, the field params ``field`` and ``n`` cells per side.
    """
    t0 = time.perf_counter()
    try:
        from pde_data.darcy import DarcyProblem
    except ImportError as exc:
        raise MCError(f"FEM solves (mc.fem_n > 0) need the FEM stack (DOLFINx via pde_data.darcy), "
                      f"which cannot be imported here ({exc}); install it or set mc.fem_n: 0 for a "
                      "surrogate-only estimate") from None
    kwargs = {k: v for k, v in dict(trained or {}).items() if k in DarcyProblem.PARAMS and v is not None}
    if not all(k in (trained or {}) for k in BOUNDARY):
        warnings.warn("the training store records no boundary data; the FEM solves use DarcyProblem's defaults",
                      MCWarning, stacklevel=3)
    kwargs.update({k: v for k, v in field.items() if v is not None})
    kwargs["n"] = int(n)
    problem = DarcyProblem(**kwargs)
    return (lambda log_k: problem.solve(log_k)["Q"]), time.perf_counter() - t0
