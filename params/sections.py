"""Typed config sections: frozen dataclasses whose fields are specs, checked when built."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from params.specs import ConfigError, Spec


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



def resolve_specs(section: str, raw: Any, specs: Mapping[str, Spec]) -> dict[str, Any]:
    """Merge ``raw`` (a section of params.yaml) over the defaults of ``specs`` and check each key."""
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{section}: must be a mapping of keys, got {type(raw).__name__}")
    if set(raw) - set(specs):
        raise _unknown(section, set(raw) - set(specs), specs)
    return {key: spec.check(f"{section}.{key}", raw.get(key, spec.default)) for key, spec in specs.items()}
