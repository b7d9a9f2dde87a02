"""Nested iteration in width: grow the network from the coarsest level of its hierarchy to the fine one.

A full-multigrid start (the "F" in FMG, applied to width). With a hierarchy
of L levels built by heavy edge matching on the fine net's initial weights
x_0 (so x_{l+1} = Pi x_l at the start):

1. train the coarsest net x_{L-1} with the one-level optimizer for its share
   of the budget;
2. carry it to level l = L-2, ..., 0 as

       x_l <- P x_{l+1} + eps (I - P Pi) x_l

   P x_{l+1} computes the coarse net's function exactly (eq. (27): the units
   of an aggregate get copies of its incoming weights and share its outgoing
   ones, the function-preserving widening of Net2WiderNet). Alone it would
   leave the units of an aggregate identical, and gradient steps keep them
   so: the fine net would never use its width. The second term, the part of
   the finer net's own initial weights that the coarse net cannot represent,
   breaks that symmetry; eps (``GrowthConfig.perturbation``) sets its size
   (eps = 1 is the coarse-grid correction x_l + P(x_{l+1} - Pi x_l) of
   eq. (4)). Within a pair that term is antisymmetric (Pi averages it away),
   so the function changes at second order in eps only. Then train x_l for
   its share, and so on up to the fine net;
3. continue on the fine net with the chosen trainer (one level or FAS cycles).

Across a growth step the optimizer state is reset, or carried with the
gradients' own transfer (``GrowthConfig.state = "prolong"``): at x = P x_c a
fine gradient is Pi^T g_c (:meth:`Transfer.prolong_grad`), so SGD momentum
and Adam's first moment become Pi^T m_c and Adam's second moment
sqrt(v) = Pi^T sqrt(v_c). With muP rates (:mod:`.width`) and eps = 0 the fine
net then takes exactly the coarse net's next step.

``GrowthConfig.share`` of the budget goes to the coarse levels, split
evenly; work is counted in fine-net work units, as everywhere (a coarse
minibatch pass costs its FLOPs over the fine net's, or 4^-l under the
paper's rule).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..models import WidthNet
from .batches import MinibatchStream
from .config import FASConfig, GrowthConfig, OptimizerConfig
from .fas import FASTrainer
from .hierarchy import Hierarchy, build_hierarchy
from .smoother import Level
from .transfer import Transfer
from .work import MEASURES, flops_per_sample

__all__ = ["NestedIteration"]

#: Adam's state that averages squared gradients (carried as its square root).
SQUARED_MOMENTS = ("exp_avg_sq", "max_exp_avg_sq")


class NestedIteration:
    """Grow ``model`` from the coarsest level, then hand it to ``make_final(model)``; a
    :class:`~surrogate.multilevel.protocol.Trainer`.

    ``budget`` and ``measure``: the run's work-unit budget and accounting;
    ``hem``: the HEM settings (theta, interpolation, order) of the growth hierarchy;
    ``base_shapes``: the shapes muP's rates are relative to (default: ``model``'s).
    """

    def __init__(self, model: WidthNet, X: torch.Tensor, Y: torch.Tensor, stream: MinibatchStream,
                 growth: GrowthConfig, optimizer: OptimizerConfig, make_final: Callable[[WidthNet], FASTrainer],
                 budget: float, measure: str, hem: FASConfig | None = None, seed: int = 0,
                 loss: Callable | None = None, base_shapes: list[torch.Size] | None = None):
        self.model, self.X, self.Y, self.stream = model, X, Y, stream
        self.base_shapes = base_shapes or [p.shape for p in model.parameters()]
        self.growth, self.optimizer, self.make_final, self.loss = growth, optimizer, make_final, loss
        hem = hem or FASConfig()
        self.ladder: Hierarchy = build_hierarchy(model, growth.levels, config=hem, seed=seed)
        # Pi x_l of the initial weights: the coarse starts, kept for the correction of eq. (4)
        self.starts = [[p.detach().clone() for p in net.parameters()] for net in self.ladder.nets]
        fine = flops_per_sample(model)
        self.cost = [{"flops": flops_per_sample(net) / fine, "paper": 0.25 ** level}
                     for level, net in enumerate(self.ladder.nets)]
        levels, steps = growth.levels, growth.levels - 1
        # work at which the training of level l ends (l = L-1 first); level 0 is the final trainer's
        self.ends = [budget * growth.share * (levels - level) / steps for level in range(levels)]
        self.measure = measure
        self.level = levels - 1                 # the level being trained; 0: the fine net, final trainer
        self.offset = {m: 0.0 for m in MEASURES}
        self.lr_scale = 1.0
        self.trainer = self._one_level(self.level)

    # ------------------------------------------------------------------ phases
    @property
    def growing(self) -> bool:
        return self.level > 0

    @property
    def hier(self) -> Hierarchy:
        """The hierarchy being trained: ``hier.nets[0]`` is the current (coarse, then fine) network."""
        return self.trainer.hier

    def _one_level(self, level: int) -> FASTrainer:
        net = self.ladder.nets[level]
        if level == 0:
            return self.make_final(net)
        return FASTrainer(build_hierarchy(net, 1), self.X, self.Y, self.stream, FASConfig(levels=1),
                          self.optimizer, self.loss, base_shapes=self.base_shapes)

    def grow(self) -> None:
        """x_l <- P x_{l+1} + eps (I - P Pi) x_l from level l+1 to l, optimizer state as configured."""
        coarse, transfer = self.trainer, self.ladder.transfers[self.level - 1]
        self.offset = self.work
        fine = list(self.ladder.nets[self.level - 1].parameters())
        with torch.no_grad():
            own = torch._foreach_sub(fine, transfer.prolong(self.starts[self.level]))     # (I - P Pi) x_l
            torch._foreach_mul_(own, self.growth.perturbation)
            torch._foreach_copy_(fine, torch._foreach_add(transfer.prolong(list(coarse.hier.nets[0].parameters())),
                                                          own))
        self.level -= 1
        self.trainer = self._one_level(self.level)
        if self.growth.state == "prolong":
            _prolong_state(coarse.levels[0], self.trainer.levels[0], transfer)
        self.trainer.scale_lr(self.lr_scale)

    # ------------------------------------------------------------------ the trainer interface
    @property
    def work(self) -> dict[str, float]:
        """Cumulative fine-net work units of all phases."""
        cost = self.cost[self.level]
        return {m: self.offset[m] + cost[m] * self.trainer.work[m] for m in MEASURES}

    def cycle(self) -> None:
        """One step of the coarse level being grown, or one cycle of the fine trainer."""
        self.trainer.cycle()
        if self.growing and self.work[self.measure] >= self.ends[self.level]:
            self.grow()

    def scale_lr(self, factor: float) -> None:
        self.lr_scale = float(factor)
        self.trainer.scale_lr(factor)

    def level_losses(self) -> list[float]:
        return self.trainer.level_losses()

    def state_dict(self) -> dict[str, Any]:
        return {"level": self.level, "offset": dict(self.offset), "ladder": self.ladder.state_dict(),
                "starts": self.starts, "trainer": self.trainer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ladder.load_state_dict(state["ladder"])
        self.starts = state["starts"]
        self.level, self.offset = state["level"], dict(state["offset"])
        self.trainer = self._one_level(self.level)
        self.trainer.load_state_dict(state["trainer"])


@torch.no_grad()
def _prolong_state(coarse: Level, fine: Level, transfer: Transfer) -> None:
    """The coarse optimizer's state carried to the fine net: gradient averages with Pi^T (SGD momentum, Adam's
    m), Adam's second moment as sqrt(v) = Pi^T sqrt(v_c); scalar state (Adam's step) copied."""
    state_c, state_f = coarse.opt.state, fine.opt.state
    first = state_c[coarse.params[0]]
    for key, value in first.items():
        if not (torch.is_tensor(value) and value.shape == coarse.params[0].shape):
            for p_f in fine.params:
                state_f[p_f][key] = value.clone() if torch.is_tensor(value) else value
            continue
        moments = [state_c[p][key] for p in coarse.params]
        squared = key in SQUARED_MOMENTS
        carried = transfer.prolong_grad(torch._foreach_sqrt(moments) if squared else moments)
        for p_f, m in zip(fine.params, carried):
            state_f[p_f][key] = m * m if squared else m
