"""Fully connected and convolutional ReLU regressors that can change width.

Both networks are the feedforward recurrence of the paper's eq. (13): a
chain of weight layers (``nn.Linear`` or ``nn.Conv2d``, each with a bias)
with ReLU between them and a linear output.  The multilevel trainer needs
three things from such a network, which :class:`WidthNet` provides:

* ``layers``: the weight layers in order, so that ``parameters()`` is
  ``[W_0, b_0, W_1, b_1, ...]`` (the order of eq. (12), interleaved);
* ``hidden_sizes``: the widths n_1, ..., n_{n_L} of the hidden vectors y_k
  (neurons, or channels of a convolutional layer, section 7); the input and
  output widths are fixed;
* ``resized(hidden_sizes)``: a network of the same class and the same
  input/output shapes with other hidden widths (a coarse network, eq. (18)).

``positions[k]`` is the number of output positions of layer k (1 for a
fully connected layer, H_out * W_out for a convolution); FLOPs per sample
follow from it and the weight shapes (see ``surrogate.multilevel.work``).

The paper's four networks (section 8)::

    MLP([3072, 400, 400, 1024])                                   # Poisson FC
    CNN(3, conv=[(200, 7, 2)] * 2, fc=[400, 400], out=1024)        # Poisson CNN
    MLP([1024, 1024, 1024, 1024, 1])                              # Darcy FC (QoI)
    CNN(1, conv=[(100, 11, 2), (200, 7, 1), (400, 3, 1)],
        fc=[2048, 2048], out=1)                                    # Darcy CNN (QoI)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from surrogate.spaces import Role, chain_roles

__all__ = ["CNN", "MLP", "WidthNet", "build_model", "in_target_order"]


class WidthNet(nn.Module):
    """A chain of weight layers with ReLU between them and a linear output."""

    layers: nn.ModuleList
    positions: list[int]

    @property
    def hidden_sizes(self) -> list[int]:
        """Widths of the hidden vectors y_1..y_{n_L} (output units of all but the last layer)."""
        return [layer.weight.shape[0] for layer in self.layers[:-1]]

    def resized(self, hidden_sizes: Sequence[int]) -> WidthNet:
        """A network of the same class and input/output shapes with these hidden widths."""
        raise NotImplementedError

    def space_weights(self) -> list[torch.Tensor]:
        """Per hidden space, the weight whose rows produce its units (heavy edge matching reads them)."""
        return [layer.weight for layer in self.layers[:-1]]

    def roles(self) -> list[Role]:
        """Per parameter, the hidden spaces of its rows and columns (:class:`~surrogate.multilevel.transfer.Role`)."""
        return chain_roles(len(self.layers))

    def flops_per_sample(self) -> float:
        """Forward FLOPs per sample: 2 * (weights x output positions) summed over the layers."""
        return float(sum(2 * layer.weight.numel() * pos for layer, pos in zip(self.layers, self.positions)))

    def _like(self, net: WidthNet) -> WidthNet:
        p = next(self.parameters())
        return net.to(device=p.device, dtype=p.dtype)


class MLP(WidthNet):
    """Fully connected ReLU network; ``widths = [n_in, n_1, ..., n_out]``.

    The input is flattened from dimension 1, so images (B, C, H, W) and flat
    vectors (B, C*H*W) are both accepted.
    """

    def __init__(self, widths: Sequence[int]):
        super().__init__()
        widths = [int(w) for w in widths]
        if len(widths) < 2 or min(widths) < 1:
            raise ValueError(f"MLP widths = {widths!r}: need at least [n_in, n_out], all >= 1")
        self.widths = widths
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        self.positions = [1] * len(self.layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)

    def resized(self, hidden_sizes: Sequence[int]) -> MLP:
        hidden = list(hidden_sizes)
        if len(hidden) != len(self.widths) - 2:
            raise ValueError(f"MLP has {len(self.widths) - 2} hidden layers, got sizes {hidden!r}")
        return self._like(MLP([self.widths[0], *hidden, self.widths[-1]]))

    def extra_repr(self) -> str:
        return f"widths={self.widths}"


def _conv_out(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


class CNN(WidthNet):
    """Convolutional ReLU network (section 7): conv layers, flatten, FC layers, linear output.

    ``conv`` is a list of ``(channels, kernel, stride)`` (no padding), ``fc``
    the widths of the hidden fully connected layers, ``out`` the output width
    and ``in_size`` the spatial size (H, W) of the input.  A flat input
    (B, C*H*W) is reshaped to (B, C, H, W).  The first fully connected layer
    sees the last conv output flattened channel-major, so its columns come in
    blocks of H_out*W_out per channel.
    """

    def __init__(self, in_channels: int, conv: Sequence[Sequence[int]], fc: Sequence[int] = (),
                 out: int = 1, in_size: Sequence[int] = (32, 32)):
        super().__init__()
        self.in_channels = int(in_channels)
        self.conv = [tuple(int(v) for v in c) for c in conv]
        self.fc = [int(w) for w in fc]
        self.out = int(out)
        self.in_size = tuple(int(s) for s in in_size)
        if not self.conv or any(len(c) != 3 or min(c) < 1 for c in self.conv):
            raise ValueError(f"CNN conv = {conv!r}: need a non-empty list of (channels, kernel, stride)")
        layers, positions = [], []
        h, w = self.in_size
        c_in = self.in_channels
        for c, k, s in self.conv:
            h, w = _conv_out(h, k, s), _conv_out(w, k, s)
            if h < 1 or w < 1:
                raise ValueError(f"CNN conv = {conv!r}: kernel {k} does not fit the {self.in_size} input")
            layers.append(nn.Conv2d(c_in, c, k, stride=s))
            positions.append(h * w)
            c_in = c
        self.out_size = (h, w)
        n_in = c_in * h * w
        for width in [*self.fc, self.out]:
            layers.append(nn.Linear(n_in, width))
            positions.append(1)
            n_in = width
        self.layers = nn.ModuleList(layers)
        self.positions = positions
        self.n_conv = len(self.conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], self.in_channels, *self.in_size)
        for layer in self.layers[: self.n_conv]:
            x = F.relu(layer(x))
        x = x.flatten(1)
        for layer in self.layers[self.n_conv:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)

    def resized(self, hidden_sizes: Sequence[int]) -> CNN:
        hidden = list(hidden_sizes)
        if len(hidden) != self.n_conv + len(self.fc):
            raise ValueError(f"CNN has {self.n_conv + len(self.fc)} hidden layers, got sizes {hidden!r}")
        conv = [(c, k, s) for c, (_, k, s) in zip(hidden, self.conv)]
        return self._like(CNN(self.in_channels, conv, hidden[self.n_conv:], self.out, self.in_size))

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, in_size={self.in_size}, conv={self.conv}, fc={self.fc}, out={self.out}"


def in_target_order(out_shapes: Sequence[tuple], fields: torch.Tensor | None,
                    scalars: torch.Tensor | None) -> torch.Tensor:
    """The output vector (B, out_dim): field maps (B, n_fields, n*n) and scalars (B, n_scalars), interleaved in
    the order of ``out_shapes`` (the layout's targets: () for a scalar, (n, n) for a field)."""
    parts, f, s = [], 0, 0
    for shape in out_shapes:
        if shape:
            parts.append(fields[:, f])
            f += 1
        else:
            parts.append(scalars[:, s:s + 1])
            s += 1
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


def build_model(spec: Mapping, in_shape: Sequence[int], out_dim: int,
                out_shapes: Sequence[Sequence[int]] | None = None) -> nn.Module:
    """Build a network from a model spec (the ``models.<problem>.<kind>`` section).

    ``{"kind": "mlp", "hidden": [...]}``,
    ``{"kind": "cnn", "conv": [[channels, kernel, stride], ...], "fc": [...]}``,
    ``{"kind": "unet", "channels": [...], "head": [...]}`` (:mod:`surrogate.unet`) or
    ``{"kind": "fno", "modes": m, "width": w, "layers": L}`` (:mod:`surrogate.fno`);
    ``in_shape`` is one sample's input shape ((C, H, W) for all but the MLP),
    ``out_shapes`` the targets' shapes in output order (() or (n, n); default:
    one field if ``out_dim`` is n*n, else one scalar).
    """
    kind = spec.get("kind")
    in_shape = tuple(int(s) for s in in_shape)
    if kind == "mlp":
        return MLP([math.prod(in_shape), *spec["hidden"], int(out_dim)])
    if kind not in ("cnn", "unet", "fno"):
        raise ValueError(f"model kind = {kind!r}: allowed: 'mlp', 'cnn', 'unet', 'fno'")
    if len(in_shape) != 3:
        raise ValueError(f"a {kind} needs a (C, H, W) input shape, got {in_shape!r}")
    if kind == "cnn":
        return CNN(in_shape[0], spec["conv"], spec.get("fc", ()), int(out_dim), in_shape[1:])
    n = in_shape[1]
    if out_shapes is None:
        out_shapes = [(n, n)] if out_dim == n * n else [()] * int(out_dim)
    if kind == "unet":
        from surrogate.unet import UNet

        return UNet(in_shape[0], spec["channels"], n, out_shapes, spec.get("head", (64,)))
    from surrogate.fno import FNO

    return FNO(in_shape[0], n, out_shapes, spec.get("modes", 12), spec.get("width", 32), spec.get("layers", 4))
