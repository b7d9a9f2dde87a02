"""The second study's methods, their fixed settings and the search space of each tuned one.

A :class:`Method` is typed: the trainer, FAS levels and tau, the rate (or
the tuned one), smoother, schedule, weight decay (None: the set-up's),
nested-iteration levels (``growth``, 1: off) and budget ``share``, the FAS
knobs gamma, eta and alpha_m, and ``tune``: the hyperparameters searched (an
empty tuple for the paper's settings). :meth:`Method.train` applies it and a
trial's hyperparameters to a set-up's :class:`~surrogate.config.TrainConfig`
with :func:`dataclasses.replace`; :meth:`Method.spec` is its JSON form in
the study's spec (what the report reads). ``tuned_from`` names the method
whose search a regime-map variant reuses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from study.core import ADAM_LR, FAS_STABILITY, MOMENTUM, SGD_LR

if TYPE_CHECKING:
    from surrogate.config import TrainConfig

ADAMW_WEIGHT_DECAY = 0.01        # PyTorch's AdamW default (decoupled)
NI_STATE = "reset"               # optimizer state across a growth step (the trainer's default)
SHARE = 0.2                      # the coarse levels' budget share of a nested iteration before tuning

#: The search space: the learning rate per optimizer family (log-uniform), the FAS knobs, the budget share.
SPACE: dict[str, Any] = {
    "lr": {"sgd": (1e-3, 0.3), "adamw": (1e-4, 3e-2)},
    "gamma": (0.01, 1.0, "log"),
    "eta": (1.0, 4.0, "linear"),
    "alpha_m": (0.0, 1.0, "linear"),
    "share": (0.05, 0.6, "linear"),
}
#: Where each hyperparameter goes (the dotted config key).
KEYS = {"lr": "train.lr", "gamma": "train.fas.gamma", "eta": "train.fas.eta", "alpha_m": "train.fas.alpha_m",
        "share": "train.growth.share"}
FAS_TUNED = ("lr", "gamma", "eta", "alpha_m")


def family(trainer: str, smoother: str) -> str:
    """``sgd`` or ``adamw``: the optimizer of every level (the trainer, or the FAS smoother)."""
    return smoother if trainer == "fas" else trainer


@dataclass(frozen=True, kw_only=True)
class Method:
    """One method of the second study (see the module docstring)."""

    trainer: str
    levels: int = 1
    lr: float
    smoother: str = "sgd"
    schedule: str = "cosine"
    weight_decay: float | None = None
    growth: int = 1
    share: float = SHARE
    gamma: float = FAS_STABILITY["gamma"]
    eta: float = FAS_STABILITY["eta"]
    alpha_m: float = FAS_STABILITY["alpha_m"]
    tune: tuple[str, ...] = ()
    label: str
    description: str
    tuned_from: str | None = None

    def space(self) -> dict[str, tuple]:
        """``name -> (low, high, scale)`` of each tuned hyperparameter (JSON-able)."""
        lr = (*SPACE["lr"][family(self.trainer, self.smoother)], "log")
        return {name: lr if name == "lr" else tuple(SPACE[name]) for name in self.tune}

    def defaults(self) -> dict[str, float]:
        """The hyperparameters before tuning (the preset rate and share, the paper's FAS knobs)."""
        return {"lr": self.lr, "share": self.share, "gamma": self.gamma, "eta": self.eta, "alpha_m": self.alpha_m}

    def train(self, base: TrainConfig, hp: Mapping[str, float], *, setup_wd: float, match: str) -> TrainConfig:
        """``base`` (a set-up's training) with this method, hyperparameters ``hp`` over :meth:`defaults` and
        HEM matching ``match`` (``train.fas.match``)."""
        hp = {k: float(v) for k, v in {**self.defaults(), **hp}.items()}
        fas = dataclasses.replace(base.fas, levels=self.levels, tau="minibatch", smoother=self.smoother,
                                  gamma=hp["gamma"], eta=hp["eta"], alpha_m=hp["alpha_m"], match=match)
        growth = dataclasses.replace(base.growth, levels=self.growth, share=hp["share"], state=NI_STATE)
        wd = setup_wd if self.weight_decay is None else self.weight_decay
        return dataclasses.replace(base, trainer=self.trainer, lr=hp["lr"], schedule=self.schedule, weight_decay=wd,
                                   fas=fas, growth=growth)

    def spec(self) -> dict[str, Any]:
        """The method as the spec records it (the keys the report and the estimate read)."""
        out = {"trainer": self.trainer, "levels": self.levels, "tau": "minibatch" if self.trainer == "fas" else None,
               "lr": self.lr, "smoother": self.smoother, "schedule": self.schedule, "weight_decay": self.weight_decay,
               "growth": self.growth, "share": self.share,
               "fas": {"gamma": self.gamma, "eta": self.eta, "alpha_m": self.alpha_m}, "tune": list(self.tune),
               "label": self.label, "description": self.description}
        if self.tuned_from is not None:
            out["tuned_from"] = self.tuned_from
        return {**out, "space": self.space()}


def _method(trainer: str, label: str, description: str, *, smoother: str = "sgd", **kw: Any) -> Method:
    sgd = family(trainer, smoother) == "sgd"
    return Method(trainer=trainer, smoother=smoother, lr=SGD_LR if sgd else ADAM_LR,
                  weight_decay=None if sgd else ADAMW_WEIGHT_DECAY, label=label,
                  description=description, **kw)


def main_methods() -> dict[str, Method]:
    """The methods of issue 14, item 6, in report order."""
    tuned = "tuned: "
    return {
        "sgd-paper": _method("sgd", "SGD (paper)", f"one-level SGD, lr {SGD_LR}, momentum {MOMENTUM}, constant rate "
                             "(the paper's settings, not tuned)", schedule="constant"),
        "sgd": _method("sgd", "SGD (tuned)", f"one-level SGD, momentum {MOMENTUM}, cosine decay; {tuned}lr",
                       tune=("lr",)),
        "adamw": _method("adamw", "AdamW (tuned)", f"one-level AdamW (weight decay {ADAMW_WEIGHT_DECAY:g}, "
                         f"betas ({MOMENTUM}, 0.999)), cosine decay; {tuned}lr — the baseline", tune=("lr",)),
        "fas-sgd-paper": _method("fas", "FAS-SGD (paper)", "2-level FAS V-cycles, SGD smoother, the paper's lr, "
                                 "gamma, eta, alpha_m and alpha_p, constant rate (not tuned)", levels=2,
                                 schedule="constant"),
        "fas-sgd": _method("fas", "FAS-SGD (tuned)", f"2-level FAS, SGD smoother, cosine decay; {tuned}lr, gamma, "
                           "eta, alpha_m", levels=2, tune=FAS_TUNED),
        "fas-adamw": _method("fas", "FAS-AdamW (tuned)", f"2-level FAS, AdamW smoother, cosine decay; {tuned}lr, "
                             "gamma, eta, alpha_m", smoother="adamw", levels=2, tune=FAS_TUNED),
        "ni-adamw": _method("adamw", "NI + AdamW (tuned)", "nested iteration in width from the half-width net "
                            f"(optimizer state {NI_STATE}), then AdamW, cosine decay; {tuned}lr, budget share",
                            growth=2, tune=("lr", "share")),
        "ni-fas": _method("fas", "NI + FAS-AdamW (tuned)", "nested iteration from the half-width net, then 2-level "
                          f"FAS with the AdamW smoother, cosine decay; {tuned}lr, gamma, eta, alpha_m, budget share",
                          smoother="adamw", levels=2, growth=2, tune=(*FAS_TUNED, "share")),
    }


def variant(methods: Mapping[str, Method], base: str, *, levels: int | None = None, growth: int | None = None
            ) -> Method:
    """A regime-map variant of ``base`` with more FAS or growth levels and ``base``'s tuned settings."""
    m = methods[base]
    what = (f"{levels}-level FAS cycles" if levels else
            f"{growth} growth levels (from the 1/{2 ** (growth - 1)}-width net)")
    return dataclasses.replace(m, levels=levels or m.levels, growth=growth or m.growth, tuned_from=base, tune=(),
                               label=f"{m.label}, {levels or growth} levels",
                               description=f"as `{base}` with {what} and `{base}`'s tuned settings")


def suggest(trial: Any, space: Mapping[str, tuple]) -> dict[str, float]:
    """One point of ``space`` from an Optuna trial."""
    return {name: trial.suggest_float(name, low, high, log=scale == "log") for name, (low, high, scale) in
            space.items()}
