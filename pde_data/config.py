"""The validated config layer: read ``params.yaml``, merge defaults, check every key.

A section of ``params.yaml`` is resolved against a dict of specs (key -> spec).
Each spec holds the default and checks a value; a bad value raises
:class:`ConfigError` with the key, the value and what is allowed, e.g.
``poisson.kx: range [4.0, 0.5] is inverted; need low < high``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A parameter, path or store that cannot be used, with a message for the user."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Int:
    """An integer >= ``low``."""

    default: int
    low: int

    def check(self, key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: {value!r} is not an integer; need an integer >= {self.low}")
        if value < self.low:
            raise ConfigError(f"{key}: {value} is too small; need an integer >= {self.low}")
        return int(value)


@dataclass(frozen=True)
class Float:
    """A finite number in [``low``, ``high``] (either bound may be open-ended)."""

    default: float
    low: float | None = None
    high: float | None = None

    def _allowed(self) -> str:
        lo = "-inf" if self.low is None else self.low
        hi = "inf" if self.high is None else self.high
        return f"a finite number in [{lo}, {hi}]"

    def check(self, key: str, value: Any) -> float:
        if not _is_number(value) or not math.isfinite(value):
            raise ConfigError(f"{key}: {value!r} is not allowed; need {self._allowed()}")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise ConfigError(f"{key}: {value} is out of bounds; need {self._allowed()}")
        return float(value)


@dataclass(frozen=True)
class Range:
    """A sampling interval ``[low, high]`` with low < high, inside [``lower``, ``upper``]."""

    default: tuple[float, float]
    lower: float | None = None
    upper: float | None = None

    def check(self, key: str, value: Any) -> list[float]:
        if not isinstance(value, list | tuple) or len(value) != 2 or not all(_is_number(v) for v in value):
            raise ConfigError(f"{key}: {value!r} is not a range; need a list [low, high] of two numbers")
        low, high = float(value[0]), float(value[1])
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ConfigError(f"{key}: range [{low}, {high}] is not finite; need finite numbers")
        if low == high:
            raise ConfigError(f"{key}: range [{low}, {high}] is empty; need low < high")
        if low > high:
            raise ConfigError(f"{key}: range [{low}, {high}] is inverted; need low < high")
        if (self.lower is not None and low < self.lower) or (self.upper is not None and high > self.upper):
            raise ConfigError(
                f"{key}: range [{low}, {high}] leaves the allowed interval [{self.lower}, {self.upper}]"
            )
        return [low, high]


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of strings."""

    default: str
    choices: tuple[str, ...]

    def check(self, key: str, value: Any) -> str:
        if value not in self.choices:
            raise ConfigError(f"{key}: {value!r} is not allowed; need one of {', '.join(self.choices)}")
        return value


Spec = Int | Float | Range | Choice

#: Keys of every problem section that drive the generation run, not the solver.
GENERATE: dict[str, Spec] = {
    "samples": Int(256, low=1),  # number of samples in the store
    "seed": Int(0, low=0),  # sample i is drawn from SeedSequence((seed, i))
    "chunk": Int(128, low=1),  # samples per Zarr chunk (the unit of work and of resume)
}


def load_params(path: str | Path | None) -> dict[str, Any]:
    """Read a ``params.yaml`` file into a dict; ``None`` means all defaults."""
    if path is None:
        return {}
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"--params: cannot read {path}: {err.strerror or err}") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"--params: {path} is not valid YAML: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--params: {path} must hold a mapping of sections, got {type(data).__name__}")
    return data


def resolve(section: str, raw: Any, specs: dict[str, Spec]) -> dict[str, Any]:
    """Merge ``raw`` (a section of params.yaml) over the defaults of ``specs`` and check each key."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{section}: must be a mapping of keys, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(specs))
    if unknown:
        raise ConfigError(f"{section}.{unknown[0]}: unknown key; allowed keys are {', '.join(specs)}")
    return {key: spec.check(f"{section}.{key}", raw.get(key, spec.default)) for key, spec in specs.items()}


def problem_config(params: dict[str, Any], problem: str, family_specs: dict[str, Spec]) -> tuple[dict, dict]:
    """Split and check the ``problem`` section: (family keyword arguments, generation settings)."""
    resolved = resolve(problem, params.get(problem), {**family_specs, **GENERATE})
    family = {key: resolved[key] for key in family_specs}
    generate = {key: resolved[key] for key in GENERATE}
    return family, generate
