"""Physical arrays <-> normalised network tensors (inputs and targets) for one layout.

The normalisation statistics -- a mean and a standard deviation per input
channel and per target, from :mod:`surrogate.normalization` -- are saved
with every model so that :class:`Codec` encodes new inputs the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch

from surrogate.layout import Layout


class Codec:
    """Physical arrays <-> normalised network tensors for one layout.

    ``flat`` (MLP) flattens the input to ``C*n*n``; the CNN takes ``C x n x n``.
    The network output is always a vector of ``layout.out_dim`` values.
    """

    def __init__(self, layout: Layout, normalization: Mapping, flat: bool):
        self.layout = layout
        self.norm = normalization
        self.flat = flat
        n = layout.n
        self._in_mean = np.array([normalization["inputs"][c][0] for c in layout.channels], dtype=np.float64)
        self._in_std = np.array([normalization["inputs"][c][1] for c in layout.channels], dtype=np.float64)
        self._out_mean = np.concatenate([np.full(math.prod(s), normalization["targets"][t][0])
                                         for t, s in zip(layout.targets, layout.target_shapes)])
        self._out_std = np.concatenate([np.full(math.prod(s), normalization["targets"][t][1])
                                        for t, s in zip(layout.targets, layout.target_shapes)])
        self.grid: tuple[np.ndarray, np.ndarray] | None = None
        self.n = n

    @property
    def in_feature_shape(self) -> tuple[int, ...]:
        c, n, _ = self.layout.in_shape
        return (c * n * n,) if self.flat else (c, n, n)

    def set_grid(self, gx: np.ndarray, gy: np.ndarray) -> None:
        self.grid = (np.asarray(gx, dtype=np.float64), np.asarray(gy, dtype=np.float64))

    # -- inputs -----------------------------------------------------------------
    def stack_inputs(self, fields: Mapping[str, np.ndarray]) -> np.ndarray:
        """(B, C, n, n) physical channel stack from per-sample input arrays (+ grid)."""
        first = np.asarray(fields[self.layout.inputs[0]])
        b = first.shape[0]
        chans = []
        for c in self.layout.channels:
            if c in fields:
                chans.append(np.asarray(fields[c], dtype=np.float64))
            elif c in self.layout.grid_channels:
                if self.grid is None:
                    raise ValueError("grid coordinates are not known")
                g = self.grid[self.layout.grid_channels.index(c)]
                chans.append(np.broadcast_to(g, (b,) + g.shape))
            else:
                raise KeyError(c)
        return np.stack(chans, axis=1)

    def encode_stack(self, stack: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
        z = (stack - self._in_mean[None, :, None, None]) / self._in_std[None, :, None, None]
        t = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))
        if self.flat:
            t = t.reshape(t.shape[0], -1)
        return t.to(device)

    def encode_torch(self, fields: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The network input from per-sample input tensors (B, n, n), computed on their device (float32)."""
        first = fields[self.layout.inputs[0]]
        dev, b = first.device, first.shape[0]
        chans = []
        for c in self.layout.channels:
            if c in fields:
                chans.append(fields[c].to(torch.float32))
            else:  # a grid channel
                g = torch.as_tensor(self.grid[self.layout.grid_channels.index(c)], dtype=torch.float32, device=dev)
                chans.append(g.expand(b, *g.shape))
        x = torch.stack(chans, dim=1)
        mean = torch.as_tensor(self._in_mean, dtype=torch.float32, device=dev)[None, :, None, None]
        std = torch.as_tensor(self._in_std, dtype=torch.float32, device=dev)[None, :, None, None]
        z = (x - mean) / std
        return z.reshape(b, -1) if self.flat else z

    def encode_inputs(self, fields: Mapping[str, np.ndarray], device: torch.device | str = "cpu") -> torch.Tensor:
        return self.encode_stack(self.stack_inputs(fields), device)

    # -- targets ----------------------------------------------------------------
    def target_vector(self, fields: Mapping[str, np.ndarray]) -> np.ndarray:
        """(B, out_dim) physical target vector."""
        parts = []
        for t in self.layout.targets:
            a = np.asarray(fields[t], dtype=np.float64)
            parts.append(a.reshape(a.shape[0], -1))
        return np.concatenate(parts, axis=1)

    def encode_targets(self, fields: Mapping[str, np.ndarray], device: torch.device | str = "cpu") -> torch.Tensor:
        z = (self.target_vector(fields) - self._out_mean) / self._out_std
        return torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)).to(device)

    def decode_vector(self, y: torch.Tensor | np.ndarray) -> np.ndarray:
        """Normalised (B, out_dim) -> physical (B, out_dim) float64."""
        if isinstance(y, torch.Tensor):
            y = y.detach().to("cpu", torch.float64).numpy()
        return np.asarray(y, dtype=np.float64) * self._out_std + self._out_mean

    def decode_torch(self, y: torch.Tensor) -> torch.Tensor:
        """Normalised -> physical, on y's device (float32)."""
        std = torch.as_tensor(self._out_std, dtype=y.dtype, device=y.device)
        mean = torch.as_tensor(self._out_mean, dtype=y.dtype, device=y.device)
        return y * std + mean

    def split_targets(self, vec: np.ndarray) -> dict[str, np.ndarray]:
        """Physical (B, out_dim) -> {target: (B,) or (B, n, n)}."""
        return {t: vec[:, sl].reshape((vec.shape[0],) + tuple(s))
                for (t, sl), s in zip(self.layout.target_slices().items(), self.layout.target_shapes)}
