"""The settings of the hierarchy and of the FAS cycle (``train.fas``), and of each level's optimizer.

Each key's default and check are here and nowhere else; a section built in
Python (``FASConfig(levels=3)``) is checked like one read from
``params.yaml``. Section numbers refer to the paper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from params import Choice, ConfigError, Float, Int, Section, option

__all__ = ["OPTIMIZERS", "PARAMETRIZATIONS", "FASConfig", "GrowthConfig", "OptimizerConfig"]

#: One-level optimizers, and the FAS smoothers (``train.fas.smoother``).
OPTIMIZERS = ("sgd", "adam", "adamw")
#: ``train.parametrization``: one rate for every weight, or muP's per-layer rules (:mod:`.width`).
PARAMETRIZATIONS = ("standard", "mup")


@dataclass(frozen=True)
class OptimizerConfig(Section):
    """The optimizer of every level (``train.lr``, ``train.momentum``, ``train.weight_decay``).

    ``kind``: ``"sgd"`` (SGD with momentum), ``"adam"`` (beta_1 = ``momentum``,
    L2 weight decay) or ``"adamw"`` (the same with decoupled weight decay).
    ``parametrization``: ``"standard"`` or ``"mup"`` (per-layer rates against the
    fine network's shapes, :mod:`surrogate.multilevel.width`; Adam's rules).
    """

    PREFIX = "train"
    kind: str = option(Choice("sgd", OPTIMIZERS))
    lr: float = option(Float(0.01, low=0.0, low_open=True))           # paper: 0.01
    momentum: float = option(Float(0.9, low=0.0, high=1.0, high_open=True))
    weight_decay: float = option(Float(0.0, low=0.0))
    parametrization: str = option(Choice("standard", PARAMETRIZATIONS))

    def validate(self) -> None:
        if self.parametrization == "mup" and self.kind == "sgd":
            raise ConfigError("train.parametrization: 'mup' is not allowed with the sgd optimizer: its rules here "
                              "are Adam's (Tensor Programs V, Table 3); use trainer adam or adamw (fas: "
                              "train.fas.smoother adam or adamw), or parametrization standard")


@dataclass(frozen=True)
class FASConfig(Section):
    """The hierarchy and the cycle (section 6; defaults: the paper's Poisson settings, section 8)."""

    PREFIX = "train.fas"
    levels: int = option(Int(2, low=1))                          # hierarchy depth (paper: 2-5)
    cycle: str = option(Choice("V", ("V", "W", "F")))
    smoother: str = option(Choice("sgd", OPTIMIZERS))            # the optimizer on every level
    pre: int = option(Int(4, low=0))                             # smoothing steps before the coarse correction
    coarse: int = option(Int(4, low=1))                          # ... on the coarsest level
    post: int = option(Int(4, low=0))                            # ... after it
    tau: str = option(Choice("minibatch", ("minibatch", "none", "wholeset")))   # eq. (35)
    alpha_p: float = option(Float(1.0, low=0.0, high=1.0, low_open=True))      # sec. 6.1.4, eq. (4)
    alpha_m: float = option(Float(0.2, low=0.0, high=1.0))                     # eq. (36)
    gamma: float = option(Float(0.125, low=0.0, high=1.0))                     # tau scale, eq. (3)
    eta: float = option(Float(2.0 * math.sqrt(2.0), low=0.0, low_open=True))   # lr divisor per level, sec. 8.3
    theta: float = option(Float(0.0, low=0.0, high=1.0))         # HEM strength threshold, Algorithm 1
    interpolation: str = option(Choice("plain", ("plain", "rownorm")))   # eq. (32) | eq. (34)
    order: str = option(Choice("natural", ("natural", "random")))        # HEM visiting order
    rematch_every: int = option(Int(50, low=1))                  # cycles between matchings, sec. 6.1.3
    match: str = option(Choice("after", ("after", "before")))  # rematch after (Alg. 2) or before pre-smoothing


@dataclass(frozen=True)
class GrowthConfig(Section):
    """Nested iteration in width (a full-multigrid start): train the coarsest net first, grow to the fine one.

    ``levels`` = 1 is off. With L > 1 the hierarchy of L levels is built by HEM
    on the fine net's initial weights; the coarsest net is trained first, then
    each net is carried to the next finer one as
    x_f = P x_c + ``perturbation`` (I - P Pi) x_f0 (P x_c computes the coarse
    net's function; the second term, the part of the finer net's own initial
    weights x_f0 that the coarse net cannot represent, breaks the symmetry of
    matched neurons); ``share`` of the budget goes to the coarser levels,
    split evenly, the rest to the trainer on the fine net. ``state``: the
    optimizer state across a growth step, ``reset`` or ``prolong`` (Adam:
    m_f = Pi^T m_c, sqrt(v_f) = Pi^T sqrt(v_c); SGD momentum: Pi^T m_c).
    """

    PREFIX = "train.growth"
    levels: int = option(Int(1, low=1))
    share: float = option(Float(0.2, low=0.0, high=1.0, low_open=True, high_open=True))
    state: str = option(Choice("prolong", ("reset", "prolong")))       # benchmarks/bench_growth.py (params.yaml)
    perturbation: float = option(Float(0.1, low=0.0, high=1.0))        # eps; 1: the coarse-grid correction (4)
