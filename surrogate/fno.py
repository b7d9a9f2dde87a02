"""Fourier neural operator (Li et al. 2021, "Fourier neural operator for parametric PDEs", ICLR).

The layout follows the ``neuraloperator`` package's ``FNO`` (version 2) with
its defaults, written here so that the pipeline does not depend on that
package's dependency tree (wandb, tensorly, opentelemetry, h5py: 26 packages,
about 35 MB, for one layer)::

    x  <- [inputs, grid x, grid y]                              positional embedding on [0, 1]^2
    v  <- 1x1 conv (2w) -> GELU -> 1x1 conv (w)                 lifting
    repeat L times (no GELUs after the last block):
        v <- GELU(K v + W v)                                    K: spectral convolution, W: 1x1 conv
        v <- GELU(MLP(v) + g * v)                               channel MLP (w -> w/2 -> w), soft gate g
    fields:  1x1 conv (2w) -> GELU -> 1x1 conv (one channel per field target)
    scalars: mean over the grid -> FC (2w) -> GELU -> FC (scalar targets)

:class:`SpectralConv2d` is eq. (5) of Li et al.: ``(K v)(x) = F^{-1}(R . F v)(x) + b``
with R acting on the Fourier modes |k_y| < m, -m <= k_x < m (m = ``modes``,
at most n/2) and zero on the others; FFTs normalised as in neuraloperator
(``norm="forward"``). It equals neuraloperator's ``SpectralConv`` with
``n_modes=(2m, 2m - 2)`` on the same weights (tests/test_operators.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from surrogate.models import in_target_order

__all__ = ["FNO", "SpectralConv2d", "check_fno_modes"]


def check_fno_modes(modes: int, n: int) -> None:
    """Refuse more Fourier modes than the n x n grid has (m <= n/2 per direction)."""
    if modes > n // 2:
        raise ValueError(f"modes: {modes} Fourier modes per direction do not fit the {n} x {n} grid; "
                         f"need modes <= n/2 = {n // 2}")


class SpectralConv2d(nn.Module):
    """Eq. (5) of Li et al.: a learned complex matrix per kept Fourier mode, then back to the grid.

    ``weight`` is real, (in, out, 2m, m, 2) (real and imaginary parts): row
    j < m holds k_x = j, row j >= m holds k_x = j - 2m, column k_y = 0..m-1.
    """

    def __init__(self, in_channels: int, out_channels: int, modes: int):
        super().__init__()
        self.in_channels, self.out_channels, self.modes = int(in_channels), int(out_channels), int(modes)
        std = math.sqrt(2.0 / (in_channels + out_channels))        # neuraloperator's "auto" init
        self.weight = nn.Parameter(std * torch.randn(in_channels, out_channels, 2 * modes, modes, 2))
        self.bias = nn.Parameter(std * torch.randn(out_channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        m = self.modes
        x_ft = torch.fft.rfft2(x, norm="forward")
        low = torch.cat([x_ft[:, :, :m, :m], x_ft[:, :, h - m:, :m]], dim=2)
        mixed = torch.einsum("bixy,ioxy->boxy", low, torch.view_as_complex(self.weight))
        out_ft = x_ft.new_zeros(b, self.out_channels, h, w // 2 + 1)
        out_ft[:, :, :m, :m] = mixed[:, :, :m]
        out_ft[:, :, h - m:, :m] = mixed[:, :, m:]
        return torch.fft.irfft2(out_ft, s=(h, w), norm="forward") + self.bias

    def flops_per_sample(self, h: int, w: int) -> float:
        """Two FFTs per channel (5 N log2 N each) and a complex multiply-add per kept mode (8 flops)."""
        fft = 5.0 * h * w * math.log2(h * w) * (self.in_channels + self.out_channels)
        return fft + 8.0 * self.weight[..., 0].numel()


def _conv1x1(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 1)


class FNO(nn.Module):
    """A 2-D FNO regressor on (B, C, n, n) inputs; ``out_shapes``: the targets' shapes, () or (n, n), in order.

    ``width`` channels, ``layers`` Fourier blocks of ``modes`` modes per direction.
    """

    def __init__(self, in_channels: int, n: int, out_shapes: Sequence[Sequence[int]], modes: int = 12,
                 width: int = 32, layers: int = 4):
        super().__init__()
        self.in_channels, self.n, self.modes, self.width, self.n_layers = (int(in_channels), int(n), int(modes),
                                                                             int(width), int(layers))
        self.out_shapes = [tuple(int(v) for v in s) for s in out_shapes]
        if min(self.modes, self.width, self.n_layers) < 1:
            raise ValueError(f"modes = {modes}, width = {width}, layers = {layers}: need each >= 1")
        if any(s not in ((), (self.n, self.n)) for s in self.out_shapes) or not self.out_shapes:
            raise ValueError(f"targets of shapes {self.out_shapes}: an FNO predicts scalars () or "
                             f"({self.n}, {self.n}) fields")
        check_fno_modes(self.modes, self.n)
        w = self.width
        self.n_fields = sum(1 for s in self.out_shapes if s)
        self.n_scalars = len(self.out_shapes) - self.n_fields
        self.lift = nn.ModuleList([_conv1x1(in_channels + 2, 2 * w), _conv1x1(2 * w, w)])
        self.spectral = nn.ModuleList(SpectralConv2d(w, w, self.modes) for _ in range(layers))
        self.skip = nn.ModuleList(nn.Conv2d(w, w, 1, bias=False) for _ in range(layers))
        self.mlp = nn.ModuleList(nn.ModuleList([_conv1x1(w, w // 2 or 1), _conv1x1(w // 2 or 1, w)])
                                 for _ in range(layers))
        self.gate = nn.ParameterList(nn.Parameter(torch.ones(1, w, 1, 1)) for _ in range(layers))
        self.project = nn.ModuleList([_conv1x1(w, 2 * w), _conv1x1(2 * w, self.n_fields)]) if self.n_fields else None
        self.pool_head = nn.ModuleList([nn.Linear(w, 2 * w), nn.Linear(2 * w, self.n_scalars)]) \
            if self.n_scalars else None
        grid = torch.linspace(0.0, 1.0, self.n)
        self.register_buffer("grid", torch.stack(torch.meshgrid(grid, grid, indexing="ij"))[None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], self.in_channels, self.n, self.n)
        v = torch.cat([x, self.grid.to(x.dtype).expand(x.shape[0], -1, -1, -1)], dim=1)
        v = self.lift[1](F.gelu(self.lift[0](v)))
        for k in range(self.n_layers):
            last = k == self.n_layers - 1
            v = self.spectral[k](v) + self.skip[k](v)
            v = v if last else F.gelu(v)
            v = self.mlp[k][1](F.gelu(self.mlp[k][0](v))) + self.gate[k] * v
            v = v if last else F.gelu(v)
        fields = self.project[1](F.gelu(self.project[0](v))).flatten(2) if self.n_fields else None
        scalars = self.pool_head[1](F.gelu(self.pool_head[0](v.mean(dim=(2, 3))))) if self.n_scalars else None
        return in_target_order(self.out_shapes, fields, scalars)

    def flops_per_sample(self) -> float:
        """Forward FLOPs per sample: the 1x1 convolutions at every grid point, the heads, the spectral layers."""
        points = self.n * self.n
        pointwise = [*self.lift, *self.skip, *(c for pair in self.mlp for c in pair), *(self.project or ())]
        flops = sum(2.0 * c.weight.numel() * points for c in pointwise)
        flops += sum(2.0 * fc.weight.numel() for fc in self.pool_head or ())
        return flops + sum(s.flops_per_sample(self.n, self.n) for s in self.spectral)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, n={self.n}, modes={self.modes}, width={self.width}, "
                f"layers={self.n_layers}, out_shapes={self.out_shapes}")
