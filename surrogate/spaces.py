"""The hidden spaces of a network whose width can change, and where each parameter sits between them.

A hidden space is a group of neurons or channels that heavy edge matching
coarsens as one (section 5.4): the outputs of one layer, read by one or
more later layers. :class:`Role` records, per parameter tensor, which
spaces its rows and columns belong to, so that the transfers of
:mod:`surrogate.multilevel.transfer` work on chains (the paper's MLP and
CNN) and on networks with skip connections (a U-Net) alike.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Role", "chain_roles"]


@dataclass(frozen=True)
class Role:
    """Where one parameter tensor sits between the hidden spaces (channel groups) of a network.

    ``rows``: the hidden space of its output units (None: a fixed output);
    ``cols``: the spaces of its input units, blocks concatenated along the
    input dimension (a U-Net decoder reads [upsampled, skip]); empty for a
    bias, ``(None,)`` for a fixed input. ``transposed``: a transposed
    convolution's weight (in, out, kh, kw), whose rows are dimension 1.
    A chain network's layer k is ``Role(k, (k - 1,))`` with the first and
    last spaces fixed.
    """

    rows: int | None
    cols: tuple[int | None, ...] = ()
    transposed: bool = False


def chain_roles(n_layers: int) -> list[Role]:
    """The roles of ``[W_0, b_0, W_1, b_1, ...]`` of a chain of ``n_layers`` weight layers (eq. (12))."""
    roles = []
    for k in range(n_layers):
        rows = k if k < n_layers - 1 else None
        roles += [Role(rows, (k - 1 if k > 0 else None,)), Role(rows)]
    return roles
