"""Width-aware parametrisation (muP) of the networks of a width hierarchy, for Adam and AdamW.

Under the standard parametrisation one Adam rate cannot suit two widths: a
hidden weight's update changes each of its output coordinates by about
lr * fan_in, so the best rate scales like 1/width. The maximal-update
parametrisation (muP; Yang et al. 2022, "Tensor Programs V", Table 3, Adam
column) fixes the scaling per layer, relative to base shapes (here: the fine
network's), so that the best hyperparameters of one width are those of all:

=====================  ===================  ==================================
weight                 initial variance     Adam learning rate
=====================  ===================  ==================================
input (fixed fan-in)   1 / fan_in           lr
hidden                 1 / fan_in           lr * base_fan_in / fan_in
output                 1 / fan_in^2         lr * base_fan_in / fan_in
biases                 (as initialised)     lr
=====================  ===================  ==================================

with "relative to base" meaning that at the base shapes every rule is the
standard one. A parameter's place comes from its :class:`~surrogate.spaces.Role`
(input: its columns are the fixed input; output: its rows are the fixed
output; bias: no columns), so the rules cover every :class:`WidthNet` (MLP,
CNN, U-Net) alike; fan_in counts a weight's inputs per output unit
(channels times kernel size for a convolution).

In a hierarchy built from the fine net (restriction Pi, growth by
prolongation P) only the learning-rate multipliers act: the fine net is at
its base shapes, the coarse nets inherit their weights. Then a growth step
x_f = P x_c with Adam's moments carried as m_f = Pi^T m_c and
sqrt(v_f) = Pi^T sqrt(v_c) (:func:`surrogate.multilevel.growth`) continues
the coarse net's training exactly: a fine gradient at x_f = P x_c is
Pi^T g_c where matched neurons are duplicates, Adam's normalised step
m / sqrt(v) is then the coarse one on every copy, and the halved rate of a
weight whose fan-in doubled makes the two copies' updates add up to the
coarse update.

The ``mup`` package implements the same rules through replacement layers
(``MuReadout``) and shape annotations that must be set on every network;
the hierarchy rebuilds coarse networks at every re-matching and its transfers
assume plain layers, so the rules are applied here from the roles instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..models import WidthNet
from ..spaces import Role

__all__ = ["PARAMETRIZATIONS", "lr_multipliers", "mup_init_"]

#: ``train.parametrization``: the standard one (one rate for every weight) or muP.
PARAMETRIZATIONS = ("standard", "mup")


def _fan_in(shape: torch.Size, role: Role) -> int:
    rows = shape[1] if role.transposed else shape[0]
    return math.prod(shape) // rows


def _scaled(role: Role) -> bool:
    """A weight whose muP rate scales with 1/fan_in: not a bias, not the input layer."""
    return bool(role.cols) and role.cols != (None,)


def lr_multipliers(net: WidthNet, base_shapes: Sequence[torch.Size]) -> list[float]:
    """Per parameter of ``net`` (``parameters()`` order), its muP learning-rate factor against ``base_shapes``."""
    shapes = [p.shape for p in net.parameters()]
    if len(shapes) != len(base_shapes):
        raise ValueError(f"{len(shapes)} parameters but {len(base_shapes)} base shapes")
    return [_fan_in(base, role) / _fan_in(shape, role) if _scaled(role) else 1.0
            for shape, base, role in zip(shapes, base_shapes, net.roles())]


@torch.no_grad()
def mup_init_(net: WidthNet, base_shapes: Sequence[torch.Size]) -> WidthNet:
    """Rescale a freshly (standard-) initialised ``net`` to muP's output initialisation against ``base_shapes``.

    Standard initialisation has variance ~ 1/fan_in everywhere, muP's output
    weights ~ 1/fan_in^2 (equal at the base shapes): the output weights are
    multiplied by sqrt(base_fan_in / fan_in). Returns ``net``.
    """
    for p, base, role in zip(net.parameters(), base_shapes, net.roles()):
        if role.rows is None and _scaled(role):
            p.mul_(math.sqrt(_fan_in(base, role) / _fan_in(p.shape, role)))
    return net
