"""Registry of the PDE families that ``pde-data generate PROBLEM`` can write.

A family is a class with the small interface :class:`Family` below; the
problem-agnostic driver (:mod:`pde_data.generate`) and store
(:mod:`pde_data.store`) use nothing else. To add a family, write the class
and add one line to :data:`FAMILIES`.

The driver does, on each rank::

    family = Family(**kwargs)                  # kwargs: the checked params.yaml section
    for i in my_samples:
        rng = numpy.random.default_rng(SeedSequence((seed, i)))
        arrays = family.solve(family.draw(rng))   # keys == family.sample_arrays
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar, Protocol

import numpy as np

from pde_data.config import ConfigError, Spec


class Family(Protocol):
    """Interface of a PDE family (see :class:`pde_data.poisson.PoissonProblem`)."""

    #: Registry key, recorded as the store's ``problem``.
    name: ClassVar[str]
    #: Version of the stored arrays and their meaning; bump it when they change.
    schema_version: ClassVar[int]
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

    def store_arrays(self) -> dict[str, np.ndarray]:
        """Arrays written once per store (e.g. the grid coordinates)."""

    def draw(self, rng: np.random.Generator) -> Any:
        """The random input of one sample, drawn from ``rng`` alone."""

    def solve(self, sample: Any) -> dict[str, np.ndarray]:
        """Solve for one input; returns every key of :attr:`sample_arrays`."""


#: Problem name -> "module:Class". Imported on demand, so ``pde-data info`` needs no FEM stack.
FAMILIES: dict[str, str] = {
    "poisson": "pde_data.poisson:PoissonProblem",
    "darcy": "pde_data.darcy:DarcyProblem",
}


def get_family(name: str) -> type[Family]:
    """The family class registered as ``name``."""
    if name not in FAMILIES:
        raise ConfigError(f"problem: {name!r} is unknown; need one of {', '.join(FAMILIES)}")
    module, cls = FAMILIES[name].split(":")
    return getattr(importlib.import_module(module), cls)
