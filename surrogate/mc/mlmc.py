"""Multilevel Monte Carlo estimator mathematics (numpy only): level moments, allocation, bias, RMSE.

The telescoping sum (Giles 2008, eq. (1); Giles 2015, Acta Numerica, eq. (2.4)) over
levels l = 0..L of a hierarchy of models P_0, ..., P_L (here the outflow Q on
grids n_0 < ... < n_L)::

    E[P_L] = sum_l E[Y_l],   Y_0 = P_0,   Y_l = P_l - P_{l-1}   (P_l and P_{l-1} on one coupled draw),
    mu     = sum_l mean_{N_l}(Y_l),   Var(mu) = sum_l V_l / N_l,   V_l = Var(Y_l),

with independent samples across levels. Each level here records vector
samples z (its outputs: e.g. (Y_l, P_l)) and the level's term is the linear
combination Y = a . z with weights ``a`` that may depend on a control-variate
coefficient beta (a surrogate G as the cheapest level: Y_S = beta G and
Y_0 = P_0 - beta G; see :mod:`surrogate.mc.levels`); then
E[Y] = a . E[z] and V = a^T Cov(z) a, from the pooled moments of z
(:class:`Moments`, Chan, Golub and LeVeque's pairwise update).

**Allocation** (Giles 2015, eq. (1.6)): with cost C_l per sample, the sample
sizes minimising the cost for a sampling variance eps_s^2 are

    N_l = ceil( sqrt(V_l / C_l) * sum_k sqrt(V_k C_k) / eps_s^2 ),   total cost = (sum_k sqrt(V_k C_k))^2 / eps_s^2.

**Bias** of E[P_L] against the continuum E[P], assuming |E[Y_l]| ~ 2^(-alpha l)
(Giles 2015, section 3.1, from the two finest levels)::

    bias ~ max(|E[Y_L]|, |E[Y_{L-1}]| / 2^alpha) / (2^alpha - 1).

**RMSE** = sqrt(sampling variance + bias^2); the tolerance eps is met when
sampling variance <= (1 - theta) eps^2 and bias <= sqrt(theta) eps.

**Randomized QMC** levels (Giles and Waterhouse 2009): R independent
randomizations of N_l points each; the level's mean is the average of the R
randomization means and its variance is their sample variance / R (the pooled
moments still give E[z] and the per-sample V_l for the report); the 95%
interval uses Student's t with R - 1 degrees of freedom (:func:`quantile95`).

PyApprox 2.0 (``pyapprox.statest``: MLMC, MFMC and ACV allocations) is used
as a *reference* that the tests compare :func:`allocation` and :func:`sampling_variance`
against when it is installed, not as a dependency: the estimator here needs
the level-difference moments of coupled, level-specific draws (each level
draws its own field at its own grid, :mod:`surrogate.mc.levels`), while
PyApprox's estimators take a pilot covariance of all models on common inputs
(one finest-grid draw per coarse sample); the formulas used here are the few
lines above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: Two-sided 95% normal quantile.
Z95 = 1.959963984540054


@dataclass
class Moments:
    """Count, mean and centred second-moment matrix (sum of outer products) of vector samples z (k,)."""

    n: int
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def empty(cls, k: int) -> Moments:
        return cls(0, np.zeros(k), np.zeros((k, k)))

    @classmethod
    def of(cls, z: np.ndarray) -> Moments:
        """The moments of the rows of ``z`` (B, k)."""
        z = np.asarray(z, dtype=np.float64)
        z = z.reshape(len(z), -1)
        mean = z.mean(axis=0) if len(z) else np.zeros(z.shape[1])
        d = z - mean
        return cls(len(z), mean, d.T @ d)

    def merge(self, other: Moments) -> Moments:
        """The moments of both sample sets (pairwise update)."""
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        m2 = self.m2 + other.m2 + np.outer(delta, delta) * (self.n * other.n / n)
        return Moments(n, mean, m2)

    def cov(self) -> np.ndarray:
        """Sample covariance (ddof = 1); zeros with fewer than 2 samples."""
        return self.m2 / (self.n - 1) if self.n > 1 else np.zeros_like(self.m2)

    def to_dict(self) -> dict:
        return {"n": self.n, "mean": self.mean.tolist(), "m2": self.m2.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Moments:
        return cls(int(d["n"]), np.asarray(d["mean"], dtype=np.float64), np.asarray(d["m2"], dtype=np.float64))


@dataclass
class LevelStats:
    """The samples of one level: moments per randomization (one, ``0``, for plain MC) and their cost."""

    k: int
    reps: dict[int, Moments] = field(default_factory=dict)
    seconds: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)

    def add(self, rep: int, moments: Moments, seconds: float, parts: dict[str, float] | None = None) -> None:
        self.reps[rep] = self.reps.get(rep, Moments.empty(self.k)).merge(moments)
        self.seconds += float(seconds)
        for key, value in (parts or {}).items():
            self.parts[key] = self.parts.get(key, 0.0) + float(value)

    @property
    def pooled(self) -> Moments:
        out = Moments.empty(self.k)
        for m in self.reps.values():
            out = out.merge(m)
        return out

    @property
    def n(self) -> int:
        return sum(m.n for m in self.reps.values())

    def count(self, rep: int = 0) -> int:
        return self.reps[rep].n if rep in self.reps else 0

    @property
    def cost(self) -> float:
        """Measured seconds per sample (nan before any sample)."""
        return self.seconds / self.n if self.n else float("nan")

    def mean(self, a: np.ndarray) -> float:
        return float(np.dot(a, self.pooled.mean))

    def var(self, a: np.ndarray) -> float:
        """Per-sample variance of Y = a . z (pooled over the randomizations)."""
        return max(float(a @ self.pooled.cov() @ a), 0.0)

    def var_of_mean(self, a: np.ndarray, qmc: bool) -> float:
        """Variance of the level's mean: V / N (MC) or the spread of the R randomization means / R (QMC)."""
        if not qmc:
            return self.var(a) / self.n if self.n else float("inf")
        means = [float(np.dot(a, m.mean)) for m in self.reps.values() if m.n]
        if len(means) < 2:
            return float("inf")
        return float(np.var(means, ddof=1)) / len(means)


def allocation(variances, costs, eps2: float) -> np.ndarray:
    """Giles' optimal sample sizes N_l = ceil(sqrt(V_l / C_l) sum_k sqrt(V_k C_k) / eps2) (module docstring)."""
    v, c = np.asarray(variances, dtype=np.float64), np.asarray(costs, dtype=np.float64)
    total = float(np.sum(np.sqrt(v * c)))
    return np.ceil(np.sqrt(v / c) * total / eps2).astype(np.int64)


def optimal_cost(variances, costs, eps2: float) -> float:
    """The cost of :func:`allocation` before rounding: (sum_l sqrt(V_l C_l))^2 / eps2."""
    v, c = np.asarray(variances, dtype=np.float64), np.asarray(costs, dtype=np.float64)
    return float(np.sum(np.sqrt(v * c))) ** 2 / eps2


def sampling_variance(variances, counts) -> float:
    """sum_l V_l / N_l."""
    return float(np.sum(np.asarray(variances, dtype=np.float64) / np.asarray(counts, dtype=np.float64)))


def decay_rate(values, floor: float = 0.5) -> float:
    """-slope of log2|values| against the level (least squares over levels >= 1), at least ``floor``.

    Giles' estimate of alpha (means) or beta (variances); levels 1.. only, since level 0 is no difference.
    """
    y = np.log2(np.maximum(np.abs(np.asarray(values[1:], dtype=np.float64)), 1e-300))
    if len(y) < 2:
        return floor
    slope = np.polyfit(np.arange(1, len(y) + 1), y, 1)[0]
    return max(float(-slope), floor)


def bias_estimate(means, alpha: float) -> float:
    """max(|E[Y_L]|, |E[Y_{L-1}]| / 2^alpha) / (2^alpha - 1) from the level means (finest last)."""
    means = np.abs(np.asarray(means, dtype=np.float64))
    if len(means) < 2:
        return float("inf")
    last = means[-1]
    if len(means) >= 3:
        last = max(last, means[-2] / 2**alpha)
    return float(last / (2**alpha - 1))


def quantile95(replicates: int = 0) -> float:
    """The two-sided 95% quantile of the interval: normal (MC), Student's t with R - 1 degrees of freedom for
    R randomizations (QMC: the variance comes from R means; conservative for a sum over levels)."""
    if replicates < 2:
        return Z95
    from scipy.stats import t

    return float(t.ppf(0.975, replicates - 1))


def summary(mean: float, var: float, bias: float = 0.0, quantile: float = Z95) -> dict:
    """Estimate with its sampling SE, the 95% interval (sampling error only), bias and RMSE."""
    se = math.sqrt(max(var, 0.0))
    return {"mean": float(mean), "se": se, "ci95_low": float(mean - quantile * se),
            "ci95_high": float(mean + quantile * se), "bias": float(bias), "rmse": math.sqrt(se * se + bias * bias)}
