"""The hierarchy of ever thinner networks and the transfers that couple them."""

from __future__ import annotations

from typing import Any

import torch

from params import ConfigError, replace

from ..models import WidthNet
from .config import FASConfig
from .hem import cosine_strength, heavy_edge_matching
from .parallel import DataParallel
from .transfer import Coarsening, Transfer

__all__ = ["Hierarchy", "build_hierarchy"]


class Hierarchy:
    """Networks ``nets[0]`` (the model) ... ``nets[L-1]`` and ``transfers[i]`` from level i to i+1.

    ``transfers[i]`` is built by heavy edge matching (Algorithm 1) on the
    weights of ``nets[i]``; ``nets[i+1]`` is a network of the same class
    whose hidden widths are the numbers of aggregates.  :meth:`rematch`
    recomputes all matchings from the current weights (section 6.1.3); a
    coarse network whose widths change is replaced by a new one, so hold
    on to ``hier.nets``, not to its coarse elements.
    """

    def __init__(self, model: WidthNet, config: FASConfig, seed: int = 0):
        self.levels = config.levels
        if self.levels > 1 and not isinstance(model, WidthNet):
            raise ConfigError(f"train.fas.levels / train.growth.levels: {self.levels} is not allowed for a "
                              f"{type(model).__name__}: a width hierarchy needs hidden widths (mlp, cnn, unet); "
                              "train it with levels 1 (trainer sgd, adam or adamw, growth.levels 1)")
        self.theta = config.theta
        self.interpolation = config.interpolation
        self.order = config.order
        self.generator = torch.Generator().manual_seed(int(seed))
        self.parallel = DataParallel()
        self.nets: list[WidthNet] = [model]
        self.transfers: list[Transfer] = []
        self.rematch()
        stuck = next((i for i in range(1, self.levels) if self.nets[i].hidden_sizes == self.nets[i - 1].hidden_sizes),
                     None)
        if stuck is not None:
            raise ConfigError(f"train.fas.levels: {self.levels} is not allowed for this network: level {stuck} "
                              f"keeps the hidden widths {self.nets[stuck - 1].hidden_sizes} of level {stuck - 1} "
                              f"(heavy edge matching cannot coarsen them further); need levels <= {stuck}")

    def rematch(self) -> None:
        """Recompute every matching, finest first, and set nets[i+1] = Pi nets[i]."""
        for i in range(self.levels - 1):
            fine = self.nets[i]
            self._set_transfer(i, [self._match(weight) for weight in fine.space_weights()])
            with torch.no_grad():
                for p_c, x_c in zip(self.nets[i + 1].parameters(), self.transfers[i].restrict(list(fine.parameters()))):
                    p_c.copy_(x_c)

    def _match(self, weight: torch.Tensor) -> Coarsening:
        n = weight.shape[0]
        order = torch.randperm(n, generator=self.generator) if self.order == "random" else None
        zeta, n_c = heavy_edge_matching(cosine_strength(weight), self.theta, order)
        if self.parallel.active:  # rank 0's matching on every process
            zeta = self.parallel.broadcast_(zeta.to(weight.device)).to(zeta.device)
            n_c = int(zeta.max()) + 1
        d = weight.detach().reshape(n, -1).norm(dim=1).clamp_min(torch.finfo(weight.dtype).tiny) \
            if self.interpolation == "rownorm" else None
        return Coarsening(zeta.to(weight.device), n_c, d, dtype=weight.dtype)

    def _set_transfer(self, i: int, coarsenings: list[Coarsening]) -> None:
        fine = self.nets[i]
        transfer = Transfer([p.shape for p in fine.parameters()], coarsenings, fine.roles())
        if i < len(self.transfers):
            self.transfers[i] = transfer
        else:
            self.transfers.append(transfer)
        sizes = transfer.hidden_sizes
        if i + 1 == len(self.nets):
            self.nets.append(fine.resized(sizes))
        elif self.nets[i + 1].hidden_sizes != sizes:
            self.nets[i + 1] = fine.resized(sizes)

    def state_dict(self) -> dict[str, Any]:
        """Matchings, all level nets and the HEM order RNG (``torch.load(weights_only=True)``-safe)."""
        return {
            "levels": self.levels,
            "matchings": [[{"zeta": c.zeta.cpu(), "n_c": c.n_c, "d": None if c.p is None else c.p.cpu()}
                           for c in t.coarsenings] for t in self.transfers],
            "nets": [net.state_dict() for net in self.nets],
            "rng": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["levels"] != self.levels:
            raise ValueError(f"state has {state['levels']} levels, this hierarchy {self.levels}")
        for i, matching in enumerate(state["matchings"]):
            p = next(self.nets[i].parameters())
            self._set_transfer(i, [Coarsening(m["zeta"].to(p.device), m["n_c"],
                                              None if m["d"] is None else m["d"].to(p.device), dtype=p.dtype)
                                   for m in matching])
        for net, sd in zip(self.nets, state["nets"]):
            net.load_state_dict(sd)
        self.generator.set_state(state["rng"])


def build_hierarchy(model: WidthNet, levels: int | None = None, config: FASConfig | None = None, seed: int = 0,
                    **changes: Any) -> Hierarchy:
    """A hierarchy on ``model`` (``levels`` = 1: the model alone).

    ``config``: the :class:`FASConfig` whose ``levels``, ``theta`` (HEM
    strength threshold), ``interpolation`` (``"plain"``, eq. 32, or
    ``"rownorm"``, eq. 34) and ``order`` (HEM visiting order, ``"natural"``
    or ``"random"``, seeded by ``seed``) it uses; ``levels`` and keyword
    ``changes`` override single keys, e.g. ``build_hierarchy(net, 3, theta=0.1)``.
    """
    if levels is not None:
        changes["levels"] = levels
    return Hierarchy(model, replace(config or FASConfig(), **changes), seed)
