"""Validated configuration for ``surrogate train`` / ``surrogate evaluate``.

Every knob lives in ``params.yaml``; this module reads the sections that the
``surrogate`` package owns (``data``, ``models``, ``train``), fills in the
defaults below, applies ``-S key=value`` overrides and validates every key.
A bad key or value fails at once with a :class:`ConfigError` whose message
names the key, the value and what is allowed.  Other top-level sections of
``params.yaml`` (the generator sections ``poisson:``/``darcy:``, ...) are
ignored here.

The result of :func:`resolve` is a plain, JSON-able ``dict`` (stored verbatim
in checkpoints and model files)::

    {"problem": "poisson"|"darcy",
     "data":  {...},                      # the data section
     "model": {"kind": "mlp"|"cnn", ...}, # models.<problem>.<kind>
     "train": {...}}                      # train, with train.by_problem.<problem> merged in
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

PROBLEMS = ("poisson", "darcy")
MODEL_KINDS = ("mlp", "cnn")
TRAINERS = ("sgd", "adam", "fas")
OWN_SECTIONS = ("data", "models", "train")


class ConfigError(ValueError):
    """A parameter has an unknown key or a value that is not allowed."""


# --------------------------------------------------------------------------
# defaults (kept in sync with the sections in params.yaml; the paper's sizes
# are documented there)
# --------------------------------------------------------------------------
DEFAULTS: dict[str, Any] = {
    "data": {
        # contiguous blocks of sample indices: [0, train), [train, train+val), rest
        "split": {"train": 0.8, "val": 0.1, "test": 0.1},
        # arrays that fit are loaded onto the training device; otherwise streamed by chunk
        "memory_budget_mb": 2048.0,
        "allow_incomplete": False,
        "normalize": True,
        # Darcy target: "Q" (outflow QoI), "p" (pressure field) or "Q+p"
        "darcy_target": "Q",
        "eval_batch_size": 1000,
    },
    "models": {
        "poisson": {
            "mlp": {"hidden": [64, 64]},
            "cnn": {"conv": [[16, 7, 2], [16, 7, 2]], "fc": [64, 64]},
        },
        "darcy": {
            "mlp": {"hidden": [128, 128, 128]},
            "cnn": {"conv": [[8, 11, 2], [16, 7, 1], [32, 3, 1]], "fc": [128, 128]},
        },
    },
    "train": {
        "trainer": "fas",
        "budget_wu": 200.0,
        "work_measure": "paper",
        "batch_size": 200,
        "lr": 0.01,
        "momentum": 0.9,
        "weight_decay": 0.0,
        "seed": 0,
        "device": "auto",
        "eval_every_wu": 10.0,
        "checkpoint_every_wu": 50.0,
        "eval_train_samples": 256,
        "best_metric": "mse",
        "fas": {
            "levels": 2,
            "cycle": "V",
            "smoother": "sgd",
            "pre": 4,
            "coarse": 4,
            "post": 4,
            "tau": "minibatch",
            "alpha_p": 1.0,
            "alpha_m": 0.2,
            "gamma": 0.125,
            "eta": 2.0 * math.sqrt(2.0),
            "theta": 0.0,
            "interpolation": "plain",
            "order": "natural",
            "rematch_every": 50,
        },
        "by_problem": {"poisson": {}, "darcy": {"weight_decay": 1e-6,
                                                "fas": {"pre": 2, "coarse": 2, "post": 2, "rematch_every": 10}}},
    },
}


# --------------------------------------------------------------------------
# leaf validators: f(key, value) -> normalised value, raising ConfigError
# --------------------------------------------------------------------------
def _fail(key: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"{key} = {value!r}: {allowed}")


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def num(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
        hi_open: bool = False) -> Callable[[str, Any], float]:
    def check(key: str, v: Any) -> float:
        desc = "must be a number"
        if lo is not None:
            desc += f" {'>' if lo_open else '>='} {lo}"
        if hi is not None:
            desc += f"{' and' if lo is not None else ''} {'<' if hi_open else '<='} {hi}"
        if isinstance(v, str):  # PyYAML reads ``1e-6`` (no dot) as a string
            try:
                v = float(v)
            except ValueError:
                _fail(key, v, desc)
        if not _is_num(v) or not math.isfinite(v):
            _fail(key, v, desc)
        if lo is not None and (v < lo or (lo_open and v == lo)):
            _fail(key, v, desc)
        if hi is not None and (v > hi or (hi_open and v == hi)):
            _fail(key, v, desc)
        return float(v)
    return check


def integer(lo: int | None = None) -> Callable[[str, Any], int]:
    def check(key: str, v: Any) -> int:
        desc = "must be an integer" + (f" >= {lo}" if lo is not None else "")
        if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, float) and v.is_integer())):
            _fail(key, v, desc)
        v = int(v)
        if lo is not None and v < lo:
            _fail(key, v, desc)
        return v
    return check


def choice(*allowed: Any) -> Callable[[str, Any], Any]:
    def check(key: str, v: Any) -> Any:
        if v not in allowed:
            _fail(key, v, "allowed: " + ", ".join(repr(a) for a in allowed))
        return v
    return check


def boolean(key: str, v: Any) -> bool:
    if not isinstance(v, bool):
        _fail(key, v, "must be true or false")
    return v


def int_list(key: str, v: Any, *, allow_empty: bool = False) -> list[int]:
    desc = "must be a list of positive integers" + ("" if allow_empty else " (at least one)")
    if not isinstance(v, (list, tuple)) or (not v and not allow_empty):
        _fail(key, v, desc)
    out = []
    for x in v:
        if isinstance(x, bool) or not isinstance(x, int) or x < 1:
            _fail(key, v, desc)
        out.append(int(x))
    return out


def conv_list(key: str, v: Any) -> list[list[int]]:
    desc = "must be a non-empty list of [channels, kernel, stride] triples of positive integers"
    if not isinstance(v, (list, tuple)) or not v:
        _fail(key, v, desc)
    out = []
    for layer in v:
        if isinstance(layer, Mapping):
            layer = [layer.get("channels"), layer.get("kernel"), layer.get("stride", 1)]
        if not isinstance(layer, (list, tuple)) or len(layer) != 3:
            _fail(key, v, desc)
        for x in layer:
            if isinstance(x, bool) or not isinstance(x, int) or x < 1:
                _fail(key, v, desc)
        out.append([int(x) for x in layer])
    return out


_FAS_SPEC = {
    "levels": integer(1),
    "cycle": choice("V", "W", "F"),
    "smoother": choice("sgd", "adam"),
    "pre": integer(0),
    "coarse": integer(1),
    "post": integer(0),
    "tau": choice("minibatch", "none", "wholeset"),
    "alpha_p": num(0.0, 1.0, lo_open=True),
    "alpha_m": num(0.0, 1.0),
    "gamma": num(0.0, 1.0),
    "eta": num(0.0, lo_open=True),
    "theta": num(0.0, 1.0),
    "interpolation": choice("plain", "rownorm"),
    "order": choice("natural", "random"),
    "rematch_every": integer(1),
}

_TRAIN_SPEC: dict[str, Any] = {
    "trainer": choice(*TRAINERS),
    "budget_wu": num(0.0, lo_open=True),
    "work_measure": choice("paper", "flops"),
    "batch_size": integer(1),
    "lr": num(0.0, lo_open=True),
    "momentum": num(0.0, 1.0, hi_open=True),
    "weight_decay": num(0.0),
    "seed": integer(0),
    "device": choice("auto", "cpu", "cuda"),
    "eval_every_wu": num(0.0, lo_open=True),
    "checkpoint_every_wu": num(0.0, lo_open=True),
    "eval_train_samples": integer(0),
    "best_metric": choice("mse", "linf"),
    "fas": _FAS_SPEC,
}

_MODEL_SPEC = {
    "mlp": {"hidden": int_list},
    "cnn": {"conv": conv_list, "fc": lambda k, v: int_list(k, v, allow_empty=True)},
}

SPEC: dict[str, Any] = {
    "data": {
        "split": {"train": num(0.0, 1.0, lo_open=True), "val": num(0.0, 1.0, lo_open=True),
                  "test": num(0.0, 1.0)},
        "memory_budget_mb": num(0.0),
        "allow_incomplete": boolean,
        "normalize": boolean,
        "darcy_target": choice("Q", "p", "Q+p"),
        "eval_batch_size": integer(1),
    },
    "models": {p: _MODEL_SPEC for p in PROBLEMS},
    "train": dict(_TRAIN_SPEC, by_problem={p: _TRAIN_SPEC for p in PROBLEMS}),
}


# --------------------------------------------------------------------------
# merging / validation
# --------------------------------------------------------------------------
def _merge(base: dict, over: Mapping, prefix: str) -> dict:
    """Deep-merge ``over`` into a copy of ``base``; keys of ``over`` must exist in ``base``."""
    out = copy.deepcopy(base)
    if not isinstance(over, Mapping):
        raise ConfigError(f"{prefix or 'params'} = {over!r}: must be a mapping of keys to values")
    for k, v in over.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if k not in out:
            raise ConfigError(f"unknown key {key!r} (allowed here: {', '.join(sorted(map(str, out)))})")
        if isinstance(out[k], dict) and prefix != "train.by_problem":
            out[k] = _merge(out[k], v if v is not None else {}, key)
        elif isinstance(out[k], dict):
            # by_problem.<p>: a partial train section that replaces the default one;
            # validated later against the train spec
            if v is not None and not isinstance(v, Mapping):
                raise ConfigError(f"{key} = {v!r}: must be a mapping of keys to values")
            out[k] = copy.deepcopy(dict(v or {}))
        else:
            out[k] = v
    return out


def _validate(cfg: Mapping, spec: Mapping, prefix: str, partial: bool = False) -> dict:
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if k not in spec:
            raise ConfigError(f"unknown key {key!r} (allowed here: {', '.join(sorted(spec))})")
        sub = spec[k]
        if isinstance(sub, Mapping):
            if not isinstance(v, Mapping):
                raise ConfigError(f"{key} = {v!r}: must be a mapping with keys {', '.join(sorted(sub))}")
            out[k] = _validate(v, sub, key, partial or k == "by_problem")
        else:
            out[k] = sub(key, v)
    if not partial:
        missing = [k for k in spec if k not in cfg]
        if missing:
            raise ConfigError(f"{prefix or 'params'}: missing keys {', '.join(missing)}")
    return out


def _check_split(split: Mapping) -> None:
    total = split["train"] + split["val"] + split["test"]
    if abs(total - 1.0) > 1e-9:
        raise ConfigError(
            f"data.split = {dict(split)!r}: the fractions train + val + test must add up to 1 (they add up to {total:g})")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``'train.fas.gamma=0.1'`` -> (['train', 'fas', 'gamma'], 0.1) (value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. train.lr=0.01")
    key, _, raw = text.partition("=")
    path = [p for p in key.strip().split(".") if p]
    if not path or path[0] not in OWN_SECTIONS:
        raise ConfigError(f"override {text!r}: the key must start with one of {', '.join(OWN_SECTIONS)}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from None
    return path, value


def _set_path(tree: dict, path: list[str], value: Any) -> None:
    node = tree
    for p in path[:-1]:
        nxt = node.get(p)
        if nxt is None:
            nxt = node[p] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"override {'.'.join(path)}: {p!r} is not a section")
        node = nxt
    node[path[-1]] = value


def read_params(path: str | Path | None) -> dict:
    """Read ``params.yaml`` (or return {} when ``path`` is None)."""
    if path is None:
        return {}
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"params file {str(path)!r} does not exist") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"params file {str(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"params file {str(path)!r}: expected a mapping at the top level")
    return data


def load_sections(params: Mapping | str | Path | None = None,
                  overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """Defaults + our sections of ``params`` + overrides, validated (all problems)."""
    if params is None or isinstance(params, (str, Path)):
        params = read_params(params)
    own = {k: copy.deepcopy(params[k]) for k in OWN_SECTIONS if k in params and params[k] is not None}
    for text in overrides:
        path, value = parse_override(text)
        _set_path(own, path, value)
    merged = _merge(DEFAULTS, own, "")
    cfg = _validate(merged, SPEC, "")
    _check_split(cfg["data"]["split"])
    return cfg


def resolve(params: Mapping | str | Path | None = None, *, problem: str, model: str | None = None,
            trainer: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """The run configuration for one (problem, model, trainer), validated.

    ``model``/``trainer`` are the CLI's ``--model``/``--trainer``; they default
    to ``mlp`` and ``train.trainer``.  ``sgd``/``adam`` train one level
    (``fas.levels`` is forced to 1); ``fas`` needs ``fas.levels >= 2``.
    """
    choice(*PROBLEMS)("problem", problem)
    if model is not None:
        choice(*MODEL_KINDS)("model", model)
    if trainer is not None:
        choice(*TRAINERS)("trainer", trainer)
    cfg = load_sections(params, overrides)
    train = {k: v for k, v in cfg["train"].items() if k != "by_problem"}
    train = _validate(_merge(train, cfg["train"]["by_problem"].get(problem, {}),
                             f"train.by_problem.{problem}"), _TRAIN_SPEC, "train")
    if trainer is not None:
        train["trainer"] = trainer
    if train["trainer"] != "fas":
        train["fas"] = dict(train["fas"], levels=1)
    elif train["fas"]["levels"] < 2:
        raise ConfigError(f"train.fas.levels = {train['fas']['levels']!r}: the fas trainer needs levels >= 2 "
                          "(use trainer sgd or adam for one-level training)")
    kind = model or "mlp"
    model_cfg = {"kind": kind, **copy.deepcopy(cfg["models"][problem][kind])}
    return {"problem": problem, "data": cfg["data"], "model": model_cfg, "train": train}


def diff(a: Mapping, b: Mapping, prefix: str = "") -> list[str]:
    """Keys (dotted) whose values differ between two nested dicts."""
    out = []
    for k in sorted(set(a) | set(b)):
        key = f"{prefix}.{k}" if prefix else str(k)
        va, vb = a.get(k), b.get(k)
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            out += diff(va, vb, key)
        elif va != vb:
            out.append(key)
    return out
