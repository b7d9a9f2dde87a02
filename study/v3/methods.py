"""The third study's methods: what each trains, what it searches, and where (full width or a coarse level).

A :class:`Method` is typed: the trainer and, for FAS, its smoother; nested-iteration levels (``growth``, 1:
off); the parametrization (standard or muP); the search space (train keys, log-uniform ranges); where the
search runs (``tune_level`` 0: at full width, 1: on level 1 of the network's own width hierarchy, muTransfer)
and its budget (``tune_share`` of the edition's tuning budget, in full-width runs). :meth:`Method.train`
applies it to a set-up's :class:`~surrogate.config.TrainConfig` with :func:`dataclasses.replace`.

Every method trains with a cosine schedule to the set-up's budget and the set-up's weight decay; nested
iteration grows from the half-width net with 20% of the budget, the function-preserving step
(perturbation 0.1) and Adam's state carried (``benchmarks/bench_growth.py``); FAS has the paper's cycle with
an AdamW smoother.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from surrogate.config import TrainConfig

#: Log-uniform ranges of the searched keys; the rate by optimizer family.
LR = {"sgd": (1e-3, 0.3), "adamw": (1e-4, 3e-2)}
RANGES = {"fas.gamma": (0.01, 1.0), "fas.eta": (1.0, 4.0)}
GROWTH = {"share": 0.2, "perturbation": 0.1, "state": "prolong"}
#: The share of the tuning budget a search on the coarse level gets (issue 23: <= 0.3x the full search).
COARSE_SHARE = 0.3


@dataclass(frozen=True, kw_only=True)
class Method:
    """One method of the third study (see the module docstring)."""

    label: str
    trainer: str                   # sgd | adamw | fas
    growth: int = 1
    parametrization: str = "standard"
    space: tuple[str, ...] = ("lr",)
    tune_level: int = 0
    tune_share: float = 1.0
    full_width: str | None = None  # the same method searched at full width (for a coarse-level search)

    @property
    def family(self) -> str:
        return "sgd" if self.trainer == "sgd" else "adamw"

    def space_ranges(self) -> dict[str, list[float]]:
        """``tune.space`` of the search: each key's log-uniform [low, high]."""
        return {key: list(LR[self.family] if key == "lr" else RANGES[key]) for key in self.space}

    def train(self, base: TrainConfig) -> TrainConfig:
        """``base`` (a set-up's training) with this method's trainer, schedule, growth and parametrization."""
        growth = dataclasses.replace(base.growth, levels=self.growth, **GROWTH)
        fas = dataclasses.replace(base.fas, levels=2 if self.trainer == "fas" else 1, smoother="adamw")
        return dataclasses.replace(base, trainer=self.trainer, schedule="cosine", growth=growth, fas=fas,
                                   parametrization=self.parametrization)

    def spec(self) -> dict[str, Any]:
        """The JSON form the study's spec keeps (what the report reads)."""
        return {**dataclasses.asdict(self), "space": self.space_ranges()}


def _coarse(name: str, full: Method) -> Method:
    return dataclasses.replace(full, label=f"{full.label}, tuned on the coarse level", tune_level=1,
                               tune_share=COARSE_SHARE, full_width=name, parametrization="mup")


def methods() -> dict[str, Method]:
    """Every method by name, in report order: the single-level baselines first."""
    full = {
        "adamw": Method(label="AdamW", trainer="adamw"),
        "sgd": Method(label="SGD", trainer="sgd"),
        "ni": Method(label="NI + AdamW", trainer="adamw", growth=2),
        "ni-mup": Method(label="NI + AdamW, muP", trainer="adamw", growth=2, parametrization="mup"),
        "fas-mup": Method(label="FAS-AdamW, muP", trainer="fas", parametrization="mup",
                          space=("lr", "fas.gamma", "fas.eta")),
    }
    coarse = {f"{name}@coarse": _coarse(name, full[name]) for name in ("ni-mup", "fas-mup")}
    coarse["adamw-mup@coarse"] = _coarse("adamw", full["adamw"])
    return {**full, **coarse}


METHODS = methods()
#: The single-level baselines: the better of them (median best validation MSE at the budget) is each set-up's
#: reference.
BASELINES = ("adamw", "sgd")
