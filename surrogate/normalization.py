"""Normalisation statistics from a store's training split, for :class:`surrogate.codec.Codec`.

A mean and a standard deviation per input channel and per target, computed
chunk by chunk in float64 over the done samples of the training split.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from pde_data.store import StoreError, StoreReader
from surrogate.layout import Layout


class _Moments:
    """Mean and variance, combined chunk by chunk in float64 (Chan et al.)."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, a: np.ndarray) -> None:
        a = np.asarray(a, dtype=np.float64).ravel()
        if a.size == 0:
            return
        nb, mb = a.size, float(a.mean())
        m2b = float(((a - mb) ** 2).sum())
        n = self.n + nb
        delta = mb - self.mean
        self.mean += delta * nb / n
        self.m2 += m2b + delta * delta * self.n * nb / n
        self.n = n

    def result(self) -> list[float]:
        std = math.sqrt(self.m2 / self.n) if self.n else 1.0
        if not math.isfinite(std) or std < 1e-12:
            std = 1.0
        return [float(self.mean), float(std)]


def compute_normalization(store: StoreReader, layout: Layout, train_index: np.ndarray, enabled: bool = True) -> dict:
    """Per-channel / per-target [mean, std] over the done training samples ([0, 1] each if not ``enabled``)."""
    if not enabled:
        return {"enabled": False, "inputs": {c: [0.0, 1.0] for c in layout.channels},
                "targets": {t: [0.0, 1.0] for t in layout.targets}}
    if len(train_index) == 0:
        raise StoreError(f"store {store.path}: the training split has no finished samples")
    moments = {name: _Moments() for name in layout.arrays}
    for name in layout.arrays:
        for ids in chunk_groups(train_index, int(store.array(name).chunks[0])):
            moments[name].add(store.read(name, ids))
    for c, g in zip(layout.grid_channels, store.grid(layout.n) if layout.grid_channels else ()):
        moments[c] = _Moments()
        moments[c].add(g)
    return {"enabled": True, "inputs": {c: moments[c].result() for c in layout.channels},
            "targets": {t: moments[t].result() for t in layout.targets}}


def chunk_groups(index: np.ndarray, chunk: int) -> Iterator[np.ndarray]:
    """Split sorted ``index`` into groups that share a chunk of length ``chunk``."""
    index = np.asarray(index, dtype=np.int64)
    if index.size == 0:
        return
    cuts = np.flatnonzero(np.diff(index // chunk)) + 1
    yield from np.split(index, cuts)
