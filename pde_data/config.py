"""The one config layer of the project: read ``params.yaml``, apply ``-S`` overrides, check every key.

Both packages build their settings from the tree :func:`read_params` returns:

- ``pde_data`` resolves a problem section against the family's dict of specs
  (:func:`problem_config`);
- ``surrogate`` builds typed :class:`Section` dataclasses (``surrogate.config``).

A spec (:class:`Int`, :class:`Float`, :class:`Range`, :class:`Choice`,
:class:`Bool`, :class:`IntList`, :class:`ConvList`) holds a key's default
and its check, in one place. A bad value raises :class:`ConfigError` with
the key, the value and what is allowed, e.g.
``poisson.kx: range [4.0, 0.5] is inverted; need low < high``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml


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


# --------------------------------------------------------------------------
# specs: a default and a check each
# --------------------------------------------------------------------------
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


def Seed(default: int) -> Int:  # noqa: N802 - a spec, named like the spec classes
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


# --------------------------------------------------------------------------
# typed sections
# --------------------------------------------------------------------------
def option(spec: Spec) -> Any:
    """A :class:`Section` field whose default and check are ``spec``."""
    return dataclasses.field(default_factory=lambda: copy.deepcopy(_plain_default(spec.default)),
                             metadata={"spec": spec})


def subsection(cls: type[Section]) -> Any:
    """A :class:`Section` field holding a nested section (defaults: ``cls()``)."""
    return dataclasses.field(default_factory=cls, metadata={"section": cls})


def _plain_default(default: Any) -> Any:
    """Tuples of a spec's default as the lists the check returns."""
    if isinstance(default, tuple):
        return [_plain_default(v) for v in default]
    return default


def _unknown(prefix: str, unknown: Iterable[str], allowed: Iterable[str]) -> ConfigError:
    key = sorted(map(str, unknown))[0]
    return ConfigError(f"{prefix}.{key}: unknown key; allowed keys are {', '.join(allowed)}")


@dataclass(frozen=True)
class Section:
    """Base of a typed config section: every field is an :func:`option` or a :func:`subsection`.

    Constructing one checks every field (so a section built in Python is as
    safe as one read from YAML) and then :meth:`validate` (checks across
    keys). :data:`PREFIX` is the section's dotted key in ``params.yaml``.
    """

    PREFIX: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            spec = f.metadata.get("spec")
            if spec is not None:
                object.__setattr__(self, f.name, spec.check(f"{self.PREFIX}.{f.name}", getattr(self, f.name)))
        self.validate()

    def validate(self) -> None:
        """Checks across keys; raise :class:`ConfigError`."""

    @classmethod
    def from_mapping(cls, raw: Any, prefix: str | None = None) -> Section:
        """Build from a (partial) mapping of ``params.yaml``; missing keys take their defaults."""
        prefix = prefix or cls.PREFIX
        raw = {} if raw is None else raw
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{prefix}: {raw!r} is not allowed; need a mapping of keys to values")
        names = [f.name for f in dataclasses.fields(cls)]
        if set(raw) - set(names):
            raise _unknown(prefix, set(raw) - set(names), names)
        values = {}
        for f in dataclasses.fields(cls):
            if f.name not in raw:
                continue
            key = f"{prefix}.{f.name}"
            if "section" in f.metadata:
                values[f.name] = f.metadata["section"].from_mapping(raw[f.name], key)
            else:  # checked here to name the key under ``prefix`` (e.g. train.by_problem.darcy.lr)
                values[f.name] = f.metadata["spec"].check(key, raw[f.name])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able nested dict of the values (what checkpoints and model files record)."""
        return dataclasses.asdict(self)


def replace(section: Section, **changes: Any) -> Section:
    """A copy of ``section`` with ``changes`` applied and checked."""
    names = [f.name for f in dataclasses.fields(section)]
    if set(changes) - set(names):
        raise _unknown(section.PREFIX, set(changes) - set(names), names)
    return dataclasses.replace(section, **changes)


# --------------------------------------------------------------------------
# params.yaml and -S overrides
# --------------------------------------------------------------------------
class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing what a params file never needs: aliases (``*name``, the way to a
    "billion laughs" bomb) and a key given twice in one mapping (YAML would keep the last silently)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(None, None, f"alias *{event.anchor} is not allowed (write the value out)",
                                       event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.MarkedYAMLError(None, None, f"key {key!r} is given twice in one mapping",
                                           key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_yaml(text: str, what: str) -> Any:
    """Parse ``text`` with :class:`_StrictLoader`; a ConfigError names ``what`` and the place."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise ConfigError(f"{what} is not valid YAML: {_yaml_problem(err)}") from None


def _yaml_problem(err: yaml.YAMLError) -> str:
    """``line L, column C: what is wrong`` of a YAML error (its first line when it has no place)."""
    mark = getattr(err, "problem_mark", None)
    problem = " ".join(filter(None, (getattr(err, "context", None), getattr(err, "problem", None))))
    if mark is None or not problem:
        return str(err).strip().splitlines()[0]
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


def parse_override(text: str) -> tuple[list[str], Any]:
    """``'train.fas.gamma=0.1'`` -> (['train', 'fas', 'gamma'], 0.1); the value is parsed as YAML."""
    key, sep, raw = text.partition("=")
    path = key.strip().split(".")
    if not sep or len(path) < 2 or not all(part.strip() for part in path):
        raise ConfigError(f"-S {text!r}: need SECTION.KEY=VALUE with no empty key between dots, e.g. train.lr=0.01")
    value = load_yaml(raw, f"-S {text!r}: the value") if raw.strip() else None
    return [part.strip() for part in path], value


def _set_path(tree: dict, path: list[str], value: Any, text: str) -> None:
    node = tree
    for part in path[:-1]:
        if node.get(part) is None:
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise ConfigError(f"-S {text!r}: {part!r} is a value, not a section")
    node[path[-1]] = value


def read_params(path: str | Path | Mapping | None, overrides: Iterable[str] = (),
                sections: Iterable[str] | None = None) -> dict[str, Any]:
    """The raw ``params.yaml`` tree with ``-S KEY=VALUE`` overrides applied (``None``: all defaults).

    ``sections``: the top-level sections an override may name (a typo such as
    ``trian.lr`` fails at once instead of being ignored).
    """
    if path is None:
        data: Any = {}
    elif isinstance(path, Mapping):
        data = copy.deepcopy(dict(path))
    else:
        path = Path(path)
        data = load_yaml(_read_text(path), f"--params: {path}")
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise ConfigError(f"--params: {path} must hold a mapping of sections, got {type(data).__name__}")
    allowed = None if sections is None else list(sections)
    for text in overrides:
        keys, value = parse_override(text)
        if allowed is not None and keys[0] not in allowed:
            raise ConfigError(f"-S {text!r}: unknown section {keys[0]!r}; need one of {', '.join(allowed)}")
        _set_path(data, keys, value, text)
    return data


#: Largest params file read (a params.yaml is a few kB; anything near this is not one).
MAX_PARAMS_BYTES = 2**20


def _read_text(path: Path) -> str:
    """The UTF-8 text of the params file ``path``; a ConfigError when it is missing, too large or binary."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_PARAMS_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"--params: {path} does not exist") from None
    except OSError as err:
        raise ConfigError(f"--params: cannot read {path}: {err.strerror or err}") from None
    if len(raw) > MAX_PARAMS_BYTES:
        raise ConfigError(f"--params: {path} is larger than {MAX_PARAMS_BYTES // 2**20} MiB; not a params file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"--params: {path} is not a UTF-8 text file (byte {err.start}); need a YAML params "
                          "file") from None


def resolve(section: str, raw: Any, specs: Mapping[str, Spec]) -> dict[str, Any]:
    """Merge ``raw`` (a section of params.yaml) over the defaults of ``specs`` and check each key."""
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{section}: must be a mapping of keys, got {type(raw).__name__}")
    if set(raw) - set(specs):
        raise _unknown(section, set(raw) - set(specs), specs)
    return {key: spec.check(f"{section}.{key}", raw.get(key, spec.default)) for key, spec in specs.items()}


#: Keys of every problem section that drive the generation run, not the solver.
GENERATE: dict[str, Spec] = {
    "samples": Int(256, low=1),  # number of samples in the store
    "seed": Seed(0),  # sample i is drawn from SeedSequence((seed, i))
    "chunk": Int("auto", low=1, auto=True),  # samples per Zarr chunk (the unit of work and of resume); auto:
    # pde_data.chunks.auto_chunk (about 2 MiB of the largest per-sample array, at least 8 chunks)
}


def problem_config(params: Mapping[str, Any], problem: str, family_specs: Mapping[str, Spec]) -> tuple[dict, dict]:
    """Split and check the ``problem`` section: (family keyword arguments, generation settings)."""
    resolved = resolve(problem, params.get(problem), {**family_specs, **GENERATE})
    family = {key: resolved[key] for key in family_specs}
    generate = {key: resolved[key] for key in GENERATE}
    return family, generate


def writable_dir(path: str | Path, flag: str) -> Path:
    """Create ``path`` (a directory) if needed and check that files can be written in it, before any work."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"{flag} {path}: cannot write there ({err.strerror or err})") from None
    return path
