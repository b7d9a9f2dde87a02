"""Registry of the PDE families that ``pde-data generate PROBLEM`` can write.

A family is a class with the small interface :class:`Family` below; the
problem-agnostic driver (:mod:`pde_data.generate`) and store
(:mod:`pde_data.store`) use nothing else. To add a family, write the class
and add one entry to :data:`PROBLEMS`.

The driver does, on each rank::

    family = Family(**kwargs)                  # kwargs: the checked params.yaml section
    for i in my_samples:
        rng = numpy.random.default_rng(SeedSequence((seed, i)))
        arrays = family.solve(family.draw(rng))   # keys == family.sample_arrays
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from params import ConfigError, Spec


class Family(Protocol):
    """Interface of a PDE family (see :class:`pde_data.poisson.PoissonProblem`)."""

    #: Registry key, recorded as the store's ``problem``.
    name: ClassVar[str]
    #: Version of the stored arrays and their meaning; bump it when they change.
    schema_version: ClassVar[int]
    #: The store size when the params give none (the repository's params.yaml value).
    SAMPLES: ClassVar[int]
    #: Constructor keyword -> spec (default and check). The keys are also the
    #: keys of the family's ``params.yaml`` section (besides samples/seed/chunk).
    #: The constructor takes exactly these keywords and solves on ``MPI.COMM_SELF``.
    PARAMS: ClassVar[dict[str, Spec]]

    #: The resolved constructor parameters, JSON-serialisable; recorded in the
    #: store, and a resume with different values is refused.
    params: dict[str, Any]
    #: Description of mesh, element and output grid, recorded in the store.
    mesh: dict[str, Any]
    #: Per-sample arrays: name -> (shape of one sample, numpy dtype name).
    sample_arrays: dict[str, tuple[tuple[int, ...], str]]
    #: Labels of the arrays for xarray (:class:`pde_data.labels.Variable`: dimension names, units, long name,
    #: description), per-sample and once-per-store arrays alike; an array without one gets generic names.
    VARIABLES: ClassVar[dict[str, Any]]

    @classmethod
    def config(cls, **params: Any) -> dict[str, Any]:
        """The checked parameters (each key's spec and the checks across keys); the constructor calls it."""

    def store_arrays(self) -> dict[str, np.ndarray]:
        """Arrays written once per store (e.g. the grid coordinates)."""

    def draw(self, rng: np.random.Generator) -> Any:
        """The random input of one sample, drawn from ``rng`` alone."""

    def solve(self, sample: Any) -> dict[str, np.ndarray]:
        """Solve for one input; returns every key of :attr:`sample_arrays`."""


@dataclass(frozen=True)
class Problem:
    """What the rest of the project needs to know of a family, without importing it (no DOLFINx).

    The per-sample arrays' shapes and dtypes are in each store's record; this
    entry says what a surrogate reads from them.
    """

    #: "module:Class" of the family, imported on demand.
    family: str
    #: Per-sample arrays that are network input channels, in channel order.
    inputs: tuple[str, ...]
    #: Coordinate channels appended to the inputs (store arrays ``x``, ``y`` of the grid).
    grid_channels: tuple[str, ...]
    #: Target choices (``data.target.PROBLEM``): name -> per-sample arrays, in output-vector order.
    #: The first one is the default.
    targets: dict[str, tuple[str, ...]]

    @property
    def default_target(self) -> str:
        return next(iter(self.targets))


#: Problem name -> its entry. A new family is one entry here plus its generator module.
PROBLEMS: dict[str, Problem] = {
    "poisson": Problem("pde_data.poisson:PoissonProblem", inputs=("kappa",), grid_channels=("x", "y"),
                       targets={"u": ("u",)}),
    "darcy": Problem("pde_data.darcy:DarcyProblem", inputs=("log_k",), grid_channels=(),
                     targets={"Q": ("Q",), "p": ("p",), "Q+p": ("Q", "p")}),
}


def get_problem(name: str) -> Problem:
    """The registry entry of ``name``."""
    if name not in PROBLEMS:
        raise ConfigError(f"problem: {name!r} is unknown; need one of {', '.join(PROBLEMS)}")
    return PROBLEMS[name]


def get_family(name: str) -> type[Family]:
    """The family class registered as ``name``."""
    module, cls = get_problem(name).family.split(":")
    return getattr(importlib.import_module(module), cls)
