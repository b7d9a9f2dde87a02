"""Reading ``params.yaml`` and applying ``-S KEY=VALUE`` overrides; the one rule for finding the file.

Every command line of the project reads its parameters the same way
(:func:`params_path`): the ``--params`` file when given, else
``./params.yaml`` when the working directory has one, else the built-in
defaults (which equal the repository's ``params.yaml``, a test says so).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from params.specs import ConfigError

#: The file every command reads when ``--params`` is not given and the working directory has it.
DEFAULT_FILE = "params.yaml"


def params_path(given: str | Path | None) -> str | Path | None:
    """The params file a command reads: ``given`` (``--params``), else ``./params.yaml`` if it exists, else None
    (the built-in defaults)."""
    if given is not None:
        return given
    return DEFAULT_FILE if Path(DEFAULT_FILE).exists() else None


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
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.YAMLError as err:
        raise ConfigError(f"{what} is not valid YAML: {_yaml_problem(err)}") from None


def _yaml_problem(err: yaml.YAMLError) -> str:
    """``line L, column C: what is wrong`` of a YAML error (its first line when it has no place)."""
    mark = getattr(err, "problem_mark", None)
    problem = " ".join(filter(None, (getattr(err, "context", None), getattr(err, "problem", None))))
    if mark is None or not problem:
        return str(err).strip().splitlines()[0]
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


def flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"fas": {"match": "after"}}}`` -> ``{"train.fas.match": "after"}``: the dotted keys of ``-S``
    (``prefix`` ends with its dot); an empty mapping sets nothing; already dotted keys stay as they are."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


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

