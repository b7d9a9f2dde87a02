"""Tests of the Gaussian random field sampler (pde_data.fields); no FEM stack needed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pde_data.config import ConfigError
from pde_data.fields import (
    LOG_FLOAT32_MAX,
    GaussianRandomField,
    _cholesky,
    cell_centres,
    check_field_params,
    correlation,
    sample_rng,
)

KERNELS = [("exponential", None), ("matern", 1.5), ("matern", 2.5), ("squared_exponential", None)]


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
    field = GaussianRandomField(6, "matern", 0.0, 2.0, 0.3, 1.5)
    c = field.covariance
    np.testing.assert_allclose(np.diag(c), 2.0)
    np.testing.assert_allclose(c, c.T)
    np.testing.assert_allclose(field.factor @ field.factor.T, c, atol=10 * field.jitter * 2.0)
    np.testing.assert_allclose(field.factor, np.linalg.cholesky(c + field.jitter * 2.0 * np.eye(36)), atol=1e-12)
    assert _cholesky(-np.eye(3)) is None


@pytest.mark.parametrize(("kernel", "nu"), KERNELS)
def test_statistics_match_kernel(kernel, nu):
    """Empirical mean and covariance of M = 4000 samples against the kernel.

    Stated tolerance: each entry of the sample mean and of the sample
    covariance (about the known mean) lies within 5 standard errors of its
    target, the standard errors being exact for Gaussian data:
    se(mean_i) = sqrt(C_ii / M), se(C_ij) = sqrt((C_ij^2 + C_ii C_jj) / M).
    """
    n, m, mean, variance, length = 6, 4000, 0.7, 1.3, 0.25
    field = GaussianRandomField(n, kernel, mean, variance, length, nu)
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
    x, y = cell_centres(n)
    h = x[0, 1] - x[0, 0]
    grid = dev.reshape(m, n, n)
    rho = (grid[:, :, 1:] * grid[:, :, :-1]).mean() / variance
    assert abs(rho - correlation(np.array(h), kernel, length, nu)) < 0.02


def test_reproducible_from_seed_and_index():
    a = GaussianRandomField(5, "exponential", 0.0, 1.0, 0.2)
    b = GaussianRandomField(5, "exponential", 0.0, 1.0, 0.2)
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


def test_sample_does_not_depend_on_blas_threads():
    """The factor and the samples are bit-for-bit the same with 1 or 4 BLAS threads."""
    import os
    import subprocess
    import sys

    code = (
        "import hashlib; from pde_data.fields import GaussianRandomField as G; "
        "f = G(12, 'squared_exponential', 0.0, 1.0, 0.3); "
        "print(hashlib.sha256(f.factor.tobytes() + f.sample_index(0, 3).tobytes()).hexdigest())"
    )
    digests = set()
    for threads in ("1", "4"):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
        run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        digests.add(run.stdout.strip())
    assert len(digests) == 1
