"""Gaussian random fields on the cell centres of a structured n x n grid.

The Darcy family draws its log-permeability ``log_k = u`` from a stationary,
isotropic Gaussian random field with mean ``mean`` and covariance

    C(x, x') = variance * rho(|x - x'| / length)

where, with ``r = |x - x'|`` the Euclidean distance,

=======================  ============================================================
``exponential``          rho = exp(-r / l)                      (Matern 1/2)
``matern``, nu = 0.5     rho = exp(-r / l)
``matern``, nu = 1.5     rho = (1 + sqrt(3) r / l) exp(-sqrt(3) r / l)
``matern``, nu = 2.5     rho = (1 + sqrt(5) r / l + 5 r^2 / (3 l^2)) exp(-sqrt(5) r / l)
``squared_exponential``  rho = exp(-r^2 / (2 l^2))              (Matern nu -> inf)
=======================  ============================================================

(the Matern functions use the usual sqrt(2 nu) r / l scaling, so ``length`` is
the same kind of correlation length for every kernel; only the half-integer
smoothness values have closed forms, so only those are accepted).

Sampling methods (``method``, a key of :data:`FIELD_PARAMS`):

``fft`` (default)
    Circulant embedding (:mod:`pde_data.circulant`): the cell-centre grid is
    the corner of a periodic m x m torus, padded until the torus covariance is
    non-negative definite, so the samples have *exactly* the kernel's
    covariance on the cells (the smallest eigenvalue and, when the padding
    limit forces clipping, the covariance error are in :meth:`describe`).
    O(m^2 log m) per field with m ~ 2-4 n (default kernel: n = 128, m = 288,
    ~1.5 ms on one core, 2/3 of it drawing the m^2 normals); any n that fits
    the memory budget.

``cholesky`` (the reference, n <= ~64)
    The N x N covariance of the N = n^2 centres (plus a diagonal "jitter"
    ``jitter * variance``, needed because the smooth kernels give numerically
    semi-definite matrices) is factorised once, ``C = L L^T``, and each sample
    is ``u = mean + L xi``. The jitter starts at 1e-10 (relative to the
    variance) and is multiplied by 10 until the factorisation succeeds (at
    most 1e-6); its effect is a white-noise nugget of that relative size. The
    factorisation and the product use ``numpy.einsum`` (no BLAS), so the
    factor is the same whatever the number of BLAS threads. Cost: O(N^3) once
    (n = 64: 6-20 s), O(N^2) per sample (n = 64: ~12 ms), 3 N^2 doubles of memory.

Both methods draw one array of standard normals per sample (``noise_shape``)
from the sample's own generator and map it deterministically
(:meth:`GaussianRandomField.from_normals`), so sample i is bit-for-bit the
same whatever the number of MPI ranks or threads. The two methods give the
same distribution, not the same numbers.

A grid whose sampler would exceed ``memory_mb`` (default
:data:`MEMORY_BUDGET_MB`) is refused with a :class:`~params.ConfigError`.

**Cell averages** (``average=r``, for multilevel Monte Carlo over grids): the
field of the averages of the point field of the (r n) x (r n) grid over the
r x r blocks of fine cells that make up each of the n x n cells. It is again
stationary on the n x n cells, with the covariance (A the block average)

    c_r(d) = Cov((A u)_I, (A u)_J) = sum_{a, b = -(r-1)}^{r-1} w_a w_b C(h d + h_f (a, b)),
    w_a = (r - |a|) / r^2,   d = I - J,  h = 1 / n,  h_f = 1 / (r n)

(the number of pairs of fine cells of two blocks whose offset is (a, b) is
(r - |a|)(r - |b|)), so it is sampled exactly, either method, at the cost of an
n x n field: never through the finer grid. Averaging a field of ``average=r``
by 2 x 2 blocks (:func:`coarsen`) gives exactly the distribution of the field
with n / 2 and ``average=2 r``; that is what couples the levels of
:mod:`surrogate.mc.levels`.

**Randomized quasi-Monte Carlo normals** (:class:`SobolNormals`): the
``dims`` normals of largest weight (the circulant eigenvalues, or the rows of
the Cholesky factor in order) come from a scrambled Sobol' sequence
(:class:`scipy.stats.qmc.Sobol`, mapped through the normal quantile), the rest
from a pseudo-random generator; every scrambling is an independent
randomization, so the means of R of them give an unbiased estimate and its
error (Graham, Kuo, Nuyens, Scheichl, Sloan 2018 order the circulant modes the
same way).

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

from params import Choice, ConfigError, Float, Spec
from pde_data.circulant import CirculantEmbedding, embedding_bytes, fast_size
from pde_data.heap import keep_freed_memory

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

#: Sampling methods: circulant embedding (FFT) and the dense Cholesky reference.
METHODS = ("fft", "cholesky")
#: Default memory budget of one sampler (its set-up and one draw), in MB.
MEMORY_BUDGET_MB = 1024.0

#: The field's keys of a params.yaml section (``darcy:``, ``mc.field``), with their defaults;
#: :func:`check_field_params` checks them together.
FIELD_PARAMS: dict[str, Spec] = {
    "kernel": Choice("matern", KERNELS),
    "mean": Float(0.0),  # mean of log_k
    "variance": Float(1.0),  # variance of log_k (> 0)
    "length": Float(0.2),  # correlation length (> 0)
    "nu": Float(1.5),  # Matern smoothness, one of 0.5, 1.5, 2.5 (kernel matern only)
    "method": Choice("fft", METHODS),  # sampler: fft (circulant embedding) | cholesky (reference, n <= ~64)
}

_JITTER_START = 1e-10
_JITTER_MAX = 1e-6
_ROW_BLOCK = 128


def check_field_params(
    kernel: Any, mean: Any, variance: Any, length: Any, nu: Any = None, prefix: str = "", *, method: Any = "fft"
) -> dict[str, Any]:
    """Check the field parameters; returns them normalised (``nu`` is None unless kernel is matern).

    Raises :class:`~params.ConfigError` naming ``prefix + key``, the
    value and what is allowed: unknown kernel or method, non-positive variance
    or length, a Matern smoothness without closed form, or a mean/variance for
    which k = exp(log_k) would overflow float32 within 8 standard deviations.
    """

    def number(key: str, value: Any) -> float:
        return Float(0.0).check(f"{prefix}{key}", value)

    if kernel not in KERNELS:
        raise ConfigError(f"{prefix}kernel: {kernel!r} is unknown; need one of {', '.join(KERNELS)}")
    method = FIELD_PARAMS["method"].check(f"{prefix}method", method)
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
    return {"kernel": kernel, "mean": mean, "variance": variance, "length": length, "nu": nu, "method": method}


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


def averaged_correlation(kernel: str, length: float, nu: float | None, fine: int, r: int):
    """``rho_r(dy, dx)``: the correlation of r x r cell averages of a grid with ``fine`` cells per side.

    The lags ``dy``, ``dx`` are in domain units between the coarse cell centres
    (module docstring: c_r / variance); even in each lag; ``r = 1`` is the point kernel.
    """
    offsets = np.arange(-(r - 1), r) / fine
    weights = (r - np.abs(np.arange(-(r - 1), r))) / r**2

    def rho(dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
        total = 0.0
        for oy, wy in zip(offsets, weights):
            for ox, wx in zip(offsets, weights):
                total = total + wy * wx * correlation(np.hypot(dy + oy, dx + ox), kernel, length, nu)
        return total

    return rho


def coarsen(u: np.ndarray, factor: int = 2) -> np.ndarray:
    """Averages of ``u`` (..., n, n) over ``factor`` x ``factor`` blocks of cells: (..., n/factor, n/factor)."""
    n = u.shape[-1]
    if u.shape[-2] != n or n % factor:
        raise ValueError(f"coarsen: a field of {u.shape[-2]} x {n} cells cannot be averaged over {factor} x "
                         f"{factor} blocks; need a square field with n divisible by {factor}")
    k = n // factor
    return u.reshape(*u.shape[:-2], k, factor, k, factor).mean(axis=(-3, -1))


def cell_centres(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centre coordinates ``(x, y)``, each (n, n): x varies along columns, y along rows."""
    c = (np.arange(n, dtype=np.float64) + 0.5) / n
    return np.meshgrid(c, c)


def sample_rng(seed: int, i: int) -> np.random.Generator:
    """The generator of sample ``i`` of a store with ``seed`` (the driver's convention)."""
    return np.random.default_rng(np.random.SeedSequence((int(seed), int(i))))


def sampler_bytes(n: int, method: str) -> int:
    """Estimated peak memory of the smallest sampler of ``method`` on n x n cells."""
    if method == "cholesky":
        return 3 * 8 * (n * n) ** 2  # covariance, its lag-indexed construction, factor
    return embedding_bytes(fast_size(max(2 * (n - 1), 2)))


def check_budget(n: int, method: str, memory_mb: float = MEMORY_BUDGET_MB, prefix: str = "") -> None:
    """ConfigError naming ``prefix + "n"`` when the smallest sampler of ``method`` needs more than ``memory_mb``."""
    need = sampler_bytes(n, method)
    if need > memory_mb * 2**20:
        hint = "; use method fft" if method == "cholesky" else ""
        raise ConfigError(
            f"{prefix}n: {n} is too large for the {method} sampler: it needs about {need / 2**20:.0f} MB; "
            f"need at most {memory_mb:g} MB (the memory budget){hint}"
        )


def describe_method(method: str) -> str:
    """One line on how ``method`` samples (for store attributes)."""
    if method == "cholesky":
        return ("exact: Cholesky factor L of the cell-centre covariance (+ jitter * variance on the diagonal), "
                "computed once; sample = mean + L xi, xi ~ N(0, I) from the sample's generator")
    return ("exact: circulant embedding on a padded m x m torus (non-negative definite up to round-off), "
            "sample = mean + corner of irfft2(sqrt(eigenvalues / m^2) * w * complex normals); pde_data.circulant")


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


def _jittered_cholesky(covariance: np.ndarray, variance: float, what: str) -> tuple[np.ndarray, float]:
    """(factor, relative jitter): the Cholesky factor of ``covariance`` + the smallest jitter that factorises."""
    jitter = _JITTER_START
    diagonal = np.arange(len(covariance))
    while True:
        c = covariance.copy()
        c[diagonal, diagonal] += jitter * variance
        factor = _cholesky(c)
        if factor is not None:
            return factor, jitter
        if jitter >= _JITTER_MAX:
            raise RuntimeError(f"covariance of {what} is not positive definite even with a relative jitter of "
                               f"{jitter:g}")
        jitter *= 10.0


class GaussianRandomField:
    """Exact sampler of a Gaussian random field on the n x n cell centres of the unit square.

    ``field.sample(rng)`` returns an (n, n) float64 array (row = y, col = x) with
    mean ``mean`` and covariance ``variance * rho(r / length)`` between cells.
    ``method`` is ``"fft"`` (circulant embedding, ``field.embedding``) or
    ``"cholesky"`` (dense factor ``field.factor``); ``memory_mb`` bounds the
    sampler's memory, ``max_padding`` the FFT torus (:mod:`pde_data.circulant`),
    ``prefix`` (e.g. ``"darcy."``) the keys that errors name.

    ``average`` r > 1: the cell averages over r x r blocks of the point field of an
    (r n) x (r n) grid instead (module docstring), drawn at the cost of an n x n field.

    ``noise_shape``: the standard normals one sample draws; ``from_normals``
    maps them (or a batch (B, *noise_shape)) to fields; ``importance`` orders them for QMC. ``covariance`` (the
    N x N target) and, for either method, ``factor`` are computed on first use.
    """

    def __init__(
        self,
        n: int,
        kernel: str = "matern",
        mean: float = 0.0,
        variance: float = 1.0,
        length: float = 0.2,
        nu: float | None = 1.5,
        method: str = "fft",
        *,
        memory_mb: float = MEMORY_BUDGET_MB,
        max_padding: float | None = None,
        prefix: str = "",
        average: int = 1,
    ):
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ConfigError(f"{prefix}n: {n!r} is not allowed; need an integer >= 1")
        if isinstance(average, bool) or not isinstance(average, int | np.integer) or average < 1:
            raise ConfigError(f"{prefix}average: {average!r} is not allowed; need an integer >= 1")
        p = check_field_params(kernel, mean, variance, length, nu, prefix, method=method)
        self.n, self.average = int(n), int(average)
        self.kernel, self.mean, self.variance, self.length, self.nu, self.method = (
            p["kernel"], p["mean"], p["variance"], p["length"], p["nu"], p["method"]
        )
        self.memory_mb = float(memory_mb)
        self._prefix = prefix
        self._covariance: np.ndarray | None = None
        self._factor: np.ndarray | None = None
        self.jitter: float | None = None
        self.embedding: CirculantEmbedding | None = None
        check_budget(self.n, self.method, self.memory_mb, prefix)
        keep_freed_memory()  # each draw's normals and FFT buffers reuse freed memory (pde_data.heap)
        if self.method == "fft":
            extra = {} if max_padding is None else {"max_padding": max_padding}
            rho = self.correlation if self.average == 1 else self.lag_correlation
            self.embedding = CirculantEmbedding(self.n, rho, memory_mb=self.memory_mb, name=f"{prefix}length",
                                                lags=self.average > 1, **extra)
            self.noise_shape: tuple[int, ...] = self.embedding.noise_shape
        else:
            self.noise_shape = (self.n * self.n,)
            self.factor  # noqa: B018 - factorise now: the reference method is exact by construction

    def correlation(self, r: np.ndarray) -> np.ndarray:
        """rho(r) of this field's kernel and length (unit variance), between points."""
        return correlation(r, self.kernel, self.length, self.nu)

    def lag_correlation(self, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
        """The correlation of two cells of this field at lags (dy, dx) (cell averages when ``average`` > 1)."""
        if self.average == 1:
            return self.correlation(np.hypot(dy, dx))
        return averaged_correlation(self.kernel, self.length, self.nu, self.n * self.average, self.average)(dy, dx)

    @property
    def covariance(self) -> np.ndarray:
        """The N x N target covariance of the cells (row-major cell order), built on first use."""
        if self._covariance is None:
            n = self.n
            check_budget(n, "cholesky", self.memory_mb, self._prefix)  # the dense covariance is most of it
            lag = np.arange(n)
            table = self.variance * self.lag_correlation(lag[:, None] / n, lag[None, :] / n)  # [d_row, d_col]
            d = np.abs(lag[:, None] - lag[None, :])
            # C[(r1, c1), (r2, c2)] = table[|r1 - r2|, |c1 - c2|]
            self._covariance = table[d][:, :, d].transpose(0, 2, 1, 3).reshape(n * n, n * n)
        return self._covariance

    @property
    def factor(self) -> np.ndarray:
        """Lower Cholesky factor of ``covariance`` + ``jitter * variance`` I (the reference sampler's; O(N^3))."""
        if self._factor is None:
            what = f"kernel {self.kernel!r} (length {self.length})"
            self._factor, self.jitter = _jittered_cholesky(self.covariance, self.variance, what)
        return self._factor

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable description of the field and its sampler (for store attributes)."""
        out = {
            "kernel": self.kernel,
            "mean": self.mean,
            "variance": self.variance,
            "length": self.length,
            "nu": self.nu,
            "points": (f"{self.n} x {self.n} cell centres ((col + .5) / n, (row + .5) / n)" if self.average == 1 else
                       f"{self.n} x {self.n} cell averages of the point field on {self.n * self.average} x "
                       f"{self.n * self.average} cell centres"),
            "method": self.method,
            "sampling": describe_method(self.method),
        }
        if self.embedding is not None:
            return {**out, **self.embedding.describe()}
        return {**out, "jitter": self.jitter}

    def from_normals(self, xi: np.ndarray) -> np.ndarray:
        """Fields (n, n), or (B, n, n) for a batch, from standard normals of shape ``noise_shape``
        or (B, *noise_shape)."""
        xi = np.asarray(xi, dtype=np.float64)
        if self.embedding is not None:
            return self.mean + math.sqrt(self.variance) * self.embedding.transform(xi)
        if xi.shape[-1:] != self.noise_shape:
            raise ValueError(f"normals must have shape (..., {self.noise_shape[0]}), got {xi.shape}")
        flat = xi.reshape(-1, xi.shape[-1])
        u = np.empty_like(flat)
        for b in range(len(flat)):
            # L xi by blocks of rows, each with only the columns left of its diagonal (L is lower
            # triangular): half the memory traffic of the full product, still without BLAS.
            for start in range(0, flat.shape[1], _ROW_BLOCK):
                stop = min(start + _ROW_BLOCK, flat.shape[1])
                u[b, start:stop] = _matvec(self.factor[start:stop, :stop], flat[b, :stop])
        return (self.mean + u).reshape(*xi.shape[:-1], self.n, self.n)

    def importance(self) -> np.ndarray:
        """Flat indices of the ``noise_shape`` normals, the largest weight first (the QMC dimensions' order).

        fft: the scale of each complex mode (both real parts; zero modes last); cholesky: the column norms of
        the factor.
        """
        if self.embedding is not None:
            weight = np.repeat(self.embedding.scale.ravel(), 2)
        else:
            weight = np.sqrt((self.factor**2).sum(axis=0))
        return np.argsort(-weight, kind="stable")

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One field (n, n), float64, from one draw of ``noise_shape`` standard normals from ``rng``."""
        return self.from_normals(rng.standard_normal(self.noise_shape))

    def sample_index(self, seed: int, i: int) -> np.ndarray:
        """Sample ``i`` of a store with ``seed``: ``sample(sample_rng(seed, i))``."""
        return self.sample(sample_rng(seed, i))


#: Samples of a :class:`PseudoNormals` stream drawn from one generator (a block).
NORMALS_BLOCK = 64
#: Most Sobol' dimensions of scipy's direction numbers (Joe and Kuo 2008).
SOBOL_MAX_DIMS = 21201


class PseudoNormals:
    """Pseudo-random standard normals (B, *shape) of samples start..stop-1 of the stream ``entropy``.

    Sample i is row ``i % NORMALS_BLOCK`` of the draw of block ``i // NORMALS_BLOCK`` from
    ``default_rng(SeedSequence((*entropy, block)))``: it depends on (entropy, i) alone.
    """

    def __init__(self, shape: tuple[int, ...], entropy: tuple[int, ...]):
        self.shape, self.entropy = tuple(shape), tuple(int(e) for e in entropy)

    def normals(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, *self.shape))
        for block in range(start // NORMALS_BLOCK, -(-stop // NORMALS_BLOCK)):
            a = max(start, block * NORMALS_BLOCK)
            b = min(stop, (block + 1) * NORMALS_BLOCK)
            rng = np.random.default_rng(np.random.SeedSequence((*self.entropy, block)))
            draw = rng.standard_normal((b - block * NORMALS_BLOCK, *self.shape))  # rows 0..b-1 of the block
            out[a - start:b - start] = draw[a - block * NORMALS_BLOCK:]
        return out


class SobolNormals:
    """Randomized QMC normals (B, *field.noise_shape) for points start..stop-1 of one scrambled Sobol' sequence.

    The ``dims`` heaviest normals (:meth:`GaussianRandomField.importance`; at most :data:`SOBOL_MAX_DIMS`)
    are the normal quantiles of the points of ``scipy.stats.qmc.Sobol(dims, scramble=True)`` seeded from
    ``entropy``, the others pseudo-random (:class:`PseudoNormals` of ``(*entropy, 1)``). Point i is the
    same whatever the batches; consecutive batches continue the sequence without fast-forwarding.
    Independent ``entropy`` values are independent randomizations (module docstring).
    """

    def __init__(self, field: GaussianRandomField, entropy: tuple[int, ...], dims: int):
        from scipy.stats import qmc

        size = math.prod(field.noise_shape)
        self.shape, self.dims = field.noise_shape, int(min(dims, size, SOBOL_MAX_DIMS))
        if self.dims < 1:
            raise ConfigError(f"qmc dims: {dims!r} is not allowed; need an integer >= 1")
        order = field.importance()
        self.qmc_index, self.rest_index = order[:self.dims], order[self.dims:]
        seed = np.random.default_rng(np.random.SeedSequence((*entropy, 0)))
        self.engine = qmc.Sobol(self.dims, scramble=True, seed=seed)
        self.rest = PseudoNormals((size - self.dims,), (*entropy, 1))
        self.position = 0

    def normals(self, start: int, stop: int) -> np.ndarray:
        import warnings

        from scipy.special import ndtri

        if start != self.position:
            self.engine.reset()
            if start:
                self.engine.fast_forward(start)
        with warnings.catch_warnings():  # the balance warning for counts that are not powers of 2
            warnings.simplefilter("ignore", UserWarning)
            points = self.engine.random(stop - start)
        self.position = stop
        out = np.empty((stop - start, math.prod(self.shape)))
        out[:, self.qmc_index] = ndtri(points)
        if self.rest_index.size:
            out[:, self.rest_index] = self.rest.normals(start, stop)
        return out.reshape(stop - start, *self.shape)

