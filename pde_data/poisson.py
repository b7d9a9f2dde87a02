"""Poisson family of the multilevel-in-width paper (section 8.1) on DOLFINx.

-div(kappa grad u) = f on the unit square, u = 0 on the boundary, with

    kappa(x, y) = 1.1 + cos(kx pi (x' + ax)) cos(ky pi (y' + ay)),
    x' = cos(alpha)(x - .5) - sin(alpha)(y - .5) + .5,
    y' = sin(alpha)(x - .5) + cos(alpha)(y - .5) + .5,
    f(x, y) = A exp(-c ((x - x0)^2 + (y - y0)^2))      (A = 32, c = 4, x0 = y0 = .25).

A sample's input is theta = (kx, ky, ax, ay, alpha). P1 Lagrange elements on
a structured triangle mesh whose vertices are the n x n output grid; the
forms are compiled once, theta enters as a ``fem.Constant``, and each solve
re-assembles the matrix into the same PETSc object and reuses one direct
solver: PETSc's LU below n = 64, MUMPS Cholesky from there on (the stiffness
matrix is SPD; see :mod:`pde_data.lu` for the timings behind the switch).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

try:
    import dolfinx_solver  # noqa: F401 - orders MPI ahead of the bindings where present
except ImportError:
    pass

import ufl
from dolfinx import fem
from dolfinx import mesh as dmesh
from dolfinx.fem import petsc as fem_petsc
from mpi4py import MPI
from petsc4py import PETSc

from params import Float, Int, Range, Spec
from pde_data.labels import IMAGE, Variable, grid_axis
from pde_data.lu import CHOLESKY_FROM_N, check_memory, direct_solver, solver_name

THETA_NAMES = ("kx", "ky", "ax", "ay", "alpha")


def kappa_formula(x, y, theta, cos, sin):
    """kappa at (x, y) for theta = (kx, ky, ax, ay, alpha); ``cos``/``sin`` from numpy or UFL."""
    kx, ky, ax, ay, alpha = theta
    xr = cos(alpha) * (x - 0.5) - sin(alpha) * (y - 0.5) + 0.5
    yr = sin(alpha) * (x - 0.5) + cos(alpha) * (y - 0.5) + 0.5
    return 1.1 + cos(kx * math.pi * (xr + ax)) * cos(ky * math.pi * (yr + ay))


class PoissonProblem:
    """One compiled Poisson solver on ``MPI.COMM_SELF``; ``solve(theta)`` gives one sample."""

    name: ClassVar[str] = "poisson"
    schema_version: ClassVar[int] = 1
    SAMPLES: ClassVar[int] = 2400  # store size without a params file (params.yaml: poisson.samples)
    PARAMS: ClassVar[dict[str, Spec]] = {
        "n": Int(32, low=2),  # grid points per side: the mesh has (n-1) x (n-1) squares
        "kx": Range((0.5, 4.0)),
        "ky": Range((0.5, 4.0)),
        "ax": Range((0.0, 0.5)),
        "ay": Range((0.0, 0.5)),
        "alpha": Range((0.0, math.pi / 2)),
        "f_amplitude": Float(32.0),
        "f_decay": Float(4.0),
        "f_x0": Float(0.25),
        "f_y0": Float(0.25),
        # Exact to 2e-9 relative in u for the default ranges (float32 storage).
        "quadrature_degree": Int(4, low=1),
    }
    #: Labels of the stored arrays (:mod:`pde_data.labels`); the problem is posed without units.
    VARIABLES: ClassVar[dict[str, Variable]] = {
        "theta": Variable(("param",), "coefficient parameters", description="theta = (kx, ky, ax, ay, alpha) of "
                          "kappa = 1.1 + cos(kx pi (x' + ax)) cos(ky pi (y' + ay)), (x', y') = (x, y) rotated by "
                          "alpha about (0.5, 0.5); each uniform on its range (params)"),
        "kappa": Variable(IMAGE, "diffusion coefficient kappa", description="kappa(x, y) of "
                          "-div(kappa grad u) = f at the grid points"),
        "f": Variable(IMAGE, "source term f", description="f = A exp(-c ((x - x0)^2 + (y - y0)^2)) at the grid "
                      "points (A, c, x0, y0: params f_amplitude, f_decay, f_x0, f_y0)"),
        "u": Variable(IMAGE, "solution u", description="P1 finite-element solution of -div(kappa grad u) = f, "
                      "u = 0 on the boundary, at the grid points (its nodal values)"),
        "flux": Variable(("component", *IMAGE), "flux -kappa grad u", description="per cell -kappa grad u "
                         "(kappa: mean of its vertex values), area-weighted mean over the cells at each grid point"),
        "x": grid_axis("x", "grid points"),
        "y": grid_axis("y", "grid points"),
        "param": Variable(("param",), "name of the coefficient parameter"),
        "component": Variable(("component",), "component of the flux vector"),
    }

    @classmethod
    def config(cls, **params: Any) -> dict[str, Any]:
        """The checked parameters, each by its spec (the one check; ``pde_data.config.problem_config`` calls it
        too)."""
        unknown = sorted(set(params) - set(cls.PARAMS))
        if unknown:
            raise TypeError(f"PoissonProblem got unknown parameter {unknown[0]!r}; allowed: {', '.join(cls.PARAMS)}")
        return {key: spec.check(f"poisson.{key}", params.get(key, spec.default)) for key, spec in cls.PARAMS.items()}

    def __init__(self, **params: Any):
        self.params = self.config(**params)
        n = self.params["n"]
        check_memory(n * n, "poisson.n", n)  # P1 unknowns: one per grid point
        self.sample_arrays = {"theta": ((5,), "float64"), "kappa": ((n, n), "float32"), "f": ((n, n), "float32"),
                              "u": ((n, n), "float32"), "flux": ((2, n, n), "float32")}
        self.mesh = {
            "cell": "triangle", "cells": [n - 1, n - 1], "diagonal": "right", "element": "Lagrange P1", "grid": [n, n],
            "grid_layout": "array[row, col] = value at (x[col], y[row]); x, y = linspace(0, 1, n)",
            "flux": "-kappa grad u per cell (kappa: mean of its vertex values), "
                    "area-weighted mean over the cells at each grid point",
        }
        self._mesh()         # 1. the mesh whose vertices are the output grid, and the P1 space
        self._forms()        # 2.-5. coefficients, boundary condition, forms, load vector and matrix
        self.ksp = direct_solver(self.A, spd=n >= CHOLESKY_FROM_N)  # 6. one direct solver, refactorised per matrix
        self.mesh["solver"] = solver_name(self.ksp)
        self._pixel_maps()   # 7. dofs and cells -> grid points

    def _mesh(self) -> None:
        """1. A structured triangle mesh of (n-1)^2 squares whose vertices are the n x n output grid; P1."""
        n = self.params["n"]
        self.domain = dmesh.create_unit_square(MPI.COMM_SELF, n - 1, n - 1, dmesh.CellType.triangle)
        self.V = fem.functionspace(self.domain, ("Lagrange", 1))

    def _forms(self) -> None:
        """2. kappa with theta as a Constant (the forms compile once); 3. u = 0 on the whole boundary; 4. the
        stiffness form (kappa integrated with a fixed quadrature degree) and the load; 5. the load vector does
        not depend on theta: assembled once (a serial mesh has no ghosts to update), and the matrix created."""
        x = ufl.SpatialCoordinate(self.domain)
        self.theta = fem.Constant(self.domain, np.zeros(5, dtype=PETSc.ScalarType))
        self.kappa = kappa_formula(x[0], x[1], [self.theta[i] for i in range(5)], ufl.cos, ufl.sin)
        tdim = self.domain.topology.dim
        self.domain.topology.create_connectivity(tdim - 1, tdim)
        facets = dmesh.exterior_facet_indices(self.domain.topology)
        dofs = fem.locate_dofs_topological(self.V, tdim - 1, facets)
        self.bcs = [fem.dirichletbc(PETSc.ScalarType(0), dofs, self.V)]
        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        self.uh = fem.Function(self.V)
        dx = ufl.dx(metadata={"quadrature_degree": self.params["quadrature_degree"]})
        self.a = fem.form(self.kappa * ufl.inner(ufl.grad(u), ufl.grad(v)) * dx)
        self.b = fem_petsc.assemble_vector(fem.form(self.source(x) * v * ufl.dx))
        fem_petsc.set_bc(self.b, self.bcs)
        self.A = fem_petsc.create_matrix(self.a)

    def _pixel_maps(self) -> None:
        """7. Grid transfer. u: the P1 dof at each grid point (flat index row * n + col). Flux: per cell the
        gradient operator (2 x 3 on the cell's dofs), its area and the grid points of its vertices, so that cell
        values are averaged to the grid with bincount. Also the grid and f on it."""
        n = self.params["n"]
        coords = self.V.tabulate_dof_coordinates()[:, :2]
        index = np.rint(coords * (n - 1)).astype(np.int64)
        dof_grid = index[:, 1] * n + index[:, 0]
        self.grid_dof = np.empty(n * n, dtype=np.int64)
        self.grid_dof[dof_grid] = np.arange(n * n)
        self.cell_dofs = self.V.dofmap.list
        vertices = coords[self.cell_dofs]  # (cells, 3, 2)
        jacobian = np.stack([vertices[:, 1] - vertices[:, 0], vertices[:, 2] - vertices[:, 0]], axis=2)
        reference_grad = np.array([[-1.0, 1.0, 0.0], [-1.0, 0.0, 1.0]])
        self.cell_grad = np.linalg.inv(jacobian).transpose(0, 2, 1) @ reference_grad
        area = 0.5 * np.abs(np.linalg.det(jacobian))
        self.vertex_grid = dof_grid[self.cell_dofs].ravel()
        self.vertex_area = np.repeat(area, 3)
        self.grid_area = np.bincount(self.vertex_grid, weights=self.vertex_area, minlength=n * n)
        grid = np.linspace(0.0, 1.0, n)
        self.x, self.y = np.meshgrid(grid, grid)  # x varies along columns, y along rows
        self.f_grid = self.source(np.stack([self.x, self.y])).astype(np.float32)

    def source(self, x):
        """The right-hand side f at coordinates ``x`` (UFL or numpy, x[0] and x[1])."""
        p = self.params
        r2 = (x[0] - p["f_x0"]) ** 2 + (x[1] - p["f_y0"]) ** 2
        exp = np.exp if isinstance(x, np.ndarray) else ufl.exp
        return p["f_amplitude"] * exp(-p["f_decay"] * r2)

    def store_arrays(self) -> dict[str, np.ndarray]:
        """The 1-D grid coordinates ``x`` (columns) and ``y`` (rows), and the labels of ``theta`` and ``flux``."""
        return {"x": self.x[0].astype(np.float32), "y": self.y[:, 0].astype(np.float32),
                "param": np.array(THETA_NAMES), "component": np.array(["x", "y"])}

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """theta = (kx, ky, ax, ay, alpha), each uniform on its range."""
        low, high = np.array([self.params[key] for key in THETA_NAMES]).T
        return rng.uniform(low, high)

    def solve_fem(self, theta) -> fem.Function:
        """Assemble and solve for ``theta``; returns the P1 solution ``uh``."""
        # 1. New kappa parameters, matrix re-assembled in place.
        self.theta.value[:] = theta
        self.A.zeroEntries()
        fem_petsc.assemble_matrix(self.A, self.a, bcs=self.bcs)
        self.A.assemble()
        # 2. Direct solve into uh.
        self.ksp.solve(self.b, self.uh.x.petsc_vec)
        self.uh.x.scatter_forward()
        return self.uh

    def solve(self, theta) -> dict[str, np.ndarray]:
        """One sample: theta, and kappa, f, u, flux on the grid (row = y, col = x)."""
        theta = np.asarray(theta, dtype=np.float64)
        if theta.shape != (5,):
            raise ValueError(f"theta must hold 5 values {THETA_NAMES}, got shape {theta.shape}")
        uh = self.solve_fem(theta)
        n = self.params["n"]
        kappa = kappa_formula(self.x, self.y, theta, np.cos, np.sin)
        # Flux -kappa grad u per cell (kappa: mean of the cell's vertex values),
        # then the area-weighted mean over the cells around each grid point.
        cell_kappa = kappa.ravel()[self.vertex_grid].reshape(-1, 3).mean(axis=1)
        cell_flux = -cell_kappa[:, None] * np.einsum("cij,cj->ci", self.cell_grad, uh.x.array[self.cell_dofs])
        flux = np.stack([
            np.bincount(self.vertex_grid, weights=self.vertex_area * np.repeat(cell_flux[:, d], 3), minlength=n * n)
            for d in range(2)
        ]) / self.grid_area
        return {
            "theta": theta,
            "kappa": kappa.astype(np.float32),
            "f": self.f_grid.copy(),
            "u": uh.x.array[self.grid_dof].reshape(n, n).astype(np.float32),
            "flux": flux.reshape(2, n, n).astype(np.float32),
        }
