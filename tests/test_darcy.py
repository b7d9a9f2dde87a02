"""Tests of the mixed RT/DQ0 Darcy solver (pde_data.darcy)."""

from __future__ import annotations

import platform
import resource

import numpy as np
import pytest

try:
    import dolfinx_solver  # noqa: F401 - orders MPI ahead of the DOLFINx bindings where present
except ImportError:
    pass
pytest.importorskip("dolfinx")

from params import ConfigError
from pde_data.darcy import DarcyProblem
from pde_data.fields import sample_rng

N = 32


@pytest.fixture(scope="module")
def darcy():
    return DarcyProblem(n=N)


@pytest.mark.parametrize("c", [0.5, 1.0, 7.3])
def test_uniform_permeability_gives_Q_equal_c_and_linear_pressure(darcy, c):
    out = darcy.solve(np.full((N, N), np.log(c)))
    assert out["Q"] == pytest.approx(c, rel=1e-12)
    assert out["Q_in"] == pytest.approx(c, rel=1e-12)
    # p = 1 - x exactly in the cell means (the mixed method reproduces linear p)
    np.testing.assert_allclose(out["p"], 1.0 - darcy.x, atol=1e-12)
    assert out["p"].shape == (N, N)
    assert isinstance(out["Q"], float)


def test_other_sides_and_pressures():
    problem = DarcyProblem(n=8, inflow="bottom", outflow="top", p_in=2.0, p_out=0.5)
    out = problem.solve(np.full((8, 8), np.log(3.0)))
    # p = 2 - 1.5 y, q = -k grad p = (0, 4.5)
    assert out["Q"] == pytest.approx(4.5, rel=1e-12)
    assert out["Q_in"] == pytest.approx(4.5, rel=1e-12)
    np.testing.assert_allclose(out["p"], 2.0 - 1.5 * problem.y, atol=1e-12)


def test_conservation_for_random_fields(darcy):
    for i in range(5):
        out = darcy.solve(darcy.draw(sample_rng(1, i)))
        assert out["Q"] > 0
        assert abs(out["Q"] - out["Q_in"]) < 1e-11 * out["Q"]
    corner = DarcyProblem(n=16, inflow="left", outflow="top")  # adjacent sides, same side lengths
    for i in range(3):
        out = corner.solve(corner.draw(sample_rng(1, i)))
        assert out["Q"] > 0 and abs(out["Q"] - out["Q_in"]) < 1e-11 * out["Q"]


def test_reflection_top_to_bottom_leaves_Q_unchanged(darcy):
    log_k = darcy.draw(sample_rng(2, 0))
    a = darcy.solve(log_k)
    b = darcy.solve(np.flipud(log_k))
    assert b["Q"] == pytest.approx(a["Q"], rel=1e-12)
    np.testing.assert_allclose(np.flipud(b["p"]), a["p"], atol=1e-12)
    # a left-right flip with swapped pressures is the same flow reversed: Q unchanged too
    c = DarcyProblem(n=N, inflow="right", outflow="left").solve(np.fliplr(log_k))
    assert c["Q"] == pytest.approx(a["Q"], rel=1e-12)


def test_pixel_orientation_layered_media(darcy):
    """Rows are y, columns are x: layers give the exact arithmetic / harmonic mean of k."""
    k = np.ones((N, N))
    k[-4:, :] = np.exp(-3.0)  # rows = y: a low-k layer along the top, parallel to the flow
    out = darcy.solve(np.log(k))
    assert out["Q"] == pytest.approx(k.mean(), rel=1e-12)  # parallel layers: arithmetic mean
    np.testing.assert_allclose(out["p"], 1.0 - darcy.x, atol=1e-12)  # still 1-D flow along x
    k = np.ones((N, N))
    k[:, :4] = np.exp(-3.0)  # columns = x: a low-k layer next to the inflow side, across the flow
    out = darcy.solve(np.log(k))
    assert out["Q"] == pytest.approx(1.0 / (1.0 / k).mean(), rel=1e-12)  # series: harmonic mean
    # 1-D series flow: p at a cell centre = 1 - (resistance from x = 0 to the centre) / (total)
    r = 1.0 / k[0]
    p_exact = 1.0 - (np.cumsum(r) - 0.5 * r) / r.sum()
    np.testing.assert_allclose(out["p"], np.broadcast_to(p_exact, (N, N)), atol=1e-12)


def test_Q_converges_under_mesh_refinement():
    def log_k(x, y):
        return 0.8 * np.sin(2 * np.pi * x) * np.cos(np.pi * y) + 0.5 * y

    ref = DarcyProblem(n=128)
    q_ref = ref.solve(log_k(ref.x, ref.y))["Q"]
    errors = []
    for n in (8, 16, 32):
        problem = DarcyProblem(n=n)
        errors.append(abs(problem.solve(log_k(problem.x, problem.y))["Q"] - q_ref))
    # halving h shrinks the error (observed factor ~5, i.e. about second order)
    assert errors[1] < 0.5 * errors[0]
    assert errors[2] < 0.5 * errors[1]


def test_draw_is_reproducible_and_float32_exact(darcy):
    a = darcy.draw(sample_rng(4, 9))
    b = darcy.draw(sample_rng(4, 9))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, a.astype(np.float32).astype(np.float64))
    assert a.shape == (N, N)
    assert not np.array_equal(a, darcy.draw(sample_rng(4, 10)))


def test_solver_objects_are_reused(darcy):
    A, ksp = darcy.A, darcy.ksp
    darcy.solve(np.zeros((N, N)))
    darcy.solve(np.ones((N, N)))
    assert darcy.A is A and darcy.ksp is ksp


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the malloc settings are glibc's")
def test_refactorisations_reuse_their_memory(darcy):
    """The solver keeps freed workspaces in the heap: repeated solves take no page faults.

    Without pde_data.heap.keep_freed_memory, some processes took 365 faults a solve here.
    """
    inputs = [darcy.draw(sample_rng(0, i)) for i in range(25)]
    for log_k in inputs[:5]:  # warm-up: the heap grows to the solve's peak
        darcy.solve(log_k)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for log_k in inputs[5:]:
        darcy.solve(log_k)
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20 < 5


@pytest.mark.parametrize(
    ("log_k", "match"),
    [
        (np.zeros((N, N + 1)), "shape"),
        (np.full((N, N), np.nan), "NaN"),
        (np.full((N, N), 800.0), "overflow"),
        (np.full((N, N), -800.0), "overflow"),
    ],
)
def test_bad_log_k(darcy, log_k, match):
    with pytest.raises(ValueError, match=match):
        darcy.solve(log_k)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"variance": 0.0}, "darcy.variance"),
        ({"length": -0.1}, "darcy.length"),
        ({"kernel": "whittle"}, "darcy.kernel"),
        ({"nu": 3.0}, "darcy.nu"),
        ({"mean": 90.0}, "darcy.mean"),
        ({"inflow": "left", "outflow": "left"}, "darcy.outflow"),
        ({"inflow": "front"}, "darcy.inflow"),
        ({"n": 0}, "darcy.n"),
        ({"method": "spde"}, "darcy.method"),
        ({"length": 50.0}, "darcy.length"),  # beyond what the padded circulant embedding can represent
        ({"n": 128, "method": "cholesky"}, "darcy.n"),  # the dense factor exceeds the memory budget: refused at once
    ],
)
def test_bad_parameters(kwargs, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        DarcyProblem(**{"n": 4, **kwargs})


def test_params_are_json_and_nu_only_for_matern():
    import json

    problem = DarcyProblem(n=4, kernel="exponential", nu=2.5)
    assert problem.params["nu"] is None
    json.dumps(problem.params)
    json.dumps(problem.mesh)
    assert set(problem.sample_arrays) >= {"log_k", "p", "Q", "Q_in"}


def test_field_sampler_and_solver_are_recorded():
    import json

    problem = DarcyProblem(n=16)
    field = problem.mesh["field"]
    assert field["method"] == "fft" and field["embedding"][0] >= 30 and not field["clipped"]
    assert field["min_eigenvalue_relative"] >= -1e-12 and field["covariance_error"] <= 1e-12
    assert problem.mesh["solver"] == "mumps LU"
    json.dumps(problem.mesh)
    reference = DarcyProblem(n=8, method="cholesky")
    assert reference.mesh["field"]["method"] == "cholesky" and reference._field is None  # factorised on first draw
    log_k = reference.draw(sample_rng(0, 1))
    assert reference.field.method == "cholesky" and log_k.shape == (8, 8)
    np.testing.assert_array_equal(log_k, reference.draw(sample_rng(0, 1)))


@pytest.mark.parametrize("n", [64, 128, pytest.param(256, marks=pytest.mark.slow)])
def test_larger_grids(n):
    """The default sampler and the direct solver at the sizes of params.yaml's comment."""
    problem = DarcyProblem(n=n)
    out = problem.solve(np.full((n, n), np.log(2.0)))
    assert out["Q"] == pytest.approx(2.0, rel=1e-10)
    np.testing.assert_allclose(out["p"], 1.0 - problem.x, atol=1e-10)
    out = problem.solve(problem.draw(sample_rng(0, n)))
    assert out["Q"] > 0 and abs(out["Q"] - out["Q_in"]) < 1e-10 * out["Q"]
    assert out["p"].shape == (n, n) and problem.mesh["field"]["embedding"][0] >= 2 * (n - 1)
