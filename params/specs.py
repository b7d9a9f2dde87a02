"""The specs of the config layer: a key's default and its check, in one place.

A spec (:class:`Int`, :class:`Float`, :class:`Range`, :class:`Choice`,
:class:`Bool`, :class:`IntList`, :class:`ConvList`) holds a key's default
and its check. A bad value raises :class:`ConfigError` with the key, the
value and what is allowed, e.g. ``poisson.kx: range [4.0, 0.5] is inverted;
need low < high``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A parameter, path or store that cannot be used, with a message for the user."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_number(value: Any) -> Any:
    """YAML 1.1 reads ``1e-6`` (no dot) as a string: take such strings as the number they spell."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value



#: Largest seed: what every generator of the project (numpy SeedSequence, torch.manual_seed) accepts.
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class Int:
    """An integer in [``low``, ``high``] (an integer-valued float such as ``200.0`` is accepted); with ``auto``,
    also "auto"."""

    default: int | str
    low: int | None = None
    auto: bool = False
    high: int | None = None

    def check(self, key: str, value: Any) -> int | str:
        bounds = [f">= {self.low}"] * (self.low is not None) + [f"<= {self.high}"] * (self.high is not None)
        need = " ".join(["an integer", " and ".join(bounds)]).strip() + (" or auto" if self.auto else "")
        if self.auto and value == "auto":
            return value
        value = _as_number(value)
        if not _is_number(value) or (isinstance(value, float) and not value.is_integer()):
            raise ConfigError(f"{key}: {value!r} is not an integer; need {need}")
        if self.low is not None and value < self.low:
            raise ConfigError(f"{key}: {int(value)} is too small; need {need}")
        if self.high is not None and value > self.high:
            raise ConfigError(f"{key}: {int(value)} is too large; need {need}")
        return int(value)


def Seed(default: int) -> Int:  # a spec, named like the spec classes
    """A seed: an integer in [0, :data:`MAX_SEED`]."""
    return Int(default, low=0, high=MAX_SEED)


@dataclass(frozen=True)
class Float:
    """A finite number between ``low`` and ``high`` (each bound optional, open when ``*_open``)."""

    default: float
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def _allowed(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        return "a finite number" + (" " + " and ".join(parts) if parts else "")

    def check(self, key: str, value: Any) -> float:
        value = _as_number(value)
        if not _is_number(value) or not math.isfinite(value):
            raise ConfigError(f"{key}: {value!r} is not allowed; need {self._allowed()}")
        too_low = self.low is not None and (value < self.low or (self.low_open and value == self.low))
        too_high = self.high is not None and (value > self.high or (self.high_open and value == self.high))
        if too_low or too_high:
            raise ConfigError(f"{key}: {value:g} is out of bounds; need {self._allowed()}")
        return float(value)


@dataclass(frozen=True)
class Range:
    """A sampling interval ``[low, high]`` with low < high, inside [``lower``, ``upper``]."""

    default: tuple[float, float]
    lower: float | None = None
    upper: float | None = None

    def check(self, key: str, value: Any) -> list[float]:
        if isinstance(value, list | tuple):
            value = [_as_number(v) for v in value]
        if not isinstance(value, list) or len(value) != 2 or not all(_is_number(v) for v in value):
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
    """One of a fixed set of values."""

    default: Any
    choices: tuple[Any, ...]

    def check(self, key: str, value: Any) -> Any:
        if value not in self.choices:
            raise ConfigError(f"{key}: {value!r} is not allowed; need one of {', '.join(map(str, self.choices))}")
        return value


@dataclass(frozen=True)
class Bool:
    """``true`` or ``false``."""

    default: bool

    def check(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: {value!r} is not allowed; need true or false")
        return value


@dataclass(frozen=True)
class IntList:
    """A list of positive integers (layer widths); empty only if ``allow_empty``."""

    default: tuple[int, ...]
    allow_empty: bool = False

    def check(self, key: str, value: Any) -> list[int]:
        need = "a list of positive integers" + ("" if self.allow_empty else " (at least one)")
        if not isinstance(value, list | tuple) or (not value and not self.allow_empty):
            raise ConfigError(f"{key}: {value!r} is not allowed; need {need}")
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
            raise ConfigError(f"{key}: {value!r} is not allowed; need {need}")
        return [int(v) for v in value]


@dataclass(frozen=True)
class ConvList:
    """A non-empty list of ``[channels, kernel, stride]`` triples of positive integers."""

    default: tuple[tuple[int, int, int], ...]

    def check(self, key: str, value: Any) -> list[list[int]]:
        need = "a non-empty list of [channels, kernel, stride] triples of positive integers"
        if not isinstance(value, list | tuple) or not value:
            raise ConfigError(f"{key}: {value!r} is not allowed; need {need}")
        out = []
        for layer in value:
            if isinstance(layer, Mapping):
                layer = [layer.get("channels"), layer.get("kernel"), layer.get("stride", 1)]
            if not isinstance(layer, list | tuple) or len(layer) != 3 or any(
                isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in layer
            ):
                raise ConfigError(f"{key}: {value!r} is not allowed; need {need}")
            out.append([int(v) for v in layer])
        return out


Spec = Int | Float | Range | Choice | Bool | IntList | ConvList
