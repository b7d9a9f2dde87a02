"""The third study's presets and its spec: set-ups, methods, the tuning budget, seeds, targets.

Sizes are the second study's (the first study's set-ups, Poisson FC at 1,500 work units), so the core's
sizes paragraph describes them. ``tuning``: ``budget`` is the FLOP budget of one method's search in full-width
runs (the same for every method searched at full width; a coarse-level search gets ``tune_share`` of it),
``seeds`` the training seeds of each trial (its value is their mean best validation MSE), ``startup`` the
random trials before TPE, ``seed`` the first training seed of the trials (the final runs use 0, 1, ...).
"""

from __future__ import annotations

import copy
from typing import Any

from study.core import DATA, SIZES, describe_setups
from study.v3.methods import BASELINES, METHODS

TUNING_SEED = 1000
FRACTIONS = (0.25, 0.5, 1.0)   # the targets: the reference's median best validation MSE at these budget shares
QUICK = {"budget_wu": 20}

PRESETS: dict[str, dict[str, Any]] = {
    "full": {
        **DATA,
        **{k: SIZES["full"][k] for k in ("data", "seeds", "eval_train_samples")},
        "tuning": {"budget": 8.0, "seeds": 2, "startup": 3, "seed": TUNING_SEED, "max_trials": 64},
        "setups": {**SIZES["full"]["setups"],
                   "poisson_fc": {**SIZES["full"]["setups"]["poisson_fc"], "budget_wu": 1500, "eval_every_wu": 25}},
    },
    "quick": {
        "smoke_test": True,
        **DATA,
        **{k: SIZES["quick"][k] for k in ("data", "eval_train_samples")},
        "seeds": 2,
        "tuning": {"budget": 2.0, "seeds": 1, "startup": 1, "seed": TUNING_SEED, "max_trials": 4},
        "setups": {name: {**setup, **QUICK} for name, setup in SIZES["quick"]["setups"].items()},
    },
}


def build_spec(preset: str, *, setups: list[str] | None = None, methods: list[str] | None = None,
               seeds: int | None = None) -> dict[str, Any]:
    """The preset with everything derived: sample counts, the methods and their spaces, the selection."""
    spec = copy.deepcopy(PRESETS[preset])
    spec.update(preset=preset, study="v3", baselines=list(BASELINES), fractions=list(FRACTIONS))
    if seeds is not None:
        spec["seeds"] = int(seeds)
    chosen = methods or list(METHODS)
    bad = [m for m in chosen if m not in METHODS]
    if bad:
        raise SystemExit(f"--methods: unknown method(s) {', '.join(bad)} (allowed: {', '.join(METHODS)})")
    spec["methods"] = [m for m in METHODS if m in chosen]
    spec["method_defs"] = {name: METHODS[name].spec() for name in spec["methods"]}
    describe_setups(spec, setups)
    return spec
