"""The first study's methods: one-level SGD and Adam, FAS with 2-4 levels with and without the tau correction.

Nothing is tuned: SGD and FAS use the paper's rate and momentum, Adam its
PyTorch defaults (section 8). A :class:`Method` is typed and applies itself
to a set-up's :class:`~surrogate.config.TrainConfig` with
:func:`dataclasses.replace`; :func:`method_defs` is its JSON form in the
study's spec (what the report reads).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from study.core import ADAM_LR, FAS_STABILITY, MOMENTUM, SGD_LR

if TYPE_CHECKING:
    from surrogate.config import TrainConfig

#: HEM matching of every FAS cycle of the first study: before pre-smoothing (it ran before ``train.fas.match``
#: existed, with the matching that the key's value "before" keeps).
MATCH = "before"
LEVELS = (2, 3, 4)
_NAMES = {2: "Two", 3: "Three", 4: "Four", 5: "Five"}


@dataclass(frozen=True)
class Method:
    """One method: the trainer, FAS levels and tau variant (None for one level), rate, label and description."""

    trainer: str
    levels: int
    tau: str | None
    lr: float
    label: str
    description: str

    def train(self, base: TrainConfig) -> TrainConfig:
        """``base`` (a set-up's training) with this method."""
        fas = dataclasses.replace(base.fas, levels=self.levels, tau=self.tau or "minibatch", match=MATCH)
        return dataclasses.replace(base, trainer=self.trainer, lr=self.lr, fas=fas)


def _fas(levels: int, tau: str, what: str) -> Method:
    label = f"{_NAMES.get(levels, levels)}-level FAS" + (", τ none" if tau == "none" else "")
    description = (f"{levels}-level FAS V-cycles, SGD smoother (lr {SGD_LR} / eta^l, momentum {MOMENTUM}), {what}, "
                   f"alpha_p {FAS_STABILITY['alpha_p']:g}, alpha_m {FAS_STABILITY['alpha_m']:g}, "
                   f"gamma {FAS_STABILITY['gamma']:g}, eta 2√2 (paper sec. 8.3)")
    return Method("fas", levels, tau, SGD_LR, label, description)


def methods(levels: tuple[int, ...] = LEVELS) -> dict[str, Method]:
    """Every method by name, in report order."""
    out = {"sgd": Method("sgd", 1, None, SGD_LR, "One-level SGD",
                         f"one-level SGD, lr {SGD_LR}, momentum {MOMENTUM} (paper sec. 8)"),
           "adam": Method("adam", 1, None, ADAM_LR, "One-level Adam",
                          f"one-level Adam, lr {ADAM_LR:g}, PyTorch default betas (no tuning)")}
    out.update({f"fas{L}": _fas(L, "minibatch", "stochastic τ correction (eq. 35)") for L in levels})
    out.update({f"fas{L}-notau": _fas(L, "none", "no τ correction") for L in levels})
    return out


METHODS = methods()


def method_defs() -> dict[str, dict[str, Any]]:
    """The methods as the spec records them (``trainer``, ``levels``, ``tau``, ``lr``, ``label``, ``description``)."""
    return {name: dataclasses.asdict(m) for name, m in METHODS.items()}
