"""The second study's methods, their fixed settings and the search space of each tuned one.

A method definition keeps the keys of the first study's (``trainer``,
``levels``, ``tau``, ``lr``, ``label``, ``description``: :func:`study.plan.run_config`
reads them) and adds ``smoother``, ``schedule``, ``weight_decay`` (None: the
set-up's), ``growth`` (nested-iteration levels, 1: off), ``share``, ``fas``
(gamma, eta, alpha_m) and ``tune``: the hyperparameters searched, an empty
list for the paper's settings. ``tuned_from`` names the method whose search a
regime-map variant reuses.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

from study.presets import ADAM_LR, FAS_STABILITY, MOMENTUM, SGD_LR

ADAMW_WEIGHT_DECAY = 0.01        # PyTorch's AdamW default (decoupled)
NI_STATE = "reset"               # optimizer state across a growth step (the trainer's default)
PAPER_FAS = {k: FAS_STABILITY[k] for k in ("gamma", "eta", "alpha_m")}

#: The search space: the learning rate per optimizer family (log-uniform), the FAS knobs, the budget share.
SPACE: dict[str, Any] = {
    "lr": {"sgd": (1e-3, 0.3), "adamw": (1e-4, 3e-2)},
    "gamma": (0.01, 1.0, "log"),
    "eta": (1.0, 4.0, "linear"),
    "alpha_m": (0.0, 1.0, "linear"),
    "share": (0.05, 0.6, "linear"),
}
#: Where each hyperparameter goes (``-S`` key).
KEYS = {"lr": "train.lr", "gamma": "train.fas.gamma", "eta": "train.fas.eta", "alpha_m": "train.fas.alpha_m",
        "share": "train.growth.share"}
FAS_TUNED = ["lr", "gamma", "eta", "alpha_m"]


def _method(trainer: str, label: str, description: str, *, smoother: str = "sgd", levels: int = 1,
            schedule: str = "cosine", tune: list[str] | None = None, growth: int = 1) -> dict[str, Any]:
    opt = smoother if trainer == "fas" else trainer
    return {"trainer": trainer, "levels": levels, "tau": "minibatch" if trainer == "fas" else None,
            "lr": SGD_LR if opt == "sgd" else ADAM_LR, "smoother": smoother, "schedule": schedule,
            "weight_decay": ADAMW_WEIGHT_DECAY if opt == "adamw" else None, "growth": growth, "share": 0.2,
            "fas": dict(PAPER_FAS), "tune": list(tune or []), "label": label, "description": description}


def method_defs() -> dict[str, dict[str, Any]]:
    """The methods of issue 14, item 6, in report order."""
    tuned = "tuned: "
    return {
        "sgd-paper": _method("sgd", "SGD (paper)", f"one-level SGD, lr {SGD_LR}, momentum {MOMENTUM}, constant rate "
                             "(the paper's settings, not tuned)", schedule="constant"),
        "sgd": _method("sgd", "SGD (tuned)", f"one-level SGD, momentum {MOMENTUM}, cosine decay; {tuned}lr",
                       tune=["lr"]),
        "adamw": _method("adamw", "AdamW (tuned)", f"one-level AdamW (weight decay {ADAMW_WEIGHT_DECAY:g}, "
                         f"betas ({MOMENTUM}, 0.999)), cosine decay; {tuned}lr — the baseline", tune=["lr"]),
        "fas-sgd-paper": _method("fas", "FAS-SGD (paper)", "2-level FAS V-cycles, SGD smoother, the paper's lr, "
                                 "gamma, eta, alpha_m and alpha_p, constant rate (not tuned)", levels=2,
                                 schedule="constant"),
        "fas-sgd": _method("fas", "FAS-SGD (tuned)", f"2-level FAS, SGD smoother, cosine decay; {tuned}lr, gamma, "
                           "eta, alpha_m", levels=2, tune=FAS_TUNED),
        "fas-adamw": _method("fas", "FAS-AdamW (tuned)", f"2-level FAS, AdamW smoother, cosine decay; {tuned}lr, "
                             "gamma, eta, alpha_m", smoother="adamw", levels=2, tune=FAS_TUNED),
        "ni-adamw": _method("adamw", "NI + AdamW (tuned)", "nested iteration in width from the half-width net "
                            f"(optimizer state {NI_STATE}), then AdamW, cosine decay; {tuned}lr, budget share",
                            growth=2, tune=["lr", "share"]),
        "ni-fas": _method("fas", "NI + FAS-AdamW (tuned)", "nested iteration from the half-width net, then 2-level "
                          f"FAS with the AdamW smoother, cosine decay; {tuned}lr, gamma, eta, alpha_m, budget share",
                          smoother="adamw", levels=2, growth=2, tune=[*FAS_TUNED, "share"]),
    }


def variant(defs: Mapping[str, Mapping], base: str, *, levels: int | None = None, growth: int | None = None
            ) -> dict[str, Any]:
    """A regime-map variant of ``base`` with more FAS or growth levels and ``base``'s tuned settings."""
    d = copy.deepcopy(dict(defs[base]))
    more = levels or growth
    if levels:
        d["levels"] = levels
    if growth:
        d["growth"] = growth
    what = (f"{levels}-level FAS cycles" if levels else
            f"{growth} growth levels (from the 1/{2 ** (growth - 1)}-width net)")
    d.update(tuned_from=base, tune=[], label=f"{d['label']}, {more} levels",
             description=f"as `{base}` with {what} and `{base}`'s tuned settings")
    return d


def optimizer_family(d: Mapping) -> str:
    """``sgd`` or ``adamw``: the optimizer of every level (the trainer, or the FAS smoother)."""
    return d["smoother"] if d["trainer"] == "fas" else d["trainer"]


def space_of(d: Mapping) -> dict[str, tuple]:
    """``name -> (low, high, scale)`` of each tuned hyperparameter of method ``d`` (JSON-able)."""
    out = {}
    for name in d["tune"]:
        if name == "lr":
            low, high = SPACE["lr"][optimizer_family(d)]
            out[name] = (low, high, "log")
        else:
            out[name] = tuple(SPACE[name])
    return out


def suggest(trial: Any, space: Mapping[str, tuple]) -> dict[str, float]:
    """One point of ``space`` from an Optuna trial."""
    return {name: trial.suggest_float(name, low, high, log=scale == "log") for name, (low, high, scale) in
            space.items()}


def defaults(d: Mapping) -> dict[str, float]:
    """The hyperparameters of ``d`` before tuning (the paper's FAS knobs, the preset lr and share)."""
    return {"lr": d["lr"], "share": d["share"], **d["fas"]}


def overrides(d: Mapping, hp: Mapping[str, float], setup_wd: float, match: str | None) -> list[str]:
    """``-S`` overrides of method ``d`` with hyperparameters ``hp`` over :func:`defaults`."""
    hp = {**defaults(d), **hp}
    wd = setup_wd if d["weight_decay"] is None else d["weight_decay"]
    ov = [f"train.schedule={d['schedule']}", f"train.fas.smoother={d['smoother']}", f"train.weight_decay={wd}",
          f"train.growth.levels={d['growth']}", f"train.growth.state={NI_STATE}"]
    ov += [f"{KEYS[k]}={float(hp[k])!r}" for k in KEYS]
    if match is not None:
        ov.append(f"train.fas.match={match}")
    return ov
