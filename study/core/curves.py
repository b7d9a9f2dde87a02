"""Reading a run's record: its curve at a budget, in FLOP or paper work units.

A metric "at budget B in measure M" uses the evaluations whose M-count (FLOP
or paper work units) is <= B: *best* is their minimum (the paper's tables),
*final* the last one.  A run that diverged before B counts as failed (inf) at B.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def mask_growth(curve: Mapping[str, list], masked: tuple[str, ...]) -> dict[str, list]:
    """The curve with the coarse-net evaluations of a growing network out of its fine-net columns ``masked``
    (copied to ``grow_val_mse`` and ``grow_val_linf``)."""
    levels = curve.get("growth_level")
    if not levels or not any(levels):
        return dict(curve)
    out = dict(curve)
    for key in ("val_mse", "val_linf"):
        out[f"grow_{key}"] = [v if lv else None for v, lv in zip(curve[key], levels)]
    for key in masked:
        if key in curve:
            out[key] = [None if lv else v for v, lv in zip(curve[key], levels)]
    return out


def cut(record: Mapping, measure: str, budget: float) -> list[int] | None:
    """Indices of the evaluations with ``measure`` count <= budget; None if the run failed before."""
    c = record["curve"]
    wu = c[f"wu_{measure}"]
    idx = [i for i, w in enumerate(wu) if w <= budget * (1 + 1e-9) + 1e-9]
    if record.get("status") != "ok":
        last = wu[-1] if wu else 0.0
        if last < budget * (1 - 1e-9):
            return None
    return idx


def readout(record: Mapping, key: str, measure: str, budget: float, how: str) -> float:
    """``best`` (min) or ``final`` (last) of curve ``key`` up to ``budget`` in ``measure``; inf if failed."""
    idx = cut(record, measure, budget)
    if idx is None:
        return math.inf
    vals = record["curve"].get(key)
    if vals is None:
        return math.nan
    sel = [vals[i] for i in idx if vals[i] is not None and math.isfinite(vals[i])]
    if not sel:
        return math.nan
    if how == "best":
        return min(sel)
    if how == "final":
        v = vals[idx[-1]]
        return v if v is not None and math.isfinite(v) else math.nan
    raise ValueError(f"how = {how!r}: allowed: 'best', 'final'")


def curve_key(metric: str, aux: bool, split: str = "val") -> str:
    """The curve column of ``metric`` on ``split``, of the first auxiliary net when ``aux`` (validation only)."""
    return f"{'aux_' if aux and split == 'val' else ''}{split}_{metric}"
