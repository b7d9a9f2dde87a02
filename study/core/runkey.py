"""A run's cache key, derived from its resolved config: when a finished record stands for a planned run.

A record (``record.json``) keeps the whole resolved config of its run
(:meth:`surrogate.config.RunConfig.to_dict`) and the fingerprint of its
store. A planned run is *current* -- skipped on resume -- when its record
has the same store fingerprint and the same :func:`run_key`:

* the config's keys, flattened (``train.fas.match``);
* without where the run went (:data:`WHERE_IT_RAN`: ``train.device``);
* with the per-problem target table ``data.target`` replaced by the run's
  effective target (``{darcy: Q}`` and ``{}`` are the same Darcy run;
  ``{darcy: p}`` is not);
* without every key at its **built-in default**, the default of its field in
  the config classes (:mod:`surrogate.config`), not of ``params.yaml``.

Old records lack the keys added since they were written. The rule reads a
key that a record lacks at its built-in default, as schema evolution does
(protobuf, Avro). Hence:

* a key added with a backwards-compatible default (the value that
  reproduces the behaviour before it existed, as ``train.growth.perturbation``
  = 1 or ``train.parametrization`` = standard) leaves every committed record
  current, with no table to edit;
* a run that sets such a key to anything else does not match a record
  that lacks it: a record never silently stands for another configuration;
* a key a record holds counts at the value it holds, whatever today's
  default: a default changed later leaves a record that stored the old
  value standing for the old value (the editions spell out every knob
  they compare, :class:`study.core.setups.Setup`, so their runs do not move
  with a default either);
* a key the current config does not know (removed or renamed) stays in the
  record's key, so the record is stale: nothing says what it would mean now.

The blind spot: changing the built-in default of a key that some records
*predate* makes them read as the new default. Whoever changes such a
default writes the value those records ran with into them; the committed
records of v1 and v2 were completed so once, with every key they
predated at the value of their time (``train.fas.match`` before,
``train.growth.state`` reset and ``perturbation`` 1, ``train.schedule``
constant, ``data.stream_order`` global, ``train.parametrization``
standard, ``data.target`` for the old ``data.darcy_target``), after those
defaults had moved. ``tests/test_study.py`` and ``tests/test_study_v2.py``
check that every committed record is current for the run its edition
plans, so a default moved under a key that an edition sets fails them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from params import flatten

#: Keys that say where a run went, not what it computed.
WHERE_IT_RAN = frozenset({"train.device"})
TARGET = "data.target"
_ABSENT = object()


@functools.cache
def builtin_defaults(problem: str | None, kind: str | None) -> dict[str, Any]:
    """The built-in default of every key of a run of ``problem`` with a ``kind`` network, flattened (the
    effective target of ``problem`` under ``data.target``; no model keys for an unknown ``kind``)."""
    from surrogate.config import MODELS, DataConfig, TrainConfig

    data = DataConfig()
    tree = {"data": {k: v for k, v in data.to_dict().items() if k != "target"}, "train": TrainConfig().to_dict()}
    if kind in MODELS:
        tree["model"] = MODELS[kind]().to_dict()
    out = flatten(tree)
    if problem is not None:
        out[TARGET] = data.target_of(problem)
    return out


def _effective_target(flat: dict[str, Any]) -> dict[str, Any]:
    """``flat`` with the ``data.target.PROBLEM`` entries replaced by ``data.target`` = the run's target."""
    problem = flat.get("problem")
    if problem is None:
        return flat
    table = {k[len(TARGET) + 1:]: v for k, v in flat.items() if k.startswith(TARGET + ".")}
    out = {k: v for k, v in flat.items() if not k.startswith(TARGET + ".")}
    if problem in table:
        out[TARGET] = table[problem]
    return out


def run_key(config: Mapping) -> dict[str, Any]:
    """The cache key of a run's config (nested, as records keep it, or flat): see the module docstring."""
    flat = _effective_target(flatten(config))
    defaults = builtin_defaults(flat.get("problem"), flat.get("model.kind"))
    return {k: v for k, v in sorted(flat.items())
            if k not in WHERE_IT_RAN and defaults.get(k, _ABSENT) != v}


def same_run(a: Mapping, b: Mapping) -> bool:
    """Whether two configs are the same run (equal :func:`run_key`)."""
    return run_key(a) == run_key(b)


def record_is_current(task: Mapping, fingerprint: str | None) -> bool:
    """Whether ``task["dir"]/record.json`` was written for the task's config (:func:`run_key`) and for the
    store with ``fingerprint``."""
    path = Path(task["dir"]) / "record.json"
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return (rec.get("store_fingerprint") == fingerprint and isinstance(rec.get("config"), Mapping)
            and same_run(rec["config"], task["config"]))
