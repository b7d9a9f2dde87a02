"""The second study's presets: set-up sizes, the search budget, final seeds and the regime map.

Sizes are the first study's (:data:`study.core.SIZES`), so the core's sizes
paragraph describes them; ``tuning`` is the search: ``trials`` per tuned
method (the same for every method), ``startup`` random trials before TPE,
``seed`` the training seed of every trial (the final runs use seeds
0..``seeds``-1).
"""

from __future__ import annotations

import copy
from typing import Any

from study.core import DATA, SIZES, describe_setups
from study.v2.methods import Method, main_methods, variant

BASELINE = "adamw"
TUNING_SEED = 1000           # training seed of every tuning trial; the final runs use 0, 1, ...
FAS_MATCH = "after"          # HEM matching after pre-smoothing (Algorithm 2), set explicitly for every run
QUICK = {"budget_wu": 20}     # over the first study's quick set-ups
# Regime-map variants: (name, base method, more FAS levels, more growth levels)
REGIME_VARIANTS = [("fas-adamw-l3", "fas-adamw", 3, None), ("ni-adamw-l3", "ni-adamw", None, 3)]
REGIME_METHODS = ["adamw", "fas-adamw", "fas-adamw-l3", "ni-adamw", "ni-adamw-l3"]   # the baseline first

PRESETS: dict[str, dict[str, Any]] = {
    "full": {
        **DATA,
        **{k: SIZES["full"][k] for k in ("data", "seeds", "eval_train_samples")},   # the first study's stores
        "tuning": {"trials": 16, "startup": 8, "seed": TUNING_SEED},
        # the first study's set-ups, Poisson FC at 1,500 instead of 10,000 work units
        "setups": {**SIZES["full"]["setups"],
                   "poisson_fc": {**SIZES["full"]["setups"]["poisson_fc"], "budget_wu": 1500, "eval_every_wu": 25}},
        "regime": {"setup": "darcy_fc", "n_train": [100, 400], "seeds": 3, "methods": REGIME_METHODS},
    },
    "quick": {
        "smoke_test": True,
        **DATA,
        **{k: SIZES["quick"][k] for k in ("data", "eval_train_samples")},
        "seeds": 2,
        "tuning": {"trials": 2, "startup": 2, "seed": TUNING_SEED},
        "setups": {name: {**setup, **QUICK} for name, setup in SIZES["quick"]["setups"].items()},
        "regime": {"setup": "darcy_fc", "n_train": [80], "seeds": 2, "methods": REGIME_METHODS},
    },
}


def methods() -> dict[str, Method]:
    """Every method by name: the main ones in report order, then the regime-map variants."""
    out = main_methods()
    for name, base, levels, growth in REGIME_VARIANTS:
        out[name] = variant(out, base, levels=levels, growth=growth)
    return out


METHODS = methods()


def build_spec(preset_name: str, *, setups: list[str] | None = None, trials: int | None = None,
               seeds: int | None = None, match: str | None = None) -> dict[str, Any]:
    """The preset with everything derived: sample counts, methods and their spaces, the selection."""
    spec = copy.deepcopy(PRESETS[preset_name])
    spec.update(preset=preset_name, study="v2", baseline=BASELINE, fas_match=match or FAS_MATCH)
    if trials is not None:
        spec["tuning"]["trials"] = int(trials)
        spec["tuning"]["startup"] = min(spec["tuning"]["startup"], int(trials))
    if seeds is not None:
        spec["seeds"] = int(seeds)
        spec["regime"]["seeds"] = min(spec["regime"]["seeds"], int(seeds))
    spec["method_defs"] = {name: m.spec() for name, m in METHODS.items()}
    spec["methods"] = [name for name, m in METHODS.items() if m.tuned_from is None]
    describe_setups(spec, setups)
    spec["regime"]["budget_wu"] = spec["setups"][spec["regime"]["setup"]]["budget_wu"]
    return spec


def tuned_methods(spec: dict) -> list[str]:
    """The methods with a search (the others run at the paper's settings)."""
    return [m for m in spec["methods"] if spec["method_defs"][m]["tune"]]
