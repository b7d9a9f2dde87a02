"""Fresh log-permeability fields for Monte Carlo, on a seed stream that no store uses.

Two samplers of the same :class:`pde_data.fields.GaussianRandomField`:

* ``numpy`` (the reference): field i is drawn from its own generator
  ``SeedSequence((seed, i, MC_STREAM))``, so it depends on (seed, i) alone;
* ``torch``: the circulant embedding's FFT on the surrogate's device (the GPU
  when present), so fields are drawn where the network runs and never cross
  the host. Field i comes from block ``i // TORCH_BLOCK`` of normals drawn by
  a torch generator seeded with (seed, block, MC_STREAM): it depends on
  (seed, i, device type) alone, not on the batch size or the number of
  processes. Statistically identical to the numpy sampler, not bit-identical;
  computed in float32 (complex64 FFTs: about 5x faster than float64 on a CPU).

Both round the values to float32, like the stored fields.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from pde_data.fields import GaussianRandomField

#: Third word of the SeedSequence entropy of MC fields ("mc"); stores use (seed, i) only.
MC_STREAM = 0x6D63
#: Fields per torch generator block.
TORCH_BLOCK = 256


def mc_rng(seed: int, i: int) -> np.random.Generator:
    """Generator of MC field ``i``: SeedSequence((seed, i, MC_STREAM)), disjoint from every store's."""
    return np.random.default_rng(np.random.SeedSequence((int(seed), int(i), MC_STREAM)))


class FieldSampler:
    """Fresh fields (n, n) of the random field ``params``; ``device`` set: the torch sampler there.

    ``draw(start, stop)`` returns fields start..stop-1: a float64 numpy array
    (numpy sampler) or a float32 tensor on ``device`` (torch sampler).
    """

    def __init__(self, n: int, params: Mapping, seed: int, device: torch.device | None = None):
        self.field = GaussianRandomField(int(n), params["kernel"], params["mean"], params["variance"],
                                         params["length"], params.get("nu"), params.get("method", "fft"))
        self.n, self.seed = int(n), int(seed)
        self.device = None if device is None else torch.device(device)
        if self.device is not None:
            if self.field.embedding is None:
                raise ValueError("the torch sampler needs the fft method (the circulant embedding)")
            scale = self.field.embedding.scale * np.sqrt(self.field.variance)
            self._scale = torch.as_tensor(scale, dtype=torch.float32, device=self.device)

    def draw(self, start: int, stop: int) -> np.ndarray | torch.Tensor:
        if self.device is not None:
            return self._draw_torch(start, stop)
        xi = np.stack([mc_rng(self.seed, i).standard_normal(self.field.noise_shape) for i in range(start, stop)])
        return self.field.from_normals(xi).astype(np.float32).astype(np.float64).reshape(-1, self.n, self.n)

    # ------------------------------------------------------------------ torch
    def _normals(self, block: int) -> torch.Tensor:
        """The (TORCH_BLOCK, m, m//2+1, 2) standard normals of ``block``, on the device."""
        state = np.random.SeedSequence((self.seed, block, MC_STREAM)).generate_state(2, dtype=np.uint32)
        g = torch.Generator(device=self.device).manual_seed(int(state[0]) << 32 | int(state[1]))
        return torch.randn((TORCH_BLOCK, *self.field.noise_shape), generator=g, device=self.device)

    def _draw_torch(self, start: int, stop: int) -> torch.Tensor:
        parts = []
        for block in range(start // TORCH_BLOCK, -(-stop // TORCH_BLOCK)):
            a = max(start - block * TORCH_BLOCK, 0)
            b = min(stop - block * TORCH_BLOCK, TORCH_BLOCK)
            parts.append(self._normals(block)[a:b])
        xi = torch.cat(parts)
        z = torch.view_as_complex(xi.contiguous()) * self._scale
        n, m = self.n, self.field.embedding.shape[1]
        rows = torch.fft.ifft(z, dim=-2, norm="forward")[..., :n, :]
        u = torch.fft.irfft(rows, n=m, dim=-1, norm="forward")[..., :n]
        return (self.field.mean + u).to(torch.float32)
