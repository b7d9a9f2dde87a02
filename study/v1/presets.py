"""The first study's presets: the shared set-up sizes (:data:`study.core.SIZES`), its methods and regime map."""

from __future__ import annotations

import copy

from study.core import DATA, SIZES, describe_setups
from study.v1.methods import METHODS, method_defs

REGIME_METHODS = ["sgd", "fas2", "fas3", "fas4"]

PRESETS: dict[str, dict] = {
    "full": {
        **DATA, **SIZES["full"],
        "regime": {"setup": "poisson_fc", "n_train": [100, 500, 2000], "methods": REGIME_METHODS,
                   "budget_wu": 1000, "seeds": 3},
    },
    "quick": {
        "smoke_test": True,
        **DATA, **SIZES["quick"],
        "regime": {"setup": "poisson_fc", "n_train": [80], "methods": REGIME_METHODS, "budget_wu": 20, "seeds": 2},
    },
}


def build_spec(preset_name: str, seeds: int | None = None, setups: list[str] | None = None) -> dict:
    """The preset with everything derived from it: sample counts, methods, the paper's networks, the selection."""
    spec = copy.deepcopy(PRESETS[preset_name])
    spec["preset"] = preset_name
    if seeds is not None:
        spec["seeds"] = int(seeds)
        spec["regime"]["seeds"] = min(spec["regime"]["seeds"], int(seeds))
    spec["methods"] = list(METHODS)
    spec["method_defs"] = method_defs()
    describe_setups(spec, setups)
    return spec
