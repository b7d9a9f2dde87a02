"""The second study's presets: set-up sizes, the search budget, final seeds and the regime map.

Sizes are in the first study's format (:data:`study.presets.PRESETS`), so
its sizes paragraph describes them; ``tuning`` is the search: ``trials`` per
tuned method (the same for every method), ``startup`` random trials before
TPE, ``seed`` the training seed of every trial (the final runs use seeds
0..``seeds``-1).
"""

from __future__ import annotations

import copy
from typing import Any

from study.presets import DATA, SETUPS, paper_arch, split_sizes
from study.presets import PRESETS as V1
from study.v2.methods import method_defs, space_of, variant

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
        **{k: V1["full"][k] for k in ("data", "seeds", "eval_train_samples")},   # the first study's stores
        "tuning": {"trials": 16, "startup": 8, "seed": TUNING_SEED},
        # the first study's set-ups, Poisson FC at 1,500 instead of 10,000 work units
        "setups": {**V1["full"]["setups"],
                   "poisson_fc": {**V1["full"]["setups"]["poisson_fc"], "budget_wu": 1500, "eval_every_wu": 25}},
        "regime": {"setup": "darcy_fc", "n_train": [100, 400], "seeds": 3, "methods": REGIME_METHODS},
    },
    "quick": {
        "smoke_test": True,
        **DATA,
        **{k: V1["quick"][k] for k in ("data", "eval_train_samples")},
        "seeds": 2,
        "tuning": {"trials": 2, "startup": 2, "seed": TUNING_SEED},
        "setups": {name: {**setup, **QUICK} for name, setup in V1["quick"]["setups"].items()},
        "regime": {"setup": "darcy_fc", "n_train": [80], "seeds": 2, "methods": REGIME_METHODS},
    },
}


def _defs() -> dict[str, dict]:
    defs = method_defs()
    for name, base, levels, growth in REGIME_VARIANTS:
        defs[name] = variant(defs, base, levels=levels, growth=growth)
    for d in defs.values():
        d["space"] = space_of(d)
    return defs


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
    spec["method_defs"] = _defs()
    spec["methods"] = [m for m in spec["method_defs"] if "tuned_from" not in spec["method_defs"][m]]
    spec["setups"] = {name: {**SETUPS[name], **sizes} for name, sizes in spec["setups"].items()}
    for name, s in spec["setups"].items():
        s["paper_arch"] = paper_arch(name)
        s["n_samples"] = spec["data"][s["problem"]]
        s["n_train"], s["n_val"] = split_sizes(s["n_samples"], spec["split"])
    spec["regime"]["budget_wu"] = spec["setups"][spec["regime"]["setup"]]["budget_wu"]
    spec["selected"] = list(setups) if setups else list(spec["setups"])
    bad = [s for s in spec["selected"] if s not in spec["setups"]]
    if bad:
        raise SystemExit(f"--setups: unknown set-up(s) {', '.join(bad)} (allowed: {', '.join(spec['setups'])})")
    return spec


def tuned_methods(spec: dict) -> list[str]:
    """The methods with a search (the others run at the paper's settings)."""
    return [m for m in spec["methods"] if spec["method_defs"][m]["tune"]]
