"""The ``uq:`` section of params.yaml (``surrogate uq``), checked like every other section.

The Darcy problem (field and boundary) is the ``darcy:`` section's; ``uq``
says how to estimate E[Q] on its grid: the tolerance, the levels, QMC, the
budget, the records and an optional surrogate control variate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from params import Bool, Choice, ConfigError, Float, Int, Section, option, read_params
from surrogate.config import DEVICES, SECTIONS


@dataclass(frozen=True)
class Maybe:
    """None (YAML ``null``) or a value that ``spec`` accepts."""

    spec: Any
    default: Any = None

    def check(self, key: str, value: Any) -> Any:
        return None if value is None else self.spec.check(key, value)


@dataclass(frozen=True)
class Text:
    """A non-empty string (a path)."""

    default: str | None = None

    def check(self, key: str, value: Any) -> str:
        if not isinstance(value, str | Path) or not str(value):
            raise ConfigError(f"{key}: {value!r} is not allowed; need a path")
        return str(value)


@dataclass(frozen=True)
class UQConfig(Section):
    """E[Q] to a tolerance by multilevel Monte Carlo over grids (surrogate.mc.uq)."""

    PREFIX = "uq"
    rtol: float | None = option(Maybe(Float(1e-3, low=0.0, low_open=True), 1e-3))  # relative RMSE target
    atol: float | None = option(Maybe(Float(1e-3, low=0.0, low_open=True)))        # absolute RMSE (instead)
    n: int | None = option(Maybe(Int(32, low=1)))        # finest grid; null: darcy.n
    n_min: int = option(Int(4, low=1))                   # coarsest grid (n = n_min 2^L)
    adaptive: bool = option(Bool(False))                 # true: add levels up to n until the bias estimate fits
    theta: float = option(Float(0.5, low=0.0, high=1.0, low_open=True, high_open=True))  # bias share of eps^2
    pilot: int = option(Int(64, low=2))                  # pilot samples per level
    qmc: bool = option(Bool(True))                       # randomized QMC (scrambled Sobol') normals
    qmc_replicates: int = option(Int(16, low=2))         # independent randomizations (error estimate)
    qmc_dims: int = option(Int(1024, low=1))             # Sobol' dimensions (heaviest modes), rest pseudo-random
    seed: int = option(Int(1, low=0))
    max_cost_s: float = option(Float(600.0, low=0.0, low_open=True))  # sampling budget in seconds
    batch: int = option(Int(256, low=1))                 # FEM samples per recorded batch
    model: str | None = option(Maybe(Text()))            # surrogate control variate (a model dir/file); null: none
    device: str = option(Choice("auto", DEVICES))       # device of the surrogate
    records: str | None = option(Maybe(Text(), "records/uq"))  # folder of the resumable records (null: none)

    def validate(self) -> None:
        if (self.rtol is None) == (self.atol is None):
            raise ConfigError(f"uq.rtol/uq.atol: {self.rtol!r}/{self.atol!r}; need exactly one of them set (the "
                              "other null): the tolerance on the root-mean-square error of E[Q]")
        if self.n is not None and self.n < self.n_min:
            raise ConfigError(f"uq.n: {self.n} is not allowed; need n >= uq.n_min = {self.n_min}")
        if not math.isfinite(self.max_cost_s):
            raise ConfigError("uq.max_cost_s: need a finite number of seconds")


def resolve_uq(params: str | Path | Mapping | None = None, overrides: list[str] | tuple[str, ...] = (),
               **flags: Any) -> tuple[UQConfig, dict]:
    """(the ``uq`` section with command-line ``flags`` on top, the raw params tree for the ``darcy`` section).

    ``rtol``/``atol`` given on the command line replace the other (one tolerance at a time).
    """
    tree = read_params(params, overrides, sections=(*SECTIONS, "uq", "darcy", "poisson"))
    raw = dict(tree.get("uq") or {})
    given = {k: v for k, v in flags.items() if v is not None}
    if "rtol" in given:
        raw["atol"] = None
    if "atol" in given:
        raw["rtol"] = None
    return UQConfig.from_mapping({**raw, **given}), tree
