"""Work units (section 8): one forward+backward pass of the finest net over one minibatch.

A pass over a minibatch at level l costs, in work units,

* ``"paper"``: 4^{-l}, the paper's rule of thumb (half the neurons, a
  quarter of the weights);
* ``"flops"``: the level's FLOPs per sample over the finest net's, counted
  from the layer shapes.  Backward costs about twice the forward pass for
  every layer, so the ratio of forward FLOPs is the ratio of pass costs.
  On the Poisson FC net (3072-400-400-1024) a half-width level costs
  about 0.48, not 0.25: the input and output layers halve on one side only.

A partial minibatch (the end of an epoch) counts in proportion to its size.

The paper's worked example (2 levels, 2 pre-, 2 coarse-, 2 post-smoothing
steps) is 4.5 units of smoothing + 2.5 of tau correction (2 fine + 2
coarse passes) = 7 under the 1/4 rule, which :class:`WorkCounter`
reproduces.  Eq. (40) as printed does not agree with that example: its
last bracket, the fine-side passes of the tau corrections, ends in
(1/4)^{k-1} s where the hand count needs (1/4)^{k-2} s (for k = 2 it gives
5.5, not 7).  With that term corrected the sums equal (40)'s closed form
6s - 10s/4^{k-1}, which is what the counter gives for pre = coarse =
post = s at any depth.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..models import WidthNet

__all__ = ["MEASURES", "WorkCounter", "flops_per_sample"]

MEASURES = ("flops", "paper")


def flops_per_sample(net: WidthNet) -> float:
    """Forward FLOPs per sample (the network's own count, :meth:`WidthNet.flops_per_sample`)."""
    return net.flops_per_sample()


class WorkCounter:
    """Cumulative work units, ``total = {"flops": ..., "paper": ...}`` (plain Python floats).

    The per-pass cost of each level is fixed at construction; when a
    rematch changes the widths, make a new counter that carries ``total`` on.
    """

    def __init__(self, nets: Sequence[WidthNet], batch_size: int, total: dict[str, float] | None = None):
        self.batch_size = int(batch_size)
        self.total = dict(total) if total is not None else {m: 0.0 for m in MEASURES}
        fine = flops_per_sample(nets[0])
        self.cost = [{"flops": flops_per_sample(net) / fine, "paper": 0.25 ** level}
                     for level, net in enumerate(nets)]

    def add(self, level: int, n_samples: int) -> None:
        """Count one forward+backward pass of level ``level`` over ``n_samples`` samples."""
        units = n_samples / self.batch_size
        for m in MEASURES:
            self.total[m] += units * self.cost[level][m]
