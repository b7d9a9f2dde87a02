"""Tests of the Gaussian random field samplers (pde_data.fields, pde_data.circulant); no FEM stack needed."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from params import ConfigError
from pde_data import circulant
from pde_data.circulant import EXACT_TOL, EmbeddingWarning, fast_size, smoothstep
from pde_data.fields import (
    FIELD_PARAMS,
    LOG_FLOAT32_MAX,
    GaussianRandomField,
    _cholesky,
    cell_centres,
    check_field_params,
    correlation,
    sample_rng,
)

KERNELS = [("exponential", None), ("matern", 1.5), ("matern", 2.5), ("squared_exponential", None)]
METHODS = ["fft", "cholesky"]


def test_correlation_formulas():
    r = np.array([0.0, 0.1, 0.3])
    length = 0.1
    for kernel, nu in [*KERNELS, ("matern", 0.5)]:
        assert correlation(r, kernel, length, nu)[0] == 1.0
    np.testing.assert_allclose(correlation(r, "matern", length, 0.5), correlation(r, "exponential", length))
    np.testing.assert_allclose(correlation(r, "exponential", length)[1], math.exp(-1.0))
    np.testing.assert_allclose(correlation(r, "squared_exponential", length)[1], math.exp(-0.5))
    np.testing.assert_allclose(correlation(r, "matern", length, 1.5)[1], (1 + math.sqrt(3)) * math.exp(-math.sqrt(3)))
    t = math.sqrt(5)
    np.testing.assert_allclose(correlation(r, "matern", length, 2.5)[1], (1 + t + t * t / 3) * math.exp(-t))


def test_cell_centres_layout():
    x, y = cell_centres(4)
    assert x[0, 0] == y[0, 0] == 0.125
    assert x[0, 3] == 0.875 and y[0, 3] == 0.125  # columns run along x
    assert y[3, 0] == 0.875 and x[3, 0] == 0.125  # rows run along y


def test_factor_reproduces_covariance():
    field = GaussianRandomField(6, "matern", 0.0, 2.0, 0.3, 1.5, method="cholesky")
    c = field.covariance
    np.testing.assert_allclose(np.diag(c), 2.0)
    np.testing.assert_allclose(c, c.T)
    np.testing.assert_allclose(field.factor @ field.factor.T, c, atol=10 * field.jitter * 2.0)
    np.testing.assert_allclose(field.factor, np.linalg.cholesky(c + field.jitter * 2.0 * np.eye(36)), atol=1e-12)
    assert _cholesky(-np.eye(3)) is None


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("kernel", "nu"), KERNELS)
def test_statistics_match_kernel(kernel, nu, method):
    """Empirical mean and covariance of M = 4000 samples against the kernel.

    Stated tolerance: each entry of the sample mean and of the sample
    covariance (about the known mean) lies within 5 standard errors of its
    target, the standard errors being exact for Gaussian data:
    se(mean_i) = sqrt(C_ii / M), se(C_ij) = sqrt((C_ij^2 + C_ii C_jj) / M).
    """
    n, m, mean, variance, length = 6, 4000, 0.7, 1.3, 0.25
    field = GaussianRandomField(n, kernel, mean, variance, length, nu, method)
    u = np.stack([field.sample_index(11, i).ravel() for i in range(m)])
    c = field.covariance
    d = np.diag(c)
    z_mean = (u.mean(axis=0) - mean) / np.sqrt(d / m)
    dev = u - mean
    emp = dev.T @ dev / m
    z_cov = (emp - c) / np.sqrt((c**2 + np.outer(d, d)) / m)
    assert np.abs(z_mean).max() < 5.0
    assert np.abs(z_cov).max() < 5.0
    # and the pooled nearest-neighbour correlation is right to 2 %
    x, _y = cell_centres(n)
    h = x[0, 1] - x[0, 0]
    grid = dev.reshape(m, n, n)
    rho = (grid[:, :, 1:] * grid[:, :, :-1]).mean() / variance
    assert abs(rho - correlation(np.array(h), kernel, length, nu)) < 0.02


@pytest.mark.parametrize("method", METHODS)
def test_reproducible_from_seed_and_index(method):
    a = GaussianRandomField(5, "exponential", 0.0, 1.0, 0.2, method=method)
    b = GaussianRandomField(5, "exponential", 0.0, 1.0, 0.2, method=method)
    later = [b.sample_index(3, i) for i in (7, 2, 5)]  # other order, other instance
    np.testing.assert_array_equal(a.sample_index(3, 5), later[2])
    np.testing.assert_array_equal(a.sample_index(3, 7), later[0])
    np.testing.assert_array_equal(a.sample(sample_rng(3, 2)), later[1])
    assert not np.array_equal(a.sample_index(3, 5), a.sample_index(3, 6))
    assert not np.array_equal(a.sample_index(3, 5), a.sample_index(4, 5))
    assert a.sample_index(3, 5).shape == (5, 5)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"variance": 0.0}, "field.variance"),
        ({"variance": -1.0}, "field.variance"),
        ({"length": 0.0}, "field.length"),
        ({"length": float("nan")}, "field.length"),
        ({"kernel": "gauss"}, "field.kernel"),
        ({"kernel": "matern", "nu": 2.0}, "field.nu"),
        ({"method": "spde"}, "field.method"),
        ({"mean": 100.0}, "field.mean"),
        ({"variance": 200.0}, "field.variance"),
    ],
)
def test_bad_parameters_name_key_and_value(kwargs, key):
    args = {"kernel": "exponential", "mean": 0.0, "variance": 1.0, "length": 0.1, "nu": None, **kwargs}
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as err:
        check_field_params(**args, prefix="field.")
    bad = next(iter(kwargs.values())) if len(kwargs) == 1 else kwargs["nu"]
    assert repr(bad) in str(err.value) or str(bad) in str(err.value)
    assert "need" in str(err.value)


def test_overflow_limit_is_float32_exp():
    with np.errstate(over="ignore"):
        assert math.isinf(np.exp(np.float32(LOG_FLOAT32_MAX * 1.001)))
    check_field_params("exponential", 80.0, 1.0, 0.1, prefix="")  # 80 + 8 = 88 < 88.72
    with pytest.raises(ConfigError, match="overflow"):
        check_field_params("exponential", -81.0, 1.0, 0.1, prefix="")
    assert check_field_params("exponential", 0.0, 1.0, 0.1, nu=2.5)["nu"] is None  # nu only for matern


def test_method_is_a_field_param_with_a_default():
    assert FIELD_PARAMS["method"].default == "fft"
    assert check_field_params("exponential", 0.0, 1.0, 0.1)["method"] == "fft"
    defaults = {key: spec.default for key, spec in FIELD_PARAMS.items()}
    assert check_field_params(**{**defaults, "method": "cholesky"}, prefix="mc.field.")["method"] == "cholesky"


def test_sample_does_not_depend_on_threads():
    """Both samplers give bit-for-bit the same samples with 1 or 4 BLAS / OpenMP threads."""
    import os
    import subprocess
    import sys

    code = (
        "import hashlib; from pde_data.fields import GaussianRandomField as G; "
        "f = G(12, 'squared_exponential', 0.0, 1.0, 0.3); g = G(40, length=0.3); "
        "print(hashlib.sha256(f.factor.tobytes() + f.sample_index(0, 3).tobytes() "
        "+ g.sample_index(0, 3).tobytes()).hexdigest())"
    )
    digests = set()
    for threads in ("1", "4"):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
        run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        digests.add(run.stdout.strip())
    assert len(digests) == 1


# --------------------------------------------------------------------------
# circulant embedding (method fft)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("n", [6, 12])
@pytest.mark.parametrize(("kernel", "nu"), KERNELS)
def test_fft_sampler_has_exactly_the_kernel_covariance(kernel, nu, n):
    """The linear map normals -> field, applied to the unit vectors, gives A with A^T A = C (to round-off).

    n = 12 includes tapered embeddings (both Matern kernels) and a padded one (squared exponential).
    """
    field = GaussianRandomField(n, kernel, 0.3, 2.0, 0.3, nu)
    size = math.prod(field.noise_shape)
    a = np.concatenate([
        field.from_normals(np.eye(size)[start : start + 512].reshape(-1, *field.noise_shape)) - 0.3
        for start in range(0, size, 512)
    ]).reshape(size, n * n)
    np.testing.assert_allclose(a.T @ a, field.covariance, rtol=0, atol=1e-12)
    assert (field.embedding.taper > 0) == (n == 12 and kernel == "matern")
    info = field.describe()
    assert info["method"] == "fft" and not info["clipped"] and info["covariance_error"] <= EXACT_TOL
    assert info["min_eigenvalue_relative"] >= -1e-12
    assert info["embedding"][0] >= 2 * (n - 1)


def test_smoothsteps_are_the_known_polynomials():
    t = np.linspace(-0.5, 1.5, 41)
    inside = np.clip(t, 0.0, 1.0)
    np.testing.assert_allclose(smoothstep(t, 2), inside**3 * (10 - 15 * inside + 6 * inside**2), atol=1e-15)
    np.testing.assert_allclose(smoothstep(t, 3), inside**4 * (35 - 84 * inside + 70 * inside**2 - 20 * inside**3),
                               atol=1e-14)
    for order in (1, 2, 3, 4):  # a step from 0 to 1, symmetric about t = 1/2
        np.testing.assert_allclose(smoothstep(t, order) + smoothstep(1 - t, order), 1.0, atol=1e-14)


def test_the_smoother_taper_gives_a_smaller_exact_torus(monkeypatch):
    """Matern 3/2 with length 0.5 on 10 x 10 cells: the C^3 taper is exact on a torus where C^2 is not."""
    field = GaussianRandomField(10, "matern", 0.0, 1.0, 0.5, 1.5)
    assert field.embedding.taper == 3 and field.describe()["taper"].startswith("C^3")
    size = math.prod(field.noise_shape)
    a = field.from_normals(np.eye(size).reshape(-1, *field.noise_shape)).reshape(size, 100)
    np.testing.assert_allclose(a.T @ a, field.covariance, rtol=0, atol=1e-12)
    monkeypatch.setattr(circulant, "TAPER_ORDERS", (2,))
    assert GaussianRandomField(10, "matern", 0.0, 1.0, 0.5, 1.5).embedding.shape[0] > field.embedding.shape[0]


def test_embedding_grows_until_non_negative_definite():
    """Smooth kernels and long lengths need a larger torus than 2 (n - 1); the sampler finds one."""
    short = GaussianRandomField(32, "matern", 0.0, 1.0, 0.05, 1.5).embedding
    long = GaussianRandomField(32, "matern", 0.0, 1.0, 0.5, 1.5).embedding
    assert short.shape == (64, 64) and long.shape[0] > 1.5 * short.shape[0]
    assert long.min_eigenvalue >= 0.0 or long.covariance_error <= EXACT_TOL
    assert GaussianRandomField(32, "matern", 0.0, 1.0, 0.5, 1.5).describe()["embedding"] == list(long.shape)
    # the corner of the embedding is the kernel on the grid's lags
    lag = np.arange(32) / 32
    np.testing.assert_allclose(long.covariance_lags(), correlation(np.hypot(lag[:, None], lag), "matern", 0.5, 1.5),
                               atol=1e-12)


def test_clipping_at_the_padding_limit_warns_and_reports_the_error():
    with pytest.warns(EmbeddingWarning, match=r"darcy\.length: .*changes the field covariance by"):
        field = GaussianRandomField(32, "matern", 0.0, 1.0, 0.2, 1.5, max_padding=1.0, prefix="darcy.")
    emb = field.embedding
    assert emb.clipped and emb.shape == (64, 64) and emb.min_eigenvalue < 0
    target = correlation(np.hypot(*np.meshgrid(np.arange(32) / 32, np.arange(32) / 32)), "matern", 0.2, 1.5)
    error = np.abs(emb.covariance_lags() - target).max()  # the max-norm error is on the diagonal
    assert 1e-6 < emb.covariance_error < 1e-3 and error == pytest.approx(emb.covariance_error, rel=1e-6)
    assert field.describe()["covariance_error"] == emb.covariance_error


def test_bad_grids_and_lengths_are_config_errors():
    with pytest.raises(ConfigError, match=r"darcy\.length: .*not non-negative definite.*padding limit.*need"):
        GaussianRandomField(8, "matern", 0.0, 1.0, 3.0, 1.5, prefix="darcy.")
    with pytest.raises(ConfigError, match=r"darcy\.n: 256 is too large for the cholesky sampler.*memory budget"):
        GaussianRandomField(256, method="cholesky", prefix="darcy.")
    with pytest.raises(ConfigError, match=r"n: 64 is too large for the fft sampler"):
        GaussianRandomField(64, memory_mb=0.5)
    with pytest.raises(ConfigError, match="too large"):  # the dense covariance of an FFT field, asked for
        GaussianRandomField(128).covariance  # noqa: B018
    with warnings.catch_warnings():  # a tight budget stops the padding early: clip, with the budget named
        warnings.simplefilter("error")
        with pytest.raises(EmbeddingWarning, match="memory budget"):
            GaussianRandomField(64, "squared_exponential", length=0.2, memory_mb=1.0)


def test_batches_and_single_draws_agree_bit_for_bit():
    field = GaussianRandomField(20)
    rngs = [sample_rng(5, i) for i in range(4)]
    normals = np.stack([rng.standard_normal(field.noise_shape) for rng in rngs])
    batch = field.from_normals(normals)
    for i in range(4):
        np.testing.assert_array_equal(batch[i], field.sample_index(5, i))
    with pytest.raises(ValueError, match="normals must have shape"):
        field.from_normals(np.zeros(7))


def test_both_methods_have_the_same_covariance_at_several_lags():
    """Empirical covariance of M fields per method at lags (d_row, d_col), pooled over the grid.

    Stated tolerance: per lag, the two estimates differ by less than 4.5 standard
    errors of their difference, and each lies within 4.5 of its own standard
    errors of the kernel (the standard errors are the spread over the M
    independent fields of the per-field pooled product, divided by sqrt(M)).
    """
    n, m, mean, variance = 16, 3000, 0.4, 1.7
    lags = [(0, 0), (0, 1), (1, 0), (1, 1), (0, 3), (2, 5), (7, 0), (8, 8), (15, 15)]
    stats = {}
    for method in METHODS:
        field = GaussianRandomField(n, "matern", mean, variance, 0.2, 1.5, method)
        u = field.from_normals(np.random.default_rng(3).standard_normal((m, *field.noise_shape))) - mean
        per_field = np.stack([(u[:, : n - a, : n - b] * u[:, a:, b:]).mean(axis=(1, 2)) for a, b in lags], axis=1)
        stats[method] = (per_field.mean(axis=0), per_field.std(axis=0, ddof=1) / math.sqrt(m))
    target = variance * correlation(np.hypot(*np.array(lags).T) / n, "matern", 0.2, 1.5)
    (fft, se_fft), (chol, se_chol) = stats["fft"], stats["cholesky"]
    assert np.all(np.abs(fft - chol) < 4.5 * np.hypot(se_fft, se_chol)), (fft, chol)
    assert np.all(np.abs(fft - target) < 4.5 * se_fft) and np.all(np.abs(chol - target) < 4.5 * se_chol)


def test_fast_sizes():
    assert [fast_size(m) for m in (1, 2, 62, 126, 254, 510, 1022)] == [2, 2, 64, 126, 256, 512, 1024]
    assert fast_size(22) == 24 and fast_size(26) == 28  # 22 = 2 * 11, 26 = 2 * 13: not 7-smooth
