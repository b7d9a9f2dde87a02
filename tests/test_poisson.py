"""The Poisson solver: convergence, physics, grid layout, determinism, parameter checks."""

import math

import numpy as np
import pytest

try:
    import dolfinx_solver  # noqa: F401 - orders MPI ahead of the DOLFINx bindings where present
except ImportError:
    pass
import ufl
from dolfinx import fem

from params import ConfigError
from pde_data.poisson import PoissonProblem, kappa_formula

THETA = np.array([2.5, 1.5, 0.1, 0.3, 0.4])


@pytest.fixture(scope="module")
def problem():
    return PoissonProblem(n=32)


class Manufactured(PoissonProblem):
    """u_ex = sin(pi x) sin(pi y) x e^y with the real kappa(THETA); f = -div(kappa grad u_ex)."""

    def exact(self, x):
        return ufl.sin(math.pi * x[0]) * ufl.sin(math.pi * x[1]) * x[0] * ufl.exp(x[1])

    def source(self, x):
        if isinstance(x, np.ndarray):  # the stored f grid is not used here
            return np.zeros_like(x[0])
        kappa = kappa_formula(x[0], x[1], THETA, ufl.cos, ufl.sin)  # the load is assembled once
        return -ufl.div(kappa * ufl.grad(self.exact(x)))


def test_manufactured_solution_converges_at_second_order_in_l2():
    errors = []
    sizes = [9, 17, 33, 65]
    for n in sizes:
        m = Manufactured(n=n)
        uh = m.solve_fem(THETA)
        x = ufl.SpatialCoordinate(m.domain)
        error = fem.form((uh - m.exact(x)) ** 2 * ufl.dx(metadata={"quadrature_degree": 8}))
        errors.append(math.sqrt(fem.assemble_scalar(error)))
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(rates > 1.9), (errors, rates)


def test_solve_returns_the_contract_arrays(problem):
    out = problem.solve(THETA)
    assert set(out) == set(problem.sample_arrays)
    for name, (shape, dtype) in problem.sample_arrays.items():
        assert out[name].shape == shape and out[name].dtype == dtype, name
    np.testing.assert_array_equal(out["theta"], THETA)


def test_physics_on_the_kappa_family(problem):
    rng = np.random.default_rng(7)
    for _ in range(5):
        out = problem.solve(problem.draw(rng))
        u, kappa = out["u"], out["kappa"]
        assert kappa.min() >= 0.1 - 1e-6 and kappa.max() <= 2.1 + 1e-6
        assert out["f"].min() > 0
        assert u.min() >= 0.0  # maximum principle: f >= 0, u = 0 on the boundary
        assert u[1:-1, 1:-1].min() > 0
        for edge in (u[0], u[-1], u[:, 0], u[:, -1]):
            np.testing.assert_array_equal(edge, 0.0)
        assert np.isfinite(out["flux"]).all()


def test_grid_layout_rows_are_y_and_columns_are_x(problem):
    theta = [1.5, 3.0, 0.2, 0.1, 0.0]  # no rotation: kappa separates in x and y
    out = problem.solve(theta)
    grid = np.linspace(0, 1, 32)
    expected = 1.1 + np.cos(1.5 * np.pi * (grid[None, :] + 0.2)) * np.cos(3.0 * np.pi * (grid[:, None] + 0.1))
    np.testing.assert_allclose(out["kappa"], expected, rtol=1e-6)
    row, col = np.unravel_index(np.argmax(out["f"]), out["f"].shape)
    assert (row, col) == (8, 8)  # f peaks at (0.25, 0.25)
    x, y = problem.store_arrays()["x"], problem.store_arrays()["y"]  # columns are x, rows are y
    np.testing.assert_allclose(x, grid, rtol=1e-6)
    np.testing.assert_allclose(y, grid, rtol=1e-6)


def test_mirror_symmetry_swaps_x_and_y():
    problem = PoissonProblem(n=16)
    out = problem.solve([2.0, 2.0, 0.1, 0.1, 0.0])  # kappa and f symmetric under x <-> y
    np.testing.assert_allclose(out["u"], out["u"].T, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out["flux"][0], out["flux"][1].T, rtol=1e-5, atol=1e-6)


def test_flux_matches_finite_differences_inside(problem):
    out = problem.solve(THETA)
    gy, gx = np.gradient(out["u"].astype(float), 1 / 31)
    inner = (slice(2, -2), slice(2, -2))
    for d, grad in enumerate((gx, gy)):
        fd = -out["kappa"] * grad
        assert np.abs(out["flux"][d][inner] - fd[inner]).max() < 0.05 * np.abs(fd).max()


def test_kappa_grid_matches_the_formula(problem):
    out = problem.solve(THETA)
    x, y = np.meshgrid(problem.store_arrays()["x"].astype(float), problem.store_arrays()["y"].astype(float))
    np.testing.assert_allclose(out["kappa"], kappa_formula(x, y, THETA, np.cos, np.sin),
                               rtol=1e-6)


def test_solution_does_not_depend_on_solve_history(problem):
    first = problem.solve(THETA)["u"]
    problem.solve([0.7, 3.9, 0.45, 0.05, 1.5])
    np.testing.assert_array_equal(problem.solve(THETA)["u"], first)


def test_draw_stays_in_the_configured_ranges():
    problem = PoissonProblem(n=4, kx=[1.0, 1.5], alpha=[0.2, 0.3])
    rng = np.random.default_rng(0)
    thetas = np.array([problem.draw(rng) for _ in range(200)])
    lows = [1.0, 0.5, 0.0, 0.0, 0.2]
    highs = [1.5, 4.0, 0.5, 0.5, 0.3]
    assert np.all(thetas >= lows) and np.all(thetas < highs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "poisson.n: 0 is too small"),
        ({"kx": [4.0, 0.5]}, "poisson.kx: range [4.0, 0.5] is inverted; need low < high"),
        ({"ay": [0.2, 0.2]}, "poisson.ay: range [0.2, 0.2] is empty"),
        ({"alpha": [0.0]}, "poisson.alpha: [0.0] is not a range"),
    ],
)
def test_bad_parameters_name_the_key(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        PoissonProblem(**kwargs)


def test_bad_theta_shape(problem):
    with pytest.raises(ValueError, match="theta must hold 5 values"):
        problem.solve([1.0, 2.0])


@pytest.mark.parametrize("n", [64, 128, pytest.param(256, marks=pytest.mark.slow)])
def test_larger_grids_use_cholesky_with_the_lu_solution(n):
    from pde_data.lu import direct_solver

    problem = PoissonProblem(n=n)
    assert problem.mesh["solver"] == "mumps Cholesky"
    u = problem.solve_fem(THETA).x.petsc_vec.copy()
    lu = direct_solver(problem.A)  # PETSc's LU on the same matrix
    reference = u.duplicate()
    lu.solve(problem.b, reference)
    assert np.abs(u.array - reference.array).max() < 1e-10 * np.abs(reference.array).max()
    out = problem.solve(THETA)
    assert out["u"].shape == (n, n) and out["flux"].shape == (2, n, n)
    assert PoissonProblem(n=32).mesh["solver"] == "petsc LU"
