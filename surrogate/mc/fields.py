"""Fresh log-permeability fields for Monte Carlo, on a seed stream that no store uses."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pde_data.fields import GaussianRandomField

#: Third word of the SeedSequence entropy of MC fields ("mc"); stores use (seed, i) only.
MC_STREAM = 0x6D63


def mc_rng(seed: int, i: int) -> np.random.Generator:
    """Generator of MC field ``i``: SeedSequence((seed, i, MC_STREAM)), disjoint from every store's."""
    return np.random.default_rng(np.random.SeedSequence((int(seed), int(i), MC_STREAM)))


class FieldSampler:
    """Fresh fields (n, n) of a :class:`pde_data.fields.GaussianRandomField`: ``mean + L xi`` for a batch at once."""

    def __init__(self, n: int, params: Mapping, seed: int):
        self.field = GaussianRandomField(int(n), params["kernel"], params["mean"], params["variance"],
                                         params["length"], params.get("nu"))
        self.n = int(n)
        self.seed = int(seed)
        self._lt = np.ascontiguousarray(self.field.factor.T)

    def draw(self, start: int, stop: int) -> np.ndarray:
        """Fields ``start..stop-1`` as a (stop - start, n, n) float64 array (float32-rounded values)."""
        k = self.n * self.n
        xi = np.empty((stop - start, k))
        for j, i in enumerate(range(start, stop)):
            xi[j] = mc_rng(self.seed, i).standard_normal(k)
        u = self.field.mean + xi @ self._lt
        return u.astype(np.float32).astype(np.float64).reshape(-1, self.n, self.n)
