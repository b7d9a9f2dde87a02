"""Circulant embedding: exact FFT sampling of a stationary Gaussian field on the n x n cell centres.

The covariance of the n x n cell centres (spacing h = 1/n) is block Toeplitz
with Toeplitz blocks: C[(r1, c1), (r2, c2)] = variance * rho(h |(r1 - r2, c1 - c2)|).
It is the top-left corner of the block-circulant matrix of the m x m torus
(m >= 2 (n - 1)) whose first column is

    c[j1, j2] = variance * rho(h * hypot(d(j1), d(j2))),   d(j) = min(j, m - j),

and a block-circulant matrix is diagonalised by the 2-D DFT: its eigenvalues
are ``lam = fft2(c)`` (real, since c is even). When every lam >= 0, a field
with covariance *exactly* C is the corner of C_torus^(1/2) xi, xi ~ N(0, I).

**Padding.** The smallest torus, m0 = 2 (n - 1) rounded up to an even
7-smooth (FFT-friendly) size, is often not enough: smooth kernels and long
lengths give slightly negative eigenvalues. The side m is then grown
(geometrically by :data:`GROWTH`, then bisected back over the FFT-friendly
sizes) to the smallest size whose embedding is non-negative definite up to
round-off: the clipped eigenvalues change the covariance by at most
:data:`EXACT_TOL` relative to the variance. At each size the plain embedding
is tried first, then the kernel tapered to 0 beyond the grid's lags by the
smoothsteps of :data:`TAPER_ORDERS` (the grid never sees those lags, so its
covariance stays exact; the smoother C^3 step makes the default kernel exact
on a 288^2 torus at n = 128, against 320^2 with C^2 alone). The growth stops at
``max_padding * m0`` or at the memory budget, whichever is smaller. There,
negative eigenvalues are clipped to 0 with a warning if the covariance error
``covariance_error`` is at most :data:`CLIP_MAX_ERROR`; a larger error is a
:class:`~params.ConfigError`. Clipping adds the PSD circulant of the
clipped magnitudes, whose largest entry is its diagonal, so the max-norm
error relative to the variance is exactly sum(|lam < 0|) / sum(lam).

**Sampling, one real-to-complex FFT per field.** With H = m // 2 + 1 and one
draw ``g = rng.standard_normal((m, H, 2))`` (viewed as complex, g[..., 0]
real part, g[..., 1] imaginary part),

    u = mean + irfft2(scale * (g[..., 0] + 1j g[..., 1]), s=(m, m), norm="forward")[:n, :n],
    scale = sqrt(max(lam, 0) / m^2) * w,   w = 1 on the columns k2 = 0 and k2 = m/2, 1/sqrt(2) elsewhere,

where lam is the half spectrum ``rfft2(c).real`` (m, H). This is the real
part of the classic complex circulant-embedding sample, written with the
half spectrum: each interior column stands for itself and its mirror image
(hence 1/sqrt(2)); the self-conjugate columns k2 = 0 and m/2 keep their
complex noise because c2r keeps only the real part there. The code does the
inverse transform pruned: ``ifft`` along rows, keep the first n rows, then
``irfft`` along columns (the same numbers as irfft2, about 30 % less work).
A torch port needs only :attr:`CirculantEmbedding.scale` (or
:attr:`CirculantEmbedding.sqrt_eigenvalues` and the weights),
:attr:`CirculantEmbedding.shape` and ``torch.fft.irfft2(..., norm="forward")``.

Cost: O(m^2 log m) per field, m^2 normals; the set-up is a handful of
``rfft2`` of the m x m torus. numpy's pocketfft is single-threaded and
deterministic, so a field is a function of its normals alone (bit for bit,
also batched: :meth:`CirculantEmbedding.transform` on (B, m, H, 2) equals B
single calls).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from params import ConfigError

#: Relative covariance error (max norm, relative to the variance) up to which clipped
#: negative eigenvalues count as round-off: the embedding is then called exact.
EXACT_TOL = 1e-12
#: At the padding limit, clip with a warning up to this relative covariance error; above: ConfigError.
CLIP_MAX_ERROR = 1e-3
#: The torus side may grow to ``max_padding`` times the smallest one, 2 (n - 1) (64x the cost per field).
MAX_PADDING = 8.0
#: Geometric growth of the torus side while searching for a non-negative definite embedding.
GROWTH = 1.15
#: Smoothness orders k of the tapers tried, in order, when the plain embedding is not exact (C^k smoothsteps).
TAPER_ORDERS = (2, 3)
#: Bytes per torus cell for the set-up (torus distances, correlation, spectrum) and one draw.
BYTES_PER_CELL = 64


class EmbeddingWarning(UserWarning):
    """The circulant embedding was clipped: the sampled covariance differs (slightly) from the kernel's."""


def fast_size(m: int) -> int:
    """The smallest even integer >= ``m`` with no prime factor above 7 (fast for pocketfft)."""
    m = max(2, int(m) + int(m) % 2)
    while True:
        rest = m
        for p in (2, 3, 5, 7):
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return m
        m += 2


def smoothstep(t: np.ndarray, order: int) -> np.ndarray:
    """The C^order smoothstep from 0 (t <= 0) to 1 (t >= 1): t^(k+1) sum_j C(k+j, j) C(2k+1, k-j) (-t)^j."""
    t = np.clip(t, 0.0, 1.0)
    k = order
    poly = sum(math.comb(k + j, j) * math.comb(2 * k + 1, k - j) * (-t) ** j for j in range(k + 1))
    return t ** (k + 1) * poly


def torus_first_column(n: int, m: int, rho, taper: int = 0, *, lags: bool = False) -> np.ndarray:
    """``rho(h |d|)`` on the m x m torus of spacing h = 1/n: the first column of the embedding (unit variance).

    ``lags``: ``rho`` takes the two lag components ``(h d1, h d2)`` (arrays (m, 1) and (1, m)) instead
    of the distance; it must be even in each of them (e.g. the cell-averaged kernels of
    :mod:`surrogate.mc.levelfields`).
    ``taper`` k > 0: multiply by W(d1) W(d2), W = 1 on the grid's lags d <= n - 1 and the
    C^k smoothstep from 1 down to 0 between n - 1 and m / 2 (values the grid never sees).
    """
    j = np.arange(m)
    d = np.minimum(j, m - j)
    c = rho(d[:, None] / n, d[None, :] / n) if lags else rho(np.hypot(d[:, None], d[None, :]) / n)
    if taper:
        w = 1.0 - smoothstep((d - (n - 1)) / (m / 2 - (n - 1)), taper)
        c *= w[:, None] * w[None, :]
    return c


def half_spectrum_weights(m: int) -> np.ndarray:
    """Multiplicity (1 or 2) of each column k2 = 0..m/2 of a half spectrum of an even-sized real transform."""
    w = np.full(m // 2 + 1, 2.0)
    w[0] = w[-1] = 1.0
    return w


def embedding_bytes(m: int) -> int:
    """Estimated peak memory of an m x m embedding (set-up, or one draw and transform)."""
    return BYTES_PER_CELL * m * m


class CirculantEmbedding:
    """The non-negative definite circulant embedding of a unit-variance stationary correlation on n x n cells.

    ``rho``: the correlation function of the distance (rho(0) = 1); with ``lags=True``, of the two lag
    components (see :func:`torus_first_column`).
    ``memory_mb``: the memory budget of one embedding; ``max_padding``: the
    largest torus side as a multiple of the smallest. ``name`` (e.g.
    ``"darcy.length"``) is the key a :class:`ConfigError` names.

    Attributes: ``shape`` (m, m) of the torus; ``noise_shape`` (m, m//2+1, 2)
    of one draw of standard normals; ``eigenvalues`` (the half spectrum,
    (m, m//2+1), unclipped, for unit variance); ``sqrt_eigenvalues``
    (sqrt of the clipped ones); ``scale`` (the multiplier of the complex
    noise, module docstring); ``min_eigenvalue`` and its ratio to the
    largest, ``min_eigenvalue_relative``; ``covariance_error`` (relative
    max-norm error of the sampled covariance, 0 when nothing was clipped);
    ``clipped`` (True when the padding limit was reached and clipping was
    beyond round-off); ``taper`` (the order of the taper used, 0 for none).
    """

    def __init__(self, n: int, rho, *, memory_mb: float, max_padding: float = MAX_PADDING, name: str = "length",
                 lags: bool = False):
        self.n = int(n)
        self.rho, self.lags = rho, bool(lags)
        m0 = fast_size(max(2 * (self.n - 1), 2))
        budget = memory_mb * 2**20  # the caller checked that the smallest torus fits (fields.check_budget)
        m_limit = max(m0, _fast_size_at_most(int(max_padding * m0)))
        by_memory = max(m0, _fast_size_at_most(int(math.sqrt(budget / BYTES_PER_CELL))))
        self.m0, self.m_limit = m0, min(m_limit, by_memory)
        if by_memory < m_limit:
            self._limit = f"the memory budget ({memory_mb:g} MB: torus side <= {by_memory})"
        else:
            self._limit = f"the padding limit ({max_padding:g} x the smallest torus side {m0})"
        _, m, self.taper, lam = self._search(m0, self.m_limit)
        self._settle(m, lam, name)

    # -- search for the smallest exact embedding ----------------------------------

    def spectrum(self, m: int, taper: int = 0) -> np.ndarray:
        """Half spectrum (m, m//2+1) of the embedding on the m x m torus (unit variance; ``taper``: its order)."""
        return np.fft.rfft2(torus_first_column(self.n, m, self.rho, taper, lags=self.lags)).real

    def _try(self, m: int) -> tuple[bool, int, int, np.ndarray]:
        """(exact?, m, taper order (0: none), spectrum): the plain embedding, else the first exact taper.

        When none is exact, the one with the smallest clipping error.
        """
        best = (False, m, 0, self.spectrum(m))
        orders = TAPER_ORDERS if m // 2 - (self.n - 1) >= 2 else ()  # a taper needs room beyond the lags
        for order in (0, *orders):
            lam = best[3] if order == 0 else self.spectrum(m, order)
            if self.clip_error(lam) <= EXACT_TOL:
                return True, m, order, lam
            if self.clip_error(lam) < self.clip_error(best[3]):
                best = (False, m, order, lam)
        return best

    @staticmethod
    def clip_error(lam: np.ndarray) -> float:
        """Relative max-norm covariance error of clipping the negative eigenvalues of ``lam`` to 0."""
        w = half_spectrum_weights(2 * (lam.shape[1] - 1))
        negative = (np.minimum(lam, 0.0) * w).sum()
        return max(0.0, float(-negative / (lam * w).sum()))

    def _search(self, m0: int, m_limit: int) -> tuple[bool, int, int, np.ndarray]:
        """The smallest FFT-friendly exact embedding found (:meth:`_try`'s tuple), else the one at the limit."""
        bad, m = None, m0
        while True:  # grow geometrically until exact or at the limit
            good = self._try(m)
            if good[0]:
                break
            if m >= m_limit:
                return good
            bad, m = m, min(m_limit, fast_size(int(m * GROWTH) + 1))
        while bad is not None:  # bisect back over the FFT-friendly sizes between the last failure and the success
            mid = fast_size((bad + good[1]) // 2)
            if mid >= good[1]:
                break
            found = self._try(mid)
            if found[0]:
                good = found
            else:
                bad = mid
        return good

    def _settle(self, m: int, lam: np.ndarray, name: str) -> None:
        self.shape = (m, m)
        self.noise_shape = (m, m // 2 + 1, 2)
        self.eigenvalues = lam
        self.min_eigenvalue = float(lam.min())
        self.min_eigenvalue_relative = self.min_eigenvalue / float(lam.max())
        self.covariance_error = self.clip_error(lam)
        self.clipped = self.covariance_error > EXACT_TOL
        if self.clipped:
            message = (
                f"{name}: the circulant embedding of this kernel and length on {self.n} x {self.n} cells is not "
                f"non-negative definite on tori up to {m} x {m} cells ({m / self.n:g} x the domain), "
                f"{self._limit}; smallest eigenvalue {self.min_eigenvalue_relative:.2e} of the largest; clipping it "
                f"changes the field covariance by {self.covariance_error:.2e} relative to the variance"
            )
            if self.covariance_error > CLIP_MAX_ERROR:
                raise ConfigError(
                    f"{message}; need an error <= {CLIP_MAX_ERROR:g}: a shorter length, a rougher kernel, "
                    f"or method cholesky (exact, small n only)"
                )
            warnings.warn(message + " (clipped)", EmbeddingWarning, stacklevel=4)
        self.sqrt_eigenvalues = np.sqrt(np.maximum(lam, 0.0))
        weight = np.where(half_spectrum_weights(m) == 1.0, 1.0, math.sqrt(0.5))
        self.scale = self.sqrt_eigenvalues * (weight / m)

    # -- sampling -------------------------------------------------------------------

    def transform(self, xi: np.ndarray) -> np.ndarray:
        """Unit-variance, zero-mean fields (..., n, n) from standard normals of shape (..., m, m//2+1, 2)."""
        xi = np.ascontiguousarray(xi, dtype=np.float64)
        if xi.shape[-3:] != self.noise_shape:
            raise ValueError(f"normals must have shape (..., {', '.join(map(str, self.noise_shape))}), got {xi.shape}")
        z = xi.view(np.complex128)[..., 0] * self.scale
        rows = np.fft.ifft(z, axis=-2, norm="forward")[..., : self.n, :]
        return np.fft.irfft(rows, n=self.shape[1], axis=-1, norm="forward")[..., : self.n]

    def covariance_lags(self) -> np.ndarray:
        """Correlation (n, n) that the sampler produces between cells (0, 0) and (row, col): the embedding's corner."""
        lam = np.maximum(self.eigenvalues, 0.0)
        return np.fft.irfft2(lam, s=self.shape)[: self.n, : self.n]

    def describe(self) -> dict[str, Any]:
        """Torus, padding, taper, and the smallest eigenvalue of the unit-variance embedding (x variance for C)."""
        m = self.shape[0]
        return {
            "embedding": [m, m],
            "torus": f"{m / self.n:g} x {m / self.n:g} (domain lengths)",
            "padding": f"{m / self.m0:.4g} x the smallest torus {self.m0} x {self.m0} (limit {self.m_limit})",
            "taper": f"C^{self.taper} smoothstep beyond the grid's lags" if self.taper else "none",
            "min_eigenvalue": self.min_eigenvalue,
            "min_eigenvalue_relative": self.min_eigenvalue_relative,
            "covariance_error": self.covariance_error,
            "clipped": self.clipped,
        }


def _fast_size_at_most(m: int) -> int:
    """The largest FFT-friendly even size <= m (at least 2)."""
    m -= m % 2
    while m > 2 and fast_size(m) != m:
        m -= 2
    return max(m, 2)
