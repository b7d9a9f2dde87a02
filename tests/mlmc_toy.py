"""A toy hierarchy with a known mean for the multilevel tests (numpy only, declared costs).

x ~ N(0, I_3); P_l(x) = exp(0.4 x1) + 2^-l h(x), h = x1^2 + sin(x2), so
E[P_l] = exp(0.08) + 2^-l and Y_l = P_l - P_{l-1} = -2^-l h (V_l = 4^-l Var h,
|E Y_l| = 2^-l: alpha = 1, beta = 2). The surrogate G(x) = exp(0.4 x1) + h(x)
+ 0.1 x3 approximates P_0 (corr about 0.998). Costs are declared: C_l = 4^l ms
a sample of level l (``cost_growth`` 4 by default), 5 us for G. Sample i of a level depends
on (seed, level, randomization, i) alone; ``qmc``: the points of scrambled Sobol' sequences instead.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.special import ndtri
from scipy.stats import qmc

from surrogate.mc.levels import Level

TRUE_BASE = math.exp(0.08)


def true_mean(level: int) -> float:
    return TRUE_BASE + 2.0**-level


class ToyHierarchy:
    """``levels(L)``, ``sample(level, start, stop, rep)`` and ``max_level`` like :class:`DarcyHierarchy`."""

    def __init__(self, max_level: int = 4, seed: int = 0, cv: bool = False, cost_growth: float = 4.0,
                 qmc: bool = False):
        self.grids = [2**l for l in range(max_level + 1)]
        self.seed, self.cv, self.growth, self.qmc = seed, cv, cost_growth, qmc
        self._engines: dict = {}

    @property
    def max_level(self) -> int:
        return len(self.grids) - 1

    def levels(self, finest: int) -> list[Level]:
        out = [Level(-1, "surrogate", 1, None, 1)] if self.cv else []
        out.append(Level(0, "coarsest", 1, None, 1, self.cv))
        return out + [Level(l, "difference", 2**l, 2 ** (l - 1), 2**l) for l in range(1, finest + 1)]

    def _sobol(self, level: Level, start: int, stop: int, rep: int) -> np.ndarray:
        """Randomization ``rep`` of a scrambled Sobol' sequence in 3 dimensions, points start..stop-1."""
        key = (level.code, rep)
        if key not in self._engines or self._engines[key][1] != start:
            engine = qmc.Sobol(3, scramble=True, seed=np.random.default_rng((self.seed, level.code, rep)))
            if start:
                engine.fast_forward(start)
            self._engines[key] = [engine, start]
        engine = self._engines[key][0]
        self._engines[key][1] = stop
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return ndtri(engine.random(stop - start))

    def _x(self, level: Level, start: int, stop: int, rep: int) -> np.ndarray:
        """Sample i depends on (seed, level, rep, i) alone, as in the Darcy hierarchy: the normal quantiles of
        the 4 uniforms of Philox counter i (a counter-based generator jumps to any sample at once)."""
        key = np.random.SeedSequence((self.seed, level.code, rep)).generate_state(2, np.uint64)
        bits = np.random.Philox(key=key)
        bits.advance(start)
        return ndtri(np.random.Generator(bits).random((stop - start, 4))[:, :3])

    @staticmethod
    def p(x: np.ndarray, l: int) -> np.ndarray:
        return np.exp(0.4 * x[:, 0]) + 2.0**-l * (x[:, 0] ** 2 + np.sin(x[:, 1]))

    @staticmethod
    def g(x: np.ndarray) -> np.ndarray:
        return np.exp(0.4 * x[:, 0]) + x[:, 0] ** 2 + np.sin(x[:, 1]) + 0.1 * x[:, 2]

    def sample(self, level: Level, start: int, stop: int, rep: int = 0):
        x = (self._sobol if self.qmc else self._x)(level, start, stop, rep)
        if level.kind == "surrogate":
            return self.g(x)[:, None], {"seconds": 5e-6 * len(x)}
        if level.kind == "coarsest":
            cols = [self.p(x, 0)] + ([self.g(x)] if level.cv else [])
            return np.stack(cols, axis=1), {"seconds": 1e-3 * len(x)}
        l = level.index
        fine = self.p(x, l)
        return np.stack([fine - self.p(x, l - 1), fine], axis=1), {"seconds": 1e-3 * self.growth**l * len(x)}
