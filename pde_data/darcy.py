"""Darcy family of the multilevel-in-width paper (section 8.2, eqs. (42)-(43)) on DOLFINx.

Single-phase porous-media flow on the unit square D in mixed form: find the
flux q in the Raviart-Thomas space V_h (RTCF degree 1 on quadrilaterals) and
the pressure p in W_h (piecewise constants, DQ0) such that

    (k^-1 q, s) - (div s, p) = -(p_D, s.n)_{G_D}     for all s in V_h,
    -(div q, w)              = 0                     for all w in W_h,

i.e. q = -k grad p, div q = 0, with p = p_D on G_D = G_in u G_out (weakly,
through the right-hand side) and q.n = 0 on the other sides (essentially, on
the flux space). Defaults: p = 1 on the left side (inflow), p = 0 on the right
side (outflow), no flow through top and bottom.

Permeability k = exp(log_k), piecewise constant on the n x n structured
quadrilateral cells; log_k is a Gaussian random field sampled exactly on the
cell centres (:mod:`pde_data.fields`): by circulant embedding (``method: fft``,
the default, any n) or by a dense Cholesky factor (``method: cholesky``, the
reference, n <= ~64).

Outputs and sign conventions (n is the *outward* unit normal of D):

* ``Q``    = (1/|G_out|) int_{G_out} q.n ds, eq. (43): mean flux leaving
  through the outflow side (positive when fluid leaves).
* ``Q_in`` = -(1/|G_in|) int_{G_in} q.n ds: mean flux entering through the
  inflow side (positive when fluid enters). Since div q = 0 holds exactly on
  every cell and q.n = 0 elsewhere, and |G_in| = |G_out| = 1 on the unit
  square, conservation reads ``Q == Q_in`` up to solver round-off.
* ``p``: the DQ0 pressure, one value per cell, as an (n, n) image.

With k = c constant, p_in = 1, p_out = 0: p = 1 - x, q = (c, 0), Q = Q_in = c
(the mixed method reproduces this exactly; p_h is the cell mean of 1 - x).

Images are (n, n) arrays with ``a[row, col]`` the value of the cell whose
centre is ((col + .5)/n, (row + .5)/n): row = y index, col = x index.

Forms are compiled once; each solve writes k^-1 into a DQ0 coefficient,
re-assembles the matrix into the same PETSc object and refactorises it with
one reused direct solver (MUMPS where available). The right-hand side does
not depend on k and is assembled once.

Sizes: MUMPS LU holds to n = 256 (about 0.3 s per sample there, docs/GRIDS.md,
and 0.35 GB peak memory per process); the FFT field costs a few ms. Beyond n ~ 512 (LU: ~2 s,
1 GB) an iterative solver for the saddle-point system (e.g. MINRES with a
block-diagonal H(div) / Schur-complement preconditioner) would be the next
step; none is offered or was tried, since LU holds up to n = 256.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

try:
    import dolfinx_solver  # noqa: F401 - orders MPI ahead of the bindings where present
except ImportError:
    pass

import basix.ufl
import ufl
from dolfinx import fem
from dolfinx import mesh as dmesh
from dolfinx.fem import petsc as fem_petsc
from mpi4py import MPI
from petsc4py import PETSc

from params import Choice, ConfigError, Float, Int, Spec
from pde_data.fields import (
    FIELD_PARAMS,
    LOG_FLOAT64_MAX,
    GaussianRandomField,
    cell_centres,
    check_budget,
    check_field_params,
    describe_method,
)
from pde_data.labels import IMAGE, Variable, grid_axis
from pde_data.lu import check_memory, direct_solver, solver_name

SIDES = ("left", "right", "bottom", "top")
_SIDE_TAG = {"left": 1, "right": 2, "bottom": 3, "top": 4}
_SIDE_MARKER = {
    "left": lambda x: np.isclose(x[0], 0.0),
    "right": lambda x: np.isclose(x[0], 1.0),
    "bottom": lambda x: np.isclose(x[1], 0.0),
    "top": lambda x: np.isclose(x[1], 1.0),
}


class DarcyProblem:
    """One compiled mixed RT/DQ0 Darcy solver on ``MPI.COMM_SELF``; ``solve(log_k)`` gives one sample.

    Keyword parameters (the ``darcy:`` section of params.yaml, see :attr:`PARAMS`):
    ``n`` cells per side; field ``kernel``, ``mean``, ``variance``, ``length``,
    ``nu`` (Matern smoothness, used only with kernel ``matern``), ``method``
    (sampler: ``fft`` or ``cholesky``); boundary
    ``inflow``/``outflow`` sides with pressures ``p_in``/``p_out``.
    """

    name: ClassVar[str] = "darcy"
    #: 2: the circulant embedding also tries a C^3 taper, so some grids and lengths (the default kernel at
    #: n >= 128) sample on a smaller torus: other log_k values for the same (seed, i) than version 1.
    schema_version: ClassVar[int] = 2
    SAMPLES: ClassVar[int] = 8000  # store size without a params file (params.yaml: darcy.samples)
    PARAMS: ClassVar[dict[str, Spec]] = {
        "n": Int(32, low=1),  # cells per side: n x n quadrilaterals, images are n x n
        **FIELD_PARAMS,  # kernel, mean, variance, length, nu of log_k; method: its sampler
        "inflow": Choice("left", SIDES),
        "outflow": Choice("right", SIDES),
        "p_in": Float(1.0),  # pressure on the inflow side
        "p_out": Float(0.0),  # pressure on the outflow side
    }
    #: Labels of the stored arrays (:mod:`pde_data.labels`); the problem is posed without units.
    VARIABLES: ClassVar[dict[str, Variable]] = {
        "log_k": Variable(IMAGE, "log permeability log k", description="Gaussian random field at the cell centres "
                          "(kernel, mean, variance, length: params); k = exp(log_k) is constant on each cell"),
        "p": Variable(IMAGE, "pressure p", description="DQ0 pressure of the mixed RT/DQ0 Darcy solution, one value "
                      "per cell"),
        "Q": Variable((), "mean outflow flux Q", description="Q = (1/|G_out|) int_G_out q.n ds, n the outward unit "
                      "normal (eq. (43)): the quantity of interest"),
        "Q_in": Variable((), "mean inflow flux Q_in", description="Q_in = -(1/|G_in|) int_G_in q.n ds; equals Q up "
                         "to solver round-off (div q = 0)"),
        "x": grid_axis("x", "cell centres"),
        "y": grid_axis("y", "cell centres"),
    }

    @classmethod
    def config(cls, **params: Any) -> dict[str, Any]:
        """The checked parameters: each key's spec, then the field's joint check (positive variance and length,
        the Matern smoothness, no overflow of k; ``nu`` None unless the kernel is Matern) and two distinct
        sides. The one check of the family's parameters (``pde_data.config.problem_config`` calls it too)."""
        unknown = sorted(set(params) - set(cls.PARAMS))
        if unknown:
            raise TypeError(f"DarcyProblem got unknown parameter {unknown[0]!r}; allowed: {', '.join(cls.PARAMS)}")
        p = {key: params.get(key, spec.default) for key, spec in cls.PARAMS.items()}
        p = {key: value if key == "nu" and value is None else cls.PARAMS[key].check(f"darcy.{key}", value)
             for key, value in p.items()}   # nu None: no smoothness (a kernel other than matern)
        p.update(check_field_params(p["kernel"], p["mean"], p["variance"], p["length"], p["nu"], prefix="darcy.",
                                    method=p["method"]))
        if p["inflow"] == p["outflow"]:
            raise ConfigError(f"darcy.outflow: {p['outflow']!r} is the inflow side too; need two different sides of "
                              f"{', '.join(SIDES)}")
        return p

    def __init__(self, **params: Any):
        self.params = p = self.config(**params)
        n = p["n"]
        check_memory(2 * n * (n + 1) + n * n, "darcy.n", n)  # RTCF1 (one per edge) + DQ0 (one per cell) unknowns
        self._field: GaussianRandomField | None = None
        if p["method"] == "fft":
            self._field = self._make_field()  # cheap: a bad length or n fails here, not at the first draw
        else:  # the factor takes O(n^6): only on first draw, but a grid beyond the memory budget fails now
            check_budget(n, "cholesky", prefix="darcy.")
        self.sample_arrays = {"log_k": ((n, n), "float32"), "p": ((n, n), "float32"), "Q": ((), "float64"),
                              "Q_in": ((), "float64")}
        self.mesh = self._describe()
        self._mesh()                                    # 1. mesh and spaces
        ds_in, ds_out = self._boundary()               # 2.-3. the sides, and no flow through the walls
        self._forms(ds_in, ds_out)                     # 4.-6. forms, outflow functionals, right-hand side
        self.ksp = direct_solver(self.A, pivoting=True)  # 7. one direct solver, refactorised when A changes
        self.mesh["solver"] = solver_name(self.ksp)
        self._pixel_maps()                             # 8. cells <-> image pixels

    def _walls(self) -> list[str]:
        return [side for side in SIDES if side not in (self.params["inflow"], self.params["outflow"])]

    def _describe(self) -> dict[str, Any]:
        """What the store records of the mesh, boundary, QoI and field."""
        p, n = self.params, self.params["n"]
        field = self._field.describe() if self._field else {"method": p["method"],
                                                            "sampling": describe_method(p["method"])}
        return {
            "cell": "quadrilateral", "cells": [n, n], "element": "RTCF1 (flux q) x DQ0 (pressure p)", "grid": [n, n],
            "grid_layout": "array[row, col] = value of the cell centred at (x[col], y[row]); "
                           "x, y = (arange(n) + .5) / n",
            "boundary": f"p = {p['p_in']} on {p['inflow']}, p = {p['p_out']} on {p['outflow']}, "
                        f"q.n = 0 on {' and '.join(self._walls())}",
            "qoi": "Q = (1/|G_out|) int_G_out q.n ds (n outward); Q_in = -(1/|G_in|) int_G_in q.n ds; Q == Q_in",
            "field": {**field, "stored": "log_k rounded to float32 (the values solved with)"},
        }

    def _mesh(self) -> None:
        """1. The n x n quadrilateral mesh, the mixed space RTCF1 x DQ0, and DQ0 for the coefficient k^-1."""
        n = self.params["n"]
        self.domain = dmesh.create_unit_square(MPI.COMM_SELF, n, n, dmesh.CellType.quadrilateral)
        rt = basix.ufl.element("RTCF", "quadrilateral", 1)
        dq = basix.ufl.element("DQ", "quadrilateral", 0)
        self.W = fem.functionspace(self.domain, basix.ufl.mixed_element([rt, dq]))
        self.K = fem.functionspace(self.domain, dq)
        self.k_inv = fem.Function(self.K)

    def _boundary(self) -> tuple[ufl.Measure, ufl.Measure]:
        """2. The four sides tagged (1 left, 2 right, 3 bottom, 4 top); 3. no flow (q.n = 0) on the walls,
        imposed on the RT dofs. Returns the measures of the inflow and outflow sides."""
        fdim = self.domain.topology.dim - 1
        self.domain.topology.create_connectivity(fdim, fdim + 1)
        facets, tags = [], []
        for side in SIDES:
            found = dmesh.locate_entities_boundary(self.domain, fdim, _SIDE_MARKER[side])
            facets.append(found)
            tags.append(np.full(len(found), _SIDE_TAG[side], dtype=np.int32))
        facets, tags = np.concatenate(facets), np.concatenate(tags)
        order = np.argsort(facets)
        facet_tags = dmesh.meshtags(self.domain, fdim, facets[order], tags[order])
        V, _ = self.W.sub(0).collapse()
        walls = np.concatenate([facet_tags.find(_SIDE_TAG[side]) for side in self._walls()]).astype(np.int32)
        wall_dofs = fem.locate_dofs_topological((self.W.sub(0), V), fdim, walls)
        self.bcs = [fem.dirichletbc(fem.Function(V), wall_dofs, self.W.sub(0))]
        ds = ufl.Measure("ds", domain=self.domain, subdomain_data=facet_tags)
        return ds(_SIDE_TAG[self.params["inflow"]]), ds(_SIDE_TAG[self.params["outflow"]])

    def _forms(self, ds_in: ufl.Measure, ds_out: ufl.Measure) -> None:
        """4. The forms of (42): the bilinear form depends on k^-1, the right-hand side carries the pressure data
        on the inflow and outflow sides; 5. the QoI (43): the mean normal fluxes are linear in the solution,
        Q = g . w_h with g = assembled inner(s, n) ds / side length, one dot product per sample; 6. the
        right-hand side does not depend on k: assembled once (the homogeneous wall condition needs no lifting),
        and the matrix created."""
        q, pr = ufl.TrialFunctions(self.W)
        s, w = ufl.TestFunctions(self.W)
        normal = ufl.FacetNormal(self.domain)
        p_in = fem.Constant(self.domain, PETSc.ScalarType(self.params["p_in"]))
        p_out = fem.Constant(self.domain, PETSc.ScalarType(self.params["p_out"]))
        self.a = fem.form(self.k_inv * ufl.inner(q, s) * ufl.dx - pr * ufl.div(s) * ufl.dx - ufl.div(q) * w * ufl.dx)
        L = fem.form(-p_in * ufl.inner(s, normal) * ds_in - p_out * ufl.inner(s, normal) * ds_out)
        self.wh = fem.Function(self.W)
        one = fem.Constant(self.domain, PETSc.ScalarType(1.0))
        len_in = fem.assemble_scalar(fem.form(one * ds_in))
        len_out = fem.assemble_scalar(fem.form(one * ds_out))
        self.flux_out = fem.assemble_vector(fem.form(ufl.inner(s, normal) * ds_out)).array / len_out
        self.flux_in = -fem.assemble_vector(fem.form(ufl.inner(s, normal) * ds_in)).array / len_in
        self.b = fem_petsc.assemble_vector(L)
        fem_petsc.set_bc(self.b, self.bcs)
        self.A = fem_petsc.create_matrix(self.a)

    def _pixel_maps(self) -> None:
        """8. Cell <-> image maps: the image index (row * n + col) of each cell, the k^-1 dof of each pixel, the
        pressure dof (in W) of each pixel, and the cell-centre coordinates."""
        n, tdim = self.params["n"], self.domain.topology.dim
        num_cells = self.domain.topology.index_map(tdim).size_local
        cells = np.arange(num_cells, dtype=np.int32)
        centre = dmesh.compute_midpoints(self.domain, tdim, cells)
        col = np.clip(np.floor(centre[:, 0] * n).astype(np.int64), 0, n - 1)
        row = np.clip(np.floor(centre[:, 1] * n).astype(np.int64), 0, n - 1)
        pixel = row * n + col
        if num_cells != n * n or len(np.unique(pixel)) != n * n:
            raise RuntimeError("cell-to-pixel map of the structured mesh is not one-to-one")
        self.k_dof = np.empty(n * n, dtype=np.int64)
        self.k_dof[pixel] = self.K.dofmap.list[cells, 0]
        Wp, p_parent = self.W.sub(1).collapse()
        self.p_dof = np.empty(n * n, dtype=np.int64)
        self.p_dof[pixel] = np.concatenate(p_parent)[Wp.dofmap.list[cells, 0]]
        self.x, self.y = cell_centres(n)

    # -- the family interface -------------------------------------------------

    def _make_field(self) -> GaussianRandomField:
        p = self.params
        return GaussianRandomField(p["n"], p["kernel"], p["mean"], p["variance"], p["length"], p["nu"], p["method"],
                                   prefix="darcy.")

    @property
    def field(self) -> GaussianRandomField:
        """The log-permeability field (built at construction for fft, on first use for cholesky)."""
        if self._field is None:
            self._field = self._make_field()
        return self._field

    def store_arrays(self) -> dict[str, np.ndarray]:
        """The 1-D cell-centre coordinates ``x`` (columns) and ``y`` (rows)."""
        return {"x": self.x[0].astype(np.float32), "y": self.y[:, 0].astype(np.float32)}

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """log_k on the cells, (n, n), rounded to float32 so the stored input is exactly the solved one."""
        return self.field.sample(rng).astype(np.float32).astype(np.float64)

    # -- solving --------------------------------------------------------------

    def check_log_k(self, log_k) -> np.ndarray:
        """``log_k`` as a float64 (n, n) array; ValueError for a wrong shape, NaN/inf or exp overflow."""
        n = self.params["n"]
        log_k = np.asarray(log_k, dtype=np.float64)
        if log_k.shape != (n, n):
            raise ValueError(f"log_k must have shape ({n}, {n}) (one value per cell), got {log_k.shape}")
        if not np.all(np.isfinite(log_k)):
            raise ValueError("log_k holds NaN or inf; need finite values")
        worst = float(np.abs(log_k).max())
        if worst > LOG_FLOAT64_MAX:
            raise ValueError(
                f"log_k: max |log_k| = {worst:.6g} makes k = exp(log_k) or 1/k overflow float64; "
                f"need |log_k| <= {LOG_FLOAT64_MAX:.6g}"
            )
        return log_k

    def solve_fem(self, log_k) -> fem.Function:
        """Assemble and solve for the cell values ``log_k`` (n, n); returns the mixed solution (q, p)."""
        log_k = self.check_log_k(log_k)
        # 1. k^-1 = exp(-log_k) into the DQ0 coefficient, matrix re-assembled in place.
        self.k_inv.x.array[self.k_dof] = np.exp(-log_k.ravel())
        self.A.zeroEntries()
        fem_petsc.assemble_matrix(self.A, self.a, bcs=self.bcs)
        self.A.assemble()
        # 2. Direct solve into wh (the solver notices the new matrix state and refactorises).
        self.ksp.solve(self.b, self.wh.x.petsc_vec)
        reason = self.ksp.getConvergedReason()
        if reason < 0:
            raise RuntimeError(f"Darcy direct solve failed (KSP reason {reason})")
        self.wh.x.scatter_forward()
        return self.wh

    def solve(self, log_k) -> dict[str, Any]:
        """One sample for cell values ``log_k`` (n, n; row = y, col = x).

        Returns ``log_k`` (as given, float64), ``p`` ((n, n) cell pressures,
        float64), ``Q`` (float, mean outward flux through the outflow side,
        eq. (43)) and ``Q_in`` (float, mean inward flux through the inflow side;
        equals ``Q`` by conservation).
        """
        w = self.solve_fem(log_k).x.array
        n = self.params["n"]
        return {
            "log_k": np.asarray(log_k, dtype=np.float64),
            "p": w[self.p_dof].reshape(n, n),  # indexing copies: w is overwritten by the next solve
            "Q": float(self.flux_out @ w),
            "Q_in": float(self.flux_in @ w),
        }
