"""The minibatch stream shared by all levels (section 6.1.1)."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["MinibatchStream"]


class MinibatchStream:
    """Shuffle the training set once per epoch, then walk it in minibatches.

    Every level draws its next minibatches from the same stream, as
    one-level training would.  The last minibatch of an epoch holds the
    remaining ``n_samples % batch_size`` samples when that is not zero
    (every sample is visited exactly once per epoch).  The permutation of
    epoch e is drawn on the CPU from a generator seeded with (seed, e), so a
    stream resumes exactly from :meth:`state_dict`; it is copied to
    ``device`` once per epoch.

    With ``block`` > 1 (data streamed from chunks of ``block`` consecutive
    samples) the epoch's order is chunk-local instead: the blocks in random
    order, the samples shuffled within each run of ``window`` consecutive
    blocks, so that every chunk is read about once per epoch with a cache of
    ``window`` chunks.
    """

    def __init__(self, n_samples: int, batch_size: int, seed: int = 0, device: str | torch.device = "cpu",
                 block: int = 1, window: int = 1):
        if int(n_samples) < 1 or int(batch_size) < 1:
            raise ValueError(f"n_samples = {n_samples!r}, batch_size = {batch_size!r}: both must be >= 1")
        self.n_samples = int(n_samples)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.device = torch.device(device)
        self.block, self.window = max(int(block), 1), max(int(window), 1)
        self.epoch = 0
        self.pos = 0
        self._perm = self._permutation()

    @property
    def batches_per_epoch(self) -> int:
        return -(-self.n_samples // self.batch_size)

    def _permutation(self) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.block == 1:
            perm = torch.randperm(self.n_samples, generator=g)
        else:
            starts = (torch.randperm(-(-self.n_samples // self.block), generator=g) * self.block).tolist()
            windows = [torch.cat([torch.arange(a, min(a + self.block, self.n_samples)) for a in group])
                       for group in (starts[i:i + self.window] for i in range(0, len(starts), self.window))]
            perm = torch.cat([w[torch.randperm(len(w), generator=g)] for w in windows])
        if self.device.type == "cuda":
            return perm.pin_memory().to(self.device, non_blocking=True)
        return perm.to(self.device)

    def next(self) -> torch.Tensor:
        """Indices (a LongTensor on ``device``) of the next minibatch."""
        if self.pos >= self.n_samples:
            self.epoch += 1
            self.pos = 0
            self._perm = self._permutation()
        idx = self._perm[self.pos:self.pos + self.batch_size]
        self.pos += idx.numel()
        return idx

    def take(self, m: int) -> list[torch.Tensor]:
        """The next ``m`` minibatches."""
        return [self.next() for _ in range(m)]

    def state_dict(self) -> dict[str, Any]:
        return {"n_samples": self.n_samples, "batch_size": self.batch_size, "seed": self.seed,
                "epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if (state["n_samples"], state["batch_size"]) != (self.n_samples, self.batch_size):
            raise ValueError(f"stream state is for {state['n_samples']} samples in batches of "
                             f"{state['batch_size']}, this stream has {self.n_samples} and {self.batch_size}")
        self.seed, self.epoch, self.pos = state["seed"], state["epoch"], state["pos"]
        self._perm = self._permutation()
