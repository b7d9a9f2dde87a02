"""A fully convolutional encoder-decoder (U-Net) whose channel widths can change.

Ronneberger, Fischer and Brox (2015), "U-Net: convolutional networks for
biomedical image segmentation", sized for n x n PDE fields: ``channels =
[c_0, ..., c_D]`` gives D poolings::

    encoder level l:   conv3x3 -> ReLU -> conv3x3 -> ReLU   (= skip s_l), then max-pool 2 (l < D)
    decoder level l:   up_l = transposed conv 2x2 / 2 of the level below,
                       [up_l, s_l] -> conv3x3 -> ReLU -> conv3x3 -> ReLU      (l = D-1, ..., 0)
    field head:        conv1x1 of decoder level 0 -> one channel per field target (Poisson u, Darcy p)
    scalar head:       mean over the grid of the last feature map -> FC (ReLU) ... -> scalar targets (Darcy Q)

With scalar targets only, there is no decoder: the pooling head reads the
encoder's deepest level. Outputs are concatenated in the layout's target
order (a vector of ``out_dim`` values per sample, like every model here).

Width hierarchy (sections 5 and 7 of the paper): every conv output is a
hidden space of channels; a skip connection is one space read twice (by the
next encoder level and by the decoder's concatenation), so heavy edge
matching coarsens it once and the transfers of eqs. (32)/(34) act on its
columns in both readers (:meth:`UNet.roles`). Max-pooling, the channel-wise
mean and ReLU commute with the piecewise-constant (and positive-diagonal)
prolongation, so a prolonged coarse U-Net computes the coarse function.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from surrogate.models import WidthNet, in_target_order
from surrogate.spaces import Role

__all__ = ["UNet", "check_unet_depth"]


def check_unet_depth(n_levels: int, n: int) -> None:
    """Refuse a U-Net with more poolings than the n x n grid allows (each halves it exactly)."""
    depth = n_levels - 1
    limit = (n & -n).bit_length() - 1          # the largest d with 2^d dividing n
    if depth > limit:
        raise ValueError(f"channels: {n_levels} levels ({depth} poolings) do not fit the {n} x {n} grid; each "
                         f"pooling halves it exactly, so at most {limit + 1} levels ({limit} poolings, "
                         f"n / 2^{limit} = {n >> limit}; log2(n) = {math.log2(n):g})")


class UNet(WidthNet):
    """U-Net regressor on (B, C, n, n) inputs; ``out_shapes``: the targets' shapes, () or (n, n), in order.

    ``channels``: widths per level (``len - 1`` poolings); ``head``: hidden
    widths of the scalar pooling head; ``widths``: the width of every hidden
    space in :attr:`spaces` order (a coarse net of the hierarchy; default:
    from ``channels`` and ``head``).
    """

    def __init__(self, in_channels: int, channels: Sequence[int], n: int, out_shapes: Sequence[Sequence[int]],
                 head: Sequence[int] = (64,), widths: Sequence[int] | None = None):
        super().__init__()
        self.in_channels, self.n = int(in_channels), int(n)
        self.channels, self.head = [int(c) for c in channels], [int(w) for w in head]
        self.out_shapes = [tuple(int(v) for v in s) for s in out_shapes]
        if not self.channels or min(self.channels) < 1 or (self.head and min(self.head) < 1):
            raise ValueError(f"channels = {self.channels}, head = {self.head}: need at least one level, widths >= 1")
        if any(s not in ((), (self.n, self.n)) for s in self.out_shapes) or not self.out_shapes:
            raise ValueError(f"targets of shapes {self.out_shapes}: a U-Net predicts scalars () or "
                             f"({self.n}, {self.n}) fields")
        check_unet_depth(len(self.channels), self.n)
        self.n_fields = sum(1 for s in self.out_shapes if s)
        self.n_scalars = len(self.out_shapes) - self.n_fields
        self.spaces = self._space_names()
        widths = list(widths) if widths is not None else self._default_widths()
        if len(widths) != len(self.spaces):
            raise ValueError(f"UNet has {len(self.spaces)} hidden spaces, got widths {widths!r}")
        self.widths = [int(w) for w in widths]
        self._build()

    # ------------------------------------------------------------------ structure
    @property
    def depth(self) -> int:
        return len(self.channels) - 1

    def _space_names(self) -> list[str]:
        names = [f"enc{l}{ab}" for l in range(self.depth + 1) for ab in "ab"]
        if self.n_fields:
            names += [f"dec{l}{part}" for l in reversed(range(self.depth)) for part in ("up", "a", "b")]
        if self.n_scalars:
            names += [f"head{k}" for k in range(len(self.head))]
        return names

    def _default_widths(self) -> list[int]:
        width = {f"enc{l}{ab}": c for l, c in enumerate(self.channels) for ab in "ab"}
        width.update({f"dec{l}{part}": self.channels[l] for l in range(self.depth) for part in ("up", "a", "b")})
        width.update({f"head{k}": w for k, w in enumerate(self.head)})
        return [width[s] for s in self.spaces]

    def _build(self) -> None:
        """Layers in ``parameters()`` order, their :class:`Role` and output positions (for FLOPs)."""
        space = {name: i for i, name in enumerate(self.spaces)}
        layers, roles, positions = [], [], []

        def add(layer: nn.Module, rows: str | None, cols: Sequence[str | None], pos: int, transposed=False):
            rows_i = None if rows is None else space[rows]
            layers.append(layer)
            roles.extend([Role(rows_i, tuple(None if c is None else space[c] for c in cols), transposed),
                          Role(rows_i)])
            positions.append(pos)

        w = dict(zip(self.spaces, self.widths))
        prev, c_prev = None, self.in_channels
        for l in range(self.depth + 1):
            size = (self.n >> l) ** 2
            for ab in "ab":
                name = f"enc{l}{ab}"
                add(nn.Conv2d(c_prev, w[name], 3, padding=1), name, (prev,), size)
                prev, c_prev = name, w[name]
        if self.n_fields:
            for l in reversed(range(self.depth)):
                up, a, b = f"dec{l}up", f"dec{l}a", f"dec{l}b"
                add(nn.ConvTranspose2d(c_prev, w[up], 2, stride=2), up, (prev,), (self.n >> (l + 1)) ** 2, True)
                add(nn.Conv2d(w[up] + w[f"enc{l}b"], w[a], 3, padding=1), a, (up, f"enc{l}b"), (self.n >> l) ** 2)
                add(nn.Conv2d(w[a], w[b], 3, padding=1), b, (a,), (self.n >> l) ** 2)
                prev, c_prev = b, w[b]
            add(nn.Conv2d(c_prev, self.n_fields, 1), None, (prev,), self.n ** 2)
        if self.n_scalars:
            for k in range(len(self.head)):
                add(nn.Linear(c_prev, w[f"head{k}"]), f"head{k}", (prev,), 1)
                prev, c_prev = f"head{k}", w[f"head{k}"]
            add(nn.Linear(c_prev, self.n_scalars), None, (prev,), 1)
        self.layers = nn.ModuleList(layers)
        self._roles, self.positions = roles, positions

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], self.in_channels, self.n, self.n)
        layers = iter(self.layers)
        skips = []
        for l in range(self.depth + 1):
            if l:
                x = F.max_pool2d(x, 2)
            x = F.relu(next(layers)(x))
            x = F.relu(next(layers)(x))
            skips.append(x)
        fields = None
        if self.n_fields:
            for l in reversed(range(self.depth)):
                x = next(layers)(x)
                x = F.relu(next(layers)(torch.cat([x, skips[l]], dim=1)))
                x = F.relu(next(layers)(x))
            fields = next(layers)(x).flatten(2)                 # (B, n_fields, n*n)
        scalars = None
        if self.n_scalars:
            z = x.mean(dim=(2, 3))
            for _ in self.head:
                z = F.relu(next(layers)(z))
            scalars = next(layers)(z)                           # (B, n_scalars)
        return in_target_order(self.out_shapes, fields, scalars)

    # ------------------------------------------------------------------ width interface
    @property
    def hidden_sizes(self) -> list[int]:
        return list(self.widths)

    def space_weights(self) -> list[torch.Tensor]:
        """Per hidden space, the rows of the layer that produces it (a transposed conv's weight turned round)."""
        out: list[torch.Tensor | None] = [None] * len(self.spaces)
        for layer, role in zip(self.layers, self._roles[0::2]):
            if role.rows is not None:
                out[role.rows] = layer.weight.transpose(0, 1) if role.transposed else layer.weight
        return out

    def roles(self) -> list[Role]:
        return list(self._roles)

    def resized(self, hidden_sizes: Sequence[int]) -> UNet:
        return self._like(UNet(self.in_channels, self.channels, self.n, self.out_shapes, self.head,
                               widths=hidden_sizes))

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, n={self.n}, channels={self.channels}, head={self.head}, "
                f"out_shapes={self.out_shapes}")
