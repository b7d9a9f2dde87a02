"""Gaussian random fields on the cell centres of a structured n x n grid.

The Darcy family draws its log-permeability ``log_k = u`` from a stationary,
isotropic Gaussian random field with mean ``mean`` and covariance

    C(x, x') = variance * rho(|x - x'| / length)

where, with ``r = |x - x'|`` the Euclidean distance,

=====================  ====================================================
``exponential``        rho = exp(-r / l)                      (Matern 1/2)
``matern``, nu = 0.5   rho = exp(-r / l)
``matern``, nu = 1.5   rho = (1 + sqrt(3) r / l) exp(-sqrt(3) r / l)
``matern``, nu = 2.5   rho = (1 + sqrt(5) r / l + 5 r^2 / (3 l^2)) exp(-sqrt(5) r / l)
``squared_exponential``rho = exp(-r^2 / (2 l^2))              (Matern nu -> inf)
=====================  ====================================================

(the Matern functions use the usual sqrt(2 nu) r / l scaling, so ``length`` is
the same kind of correlation length for every kernel; only the half-integer
smoothness values have closed forms, so only those are accepted).

Sampling method: **exact** on the cell centres (no SPDE approximation). The
N x N covariance matrix of the N = n^2 centres (plus a small diagonal
"jitter" ``jitter * variance``, needed because the smooth kernels give
numerically semi-definite matrices) is factorised once, ``C = L L^T``
(Cholesky), and each sample is ``u = mean + L xi`` with ``xi ~ N(0, I_N)``
drawn from the sample's own generator. The jitter starts at 1e-10 (relative
to the variance) and is multiplied by 10 until the factorisation succeeds
(at most 1e-6); the value used is part of :meth:`GaussianRandomField.describe`.
Its effect on the statistics is a white-noise nugget of that relative size.

Reproducibility: the factorisation and the matrix-vector product use a
column-by-column Cholesky written with ``numpy.einsum`` (no BLAS), so the
factor, and hence sample i, are bit-for-bit the same whatever the number of
BLAS threads or MPI ranks (threaded LAPACK gives thread-count dependent
round-off). Cost for n = 32 (N = 1024): ~0.1 s once, ~0.3 ms per sample;
n = 64: ~10 s once, ~5 ms per sample (O(N^3) once, O(N^2) per sample: exact
sampling is meant for the paper's grids, n <= 64).

Sample i of a store is ``field.sample(numpy.random.default_rng(SeedSequence((seed, i))))``
(:func:`sample_rng`), so it depends on (seed, i) alone.

Layout: a field is an (n, n) array with ``u[row, col]`` the value in the cell
whose centre is ``(x[col], y[row]) = ((col + .5) / n, (row + .5) / n)``
(row = y index, col = x index; plot with ``origin="lower"``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pde_data.config import Choice, ConfigError, Float, Spec

#: Kernel names accepted by :class:`GaussianRandomField`.
KERNELS = ("exponential", "matern", "squared_exponential")
#: Matern smoothness values with a closed form (no Bessel function needed).
MATERN_NU = (0.5, 1.5, 2.5)
#: Largest |log k| for which exp(log k) and exp(-log k) are finite in float32 / float64.
LOG_FLOAT32_MAX = float(np.log(np.finfo(np.float32).max))  # 88.72
LOG_FLOAT64_MAX = float(np.log(np.finfo(np.float64).max))  # 709.78
#: A field whose mean +- OVERFLOW_SIGMAS standard deviations leaves
#: [-LOG_FLOAT32_MAX, LOG_FLOAT32_MAX] is refused (P(|z| > 8) ~ 1e-15 per cell).
OVERFLOW_SIGMAS = 8.0

#: The field's keys of a params.yaml section (``darcy:``, ``mc.field``), with their defaults;
#: :func:`check_field_params` checks them together.
FIELD_PARAMS: dict[str, Spec] = {
    "kernel": Choice("matern", KERNELS),
    "mean": Float(0.0),  # mean of log_k
    "variance": Float(1.0),  # variance of log_k (> 0)
    "length": Float(0.2),  # correlation length (> 0)
    "nu": Float(1.5),  # Matern smoothness, one of 0.5, 1.5, 2.5 (kernel matern only)
}

_JITTER_START = 1e-10
_JITTER_MAX = 1e-6
_ROW_BLOCK = 128


def check_field_params(
    kernel: Any, mean: Any, variance: Any, length: Any, nu: Any = None, prefix: str = ""
) -> dict[str, Any]:
    """Check the field parameters; returns them normalised (``nu`` is None unless kernel is matern).

    Raises :class:`~pde_data.config.ConfigError` naming ``prefix + key``, the
    value and what is allowed: unknown kernel, non-positive variance or length,
    a Matern smoothness without closed form, or a mean/variance for which
    k = exp(log_k) would overflow float32 within 8 standard deviations.
    """

    def number(key: str, value: Any) -> float:
        return Float(0.0).check(f"{prefix}{key}", value)

    if kernel not in KERNELS:
        raise ConfigError(f"{prefix}kernel: {kernel!r} is unknown; need one of {', '.join(KERNELS)}")
    mean = number("mean", mean)
    variance = number("variance", variance)
    length = number("length", length)
    if variance <= 0:
        raise ConfigError(f"{prefix}variance: {variance} is not allowed; need a number > 0")
    if length <= 0:
        raise ConfigError(f"{prefix}length: {length} is not allowed; need a number > 0")
    if kernel == "matern":
        nu = number("nu", nu)
        if nu not in MATERN_NU:
            raise ConfigError(
                f"{prefix}nu: {nu} is not allowed with kernel 'matern'; need one of "
                f"{', '.join(map(str, MATERN_NU))} (closed-form smoothness values)"
            )
    else:
        nu = None
    reach = abs(mean) + OVERFLOW_SIGMAS * math.sqrt(variance)
    if reach > LOG_FLOAT32_MAX:
        raise ConfigError(
            f"{prefix}mean/{prefix}variance: mean {mean} and variance {variance} make k = exp(log_k) overflow: "
            f"|mean| + {OVERFLOW_SIGMAS:g} sqrt(variance) = {reach:.4g} exceeds "
            f"{LOG_FLOAT32_MAX:.4g} = log(float32 max); "
            f"need |mean| + {OVERFLOW_SIGMAS:g} sqrt(variance) <= {LOG_FLOAT32_MAX:.4g}"
        )
    return {"kernel": kernel, "mean": mean, "variance": variance, "length": length, "nu": nu}


def correlation(r: np.ndarray, kernel: str, length: float, nu: float | None = None) -> np.ndarray:
    """The correlation rho(r) of ``kernel`` (see the module docstring); rho(0) = 1."""
    s = np.asarray(r, dtype=np.float64) / length
    if kernel == "exponential" or (kernel == "matern" and nu == 0.5):
        return np.exp(-s)
    if kernel == "matern" and nu == 1.5:
        t = math.sqrt(3.0) * s
        return (1.0 + t) * np.exp(-t)
    if kernel == "matern" and nu == 2.5:
        t = math.sqrt(5.0) * s
        return (1.0 + t + t * t / 3.0) * np.exp(-t)
    if kernel == "squared_exponential":
        return np.exp(-0.5 * s * s)
    raise ValueError(f"no correlation function for kernel {kernel!r} with nu={nu!r}")


def cell_centres(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centre coordinates ``(x, y)``, each (n, n): x varies along columns, y along rows."""
    c = (np.arange(n, dtype=np.float64) + 0.5) / n
    return np.meshgrid(c, c)


def sample_rng(seed: int, i: int) -> np.random.Generator:
    """The generator of sample ``i`` of a store with ``seed`` (the driver's convention)."""
    return np.random.default_rng(np.random.SeedSequence((int(seed), int(i))))


def _matvec(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``a @ x`` without BLAS, so that the round-off does not depend on the thread count."""
    return np.einsum("ik,k->i", a, x)


def _cholesky(c: np.ndarray) -> np.ndarray | None:
    """Lower Cholesky factor of ``c`` (column by column, no BLAS), or None if not positive definite."""
    size = c.shape[0]
    factor = np.zeros_like(c)
    for j in range(size):
        v = c[j:, j] - _matvec(factor[j:, :j], factor[j, :j])
        if not v[0] > 0.0:
            return None
        factor[j:, j] = v / math.sqrt(v[0])
    return factor


class GaussianRandomField:
    """Exact sampler of a Gaussian random field on the n x n cell centres of the unit square.

    ``field.sample(rng)`` returns an (n, n) float64 array (row = y, col = x) with
    mean ``mean`` and covariance ``variance * rho(r / length)`` between cells;
    ``field.covariance`` is the N x N target covariance (without jitter).
    """

    def __init__(
        self,
        n: int,
        kernel: str = "matern",
        mean: float = 0.0,
        variance: float = 1.0,
        length: float = 0.2,
        nu: float | None = 1.5,
    ):
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ConfigError(f"n: {n!r} is not allowed; need an integer >= 1")
        p = check_field_params(kernel, mean, variance, length, nu)
        self.n = int(n)
        self.kernel, self.mean, self.variance, self.length, self.nu = (
            p["kernel"], p["mean"], p["variance"], p["length"], p["nu"]
        )
        x, y = cell_centres(self.n)
        x, y = x.ravel(), y.ravel()
        r = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
        self.covariance = self.variance * correlation(r, self.kernel, self.length, self.nu)
        # Factorise once; grow the jitter until the Cholesky succeeds.
        jitter = _JITTER_START
        while True:
            factor = _cholesky(self.covariance + np.diag(np.full(len(r), jitter * self.variance)))
            if factor is not None:
                break
            if jitter >= _JITTER_MAX:
                raise RuntimeError(
                    f"covariance of kernel {self.kernel!r} (length {self.length}) is not positive definite "
                    f"even with a relative jitter of {jitter:g}"
                )
            jitter *= 10.0
        self.jitter = jitter
        self.factor = factor

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable description of the field and its sampler (for store attributes)."""
        return {
            "kernel": self.kernel,
            "mean": self.mean,
            "variance": self.variance,
            "length": self.length,
            "nu": self.nu,
            "points": f"{self.n} x {self.n} cell centres ((col + .5) / n, (row + .5) / n)",
            "method": "exact: Cholesky factor L of the cell-centre covariance (+ jitter * variance on the "
            "diagonal), computed once; sample = mean + L xi, xi ~ N(0, I) from the sample's generator",
            "jitter": self.jitter,
        }

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One field (n, n), float64, drawing n^2 standard normals from ``rng``."""
        xi = rng.standard_normal(self.n * self.n)
        # L xi by blocks of rows, each with only the columns left of its diagonal (L is lower
        # triangular): half the memory traffic of the full product, still without BLAS.
        u = np.empty_like(xi)
        for start in range(0, xi.size, _ROW_BLOCK):
            stop = min(start + _ROW_BLOCK, xi.size)
            u[start:stop] = _matvec(self.factor[start:stop, :stop], xi[:stop])
        return (self.mean + u).reshape(self.n, self.n)

    def sample_index(self, seed: int, i: int) -> np.ndarray:
        """Sample ``i`` of a store with ``seed``: ``sample(sample_rng(seed, i))``."""
        return self.sample(sample_rng(seed, i))
