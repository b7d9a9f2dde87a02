"""Small shared helpers: the device picker and the one JSON writer of the package."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from params import ConfigError


def pick_device(name: str | torch.device, key: str = "train.device") -> torch.device:
    """``auto`` (CUDA when present), ``cpu`` or ``cuda``; a missing CUDA device is a :class:`ConfigError`."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key}: 'cuda' is not allowed here; no CUDA device is available (use auto or cpu)")
    return torch.device(name)


def jsonable(obj: Any) -> Any:
    """A strict-JSON copy: plain Python numbers (NaN and inf become None), lists, str keys, paths as str."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [jsonable(v) for v in obj]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    """Write :func:`jsonable` ``(obj)`` to ``path`` atomically (a temporary file, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(jsonable(obj), indent=indent) + "\n")
    os.replace(tmp, path)
    return path
