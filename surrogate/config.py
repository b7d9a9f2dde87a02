"""Typed, checked configuration of ``surrogate train|evaluate|mc``: one section class per concern.

``params.yaml`` sections owned here (each key's default and check live in
its section class, nowhere else):

- ``data``   -> :class:`DataConfig` (split, memory budget, normalisation, target per problem)
- ``models`` -> :class:`MLPConfig` / :class:`CNNConfig` / :class:`UNetConfig` / :class:`FNOConfig` per problem
  (``models.PROBLEM.KIND``)
- ``train``  -> :class:`TrainConfig` (with ``train.fas`` ->
  :class:`surrogate.multilevel.FASConfig`); ``train.by_problem.PROBLEM``
  and then ``train.by_trainer.TRAINER`` override any train key for one
  problem or one trainer
- ``mc``     -> :class:`MCConfig`

:func:`load` reads the file and the ``-S KEY=VALUE`` overrides once
(:func:`params.read_params`) and checks every section;
:meth:`Params.run` gives the :class:`RunConfig` of one (problem, model,
trainer). Errors are :class:`params.ConfigError`, naming the key,
the value and what is allowed.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from params import (
    Bool,
    Choice,
    ConfigError,
    ConvList,
    Float,
    Int,
    IntList,
    Range,
    Section,
    Seed,
    flatten,
    option,
    read_params,
    subsection,
)
from pde_data.fields import FIELD_PARAMS, check_field_params
from pde_data.problems import PROBLEMS, get_problem
from surrogate.multilevel.config import FASConfig, GrowthConfig, OptimizerConfig

__all__ = ["MODELS", "SECTIONS", "TRAINERS", "CNNConfig", "ConfigError", "DataConfig", "FNOConfig", "MCConfig",
           "MLPConfig", "Params", "RunConfig", "TrainConfig", "UNetConfig", "diff", "load", "resolve", "resolve_mc"]

#: The sections of params.yaml that ``surrogate`` reads.
SECTIONS = ("data", "models", "train", "mc", "tune")
TRAINERS = ("sgd", "adam", "adamw", "fas")
SCHEDULES = ("constant", "cosine", "warmup_cosine")
DEVICES = ("auto", "cpu", "cuda")


def _spec(cls: type[Section], name: str):
    """The spec of ``cls.name``, for a key that two sections share (checked by the one spec)."""
    return cls.__dataclass_fields__[name].metadata["spec"]


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class SplitConfig(Section):
    """Contiguous blocks of sample indices [0, N): train, then val, then test."""

    PREFIX = "data.split"
    train: float = option(Float(0.8, low=0.0, high=1.0, low_open=True))
    val: float = option(Float(0.1, low=0.0, high=1.0, low_open=True))
    test: float = option(Float(0.1, low=0.0, high=1.0))

    def validate(self) -> None:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-9:
            raise ConfigError(f"{self.PREFIX}: {self.to_dict()!r} is not allowed; the fractions train + val + "
                              f"test must add up to 1 (they add up to {total:g})")


@dataclass(frozen=True)
class TargetChoice:
    """``data.target``: problem -> target choice of the registry (missing problems: its default)."""

    default: dict

    def check(self, key: str, value: Any) -> dict[str, str]:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: {value!r} is not allowed; need a mapping problem -> target, e.g. {{darcy: Q}}")
        for problem, target in value.items():
            choices = get_problem(problem).targets
            if target not in choices:
                raise ConfigError(f"{key}.{problem}: {target!r} is not allowed; need one of {', '.join(choices)}")
        return dict(value)


@dataclass(frozen=True)
class DataConfig(Section):
    """How a store becomes training tensors (surrogate.dataset)."""

    PREFIX = "data"
    split: SplitConfig = subsection(SplitConfig)
    memory_budget_mb: float = option(Float(2048.0, low=0.0))   # encoded splits that fit are loaded, else streamed
    allow_incomplete: bool = option(Bool(False))                # train on the done samples of an unfinished store
    normalize: bool = option(Bool(True))                        # standardise with training-split mean/std
    target: dict = option(TargetChoice({"darcy": "Q"}))         # e.g. {darcy: Q+p}
    eval_batch_size: int = option(Int(1000, low=1))
    stream_order: str = option(Choice("global", ("global", "chunks")))  # streamed data: minibatch order

    def target_of(self, problem: str) -> str:
        return self.target.get(problem, get_problem(problem).default_target)


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class MLPConfig(Section):
    """Fully connected ReLU network; input and output sizes follow from the store."""

    PREFIX = "models.PROBLEM.mlp"
    KIND = "mlp"
    hidden: list = option(IntList((64, 64)))


@dataclass(frozen=True)
class CNNConfig(Section):
    """Convolutions ``[channels, kernel, stride]`` then fully connected layers."""

    PREFIX = "models.PROBLEM.cnn"
    KIND = "cnn"
    conv: list = option(ConvList(((16, 7, 2), (16, 7, 2))))
    fc: list = option(IntList((64, 64), allow_empty=True))


@dataclass(frozen=True)
class UNetConfig(Section):
    """Fully convolutional encoder-decoder (surrogate.unet): channels per level, scalar pooling-head widths."""

    PREFIX = "models.PROBLEM.unet"
    KIND = "unet"
    channels: list = option(IntList((16, 32, 64)))      # len - 1 poolings: at most log2(n) (n divisible by 2^depth)
    head: list = option(IntList((64,), allow_empty=True))


@dataclass(frozen=True)
class FNOConfig(Section):
    """Fourier neural operator (surrogate.fno): modes per direction (<= n/2), channels, Fourier layers."""

    PREFIX = "models.PROBLEM.fno"
    KIND = "fno"
    modes: int = option(Int(12, low=1))
    width: int = option(Int(32, low=1))
    layers: int = option(Int(4, low=1))


MODELS: dict[str, type[Section]] = {"mlp": MLPConfig, "cnn": CNNConfig, "unet": UNetConfig, "fno": FNOConfig}


# --------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainConfig(Section):
    """The training run (surrogate.train); ``sgd``/``adam``/``adamw`` are one level, ``fas`` the hierarchy."""

    PREFIX = "train"
    trainer: str = option(Choice("adamw", TRAINERS))
    budget_wu: float = option(Float(200.0, low=0.0, low_open=True))    # work units (paper sec. 8)
    work_measure: str = option(Choice("paper", ("paper", "flops")))
    batch_size: int = option(Int(200, low=1))
    lr: float = option(_spec(OptimizerConfig, "lr"))
    momentum: float = option(_spec(OptimizerConfig, "momentum"))
    weight_decay: float = option(_spec(OptimizerConfig, "weight_decay"))
    parametrization: str = option(_spec(OptimizerConfig, "parametrization"))   # standard | mup (every level)
    schedule: str = option(Choice("constant", SCHEDULES))     # learning-rate factor over the budget
    warmup: float = option(Float(0.05, low=0.0, high=1.0, high_open=True))   # warmup_cosine: linear ramp share
    seed: int = option(Seed(0))
    device: str = option(Choice("auto", DEVICES))
    eval_every_wu: float = option(Float(10.0, low=0.0, low_open=True))
    checkpoint_every_wu: float = option(Float(50.0, low=0.0, low_open=True))
    eval_train_samples: int = option(Int(256, low=0))
    best_metric: str = option(Choice("mse", ("mse", "linf")))
    fas: FASConfig = subsection(FASConfig)
    growth: GrowthConfig = subsection(GrowthConfig)

    def validate(self) -> None:
        _ = self.optimizer  # an optimizer that the parametrization does not fit fails here, naming the key
        if self.trainer == "fas" and self.fas.levels < 2:
            raise ConfigError(f"train.fas.levels: {self.fas.levels!r} is not allowed; the fas trainer needs "
                              "levels >= 2 (use trainer sgd or adam for one-level training)")

    @property
    def levels(self) -> int:
        """The depth of the trained hierarchy: ``fas.levels`` for the fas trainer, 1 (the network) otherwise."""
        return self.fas.levels if self.trainer == "fas" else 1

    @property
    def hierarchy(self) -> FASConfig:
        """``fas`` with the depth of the trained hierarchy (:attr:`levels`)."""
        return dataclasses.replace(self.fas, levels=self.levels)

    @property
    def optimizer(self) -> OptimizerConfig:
        """The optimizer of every level: the trainer itself, or the FAS smoother."""
        kind = self.fas.smoother if self.trainer == "fas" else self.trainer
        return OptimizerConfig(kind=kind, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay,
                               parametrization=self.parametrization)


# --------------------------------------------------------------------------
# Monte Carlo
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class FieldOverrides:
    """``mc.field``: some of the random-field parameters (checked with the field's own check)."""

    default: dict

    def check(self, key: str, value: Any) -> dict[str, Any]:
        value = {} if value is None else value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: {value!r} is not allowed; need a mapping with keys among "
                              f"{', '.join(FIELD_PARAMS)}")
        unknown = sorted(set(value) - set(FIELD_PARAMS))
        if unknown:
            raise ConfigError(f"{key}.{unknown[0]}: unknown key; allowed keys are {', '.join(FIELD_PARAMS)}")
        defaults = {name: spec.default for name, spec in FIELD_PARAMS.items()}
        checked = check_field_params(**{**defaults, **value}, prefix=f"{key}.")
        return {name: checked[name] for name in value}


@dataclass(frozen=True)
class MCConfig(Section):
    """Monte Carlo of the Darcy outflow QoI (surrogate.mc)."""

    PREFIX = "mc"
    n: int = option(Int(30000, low=2))           # surrogate samples N (fresh fields)
    fem_n: int = option(Int(500, low=0))         # FEM solves M on the first M of the N fields (0: none)
    seed: int = option(Seed(1))                  # field i <- SeedSequence((seed, i, MC_STREAM))
    batch_size: int = option(Int(4096, low=1))   # fields drawn and predicted per batch
    device: str = option(Choice("auto", DEVICES))
    sampler: str = option(Choice("auto", ("auto", "numpy", "torch")))   # auto: torch for FFT fields
    field: dict = option(FieldOverrides({}))     # overrides of the training store's field parameters
    reuse: str = option(Choice("test", ("none", "test")))   # test: the store's test split as CV pairs (no solves)

    def validate(self) -> None:
        if self.fem_n > self.n:
            raise ConfigError(f"mc.fem_n: {self.fem_n} is not allowed; the FEM solves use a subset of the N "
                              f"fields; need fem_n <= n = {self.n}")
        if self.fem_n in (1, 2):
            raise ConfigError(f"mc.fem_n: {self.fem_n} is not allowed; the control variate needs at least 3 FEM "
                              "solves (to estimate beta and the residual variance); use 0 for a surrogate-only "
                              "estimate")


# --------------------------------------------------------------------------
# tuning
# --------------------------------------------------------------------------
def _train_spec(key: str):
    """The spec of the dotted ``train`` key ``key`` (``lr``, ``fas.gamma``), or None if there is none."""
    section: Any = TrainConfig
    *path, name = key.split(".")
    for part in path:
        field = section.__dataclass_fields__.get(part)
        section = field.metadata.get("section") if field is not None else None
        if section is None:
            return None
    field = section.__dataclass_fields__.get(name)
    return None if field is None else field.metadata.get("spec")


@dataclass(frozen=True)
class SearchSpace:
    """``tune.space``: train keys (``lr``, ``fas.gamma``, ...) -> ``[low, high]``, searched log-uniformly."""

    default: dict

    def check(self, key: str, value: Any) -> dict[str, list[float]]:
        if not isinstance(value, Mapping) or not value:
            raise ConfigError(f"{key}: {value!r} is not allowed; need a mapping of train keys to [low, high], "
                              "e.g. {lr: [1.0e-4, 3.0e-2]}")
        out = {}
        for name, bounds in value.items():
            spec = _train_spec(str(name))
            if not isinstance(spec, Float):
                raise ConfigError(f"{key}.{name}: not a numeric train key; need one such as lr, momentum, "
                                  "weight_decay, fas.gamma, fas.eta")
            low, high = Range((1.0, 2.0), lower=0.0).check(f"{key}.{name}", bounds)
            if low <= 0:
                raise ConfigError(f"{key}.{name}: range [{low}, {high}] is searched log-uniformly; need low > 0")
            out[str(name)] = [spec.check(f"{key}.{name}", low), spec.check(f"{key}.{name}", high)]
        return out


@dataclass(frozen=True)
class TuneConfig(Section):
    """``surrogate tune``: an Optuna search on a narrow proxy of the network (surrogate.tune)."""

    PREFIX = "tune"
    level: int = option(Int(1, low=0))          # proxy: this level of the network's HEM hierarchy (0: itself)
    trials: int = option(Int(16, low=1))        # complete trials to run at most
    budget: float = option(Float(0.0, low=0.0))  # ... or until the search costs this many full-width runs (0: no cap)
    seeds: int = option(Int(2, low=1))          # training seeds per trial (the value is their mean)
    startup: int = option(Int(4, low=0))        # random trials before TPE
    seed: int = option(Seed(0))                 # the sampler's seed
    space: dict = option(SearchSpace({"lr": [1.0e-4, 3.0e-2]}))


# --------------------------------------------------------------------------
# the whole file
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class RunConfig:
    """Everything one ``surrogate train`` run uses; ``to_dict()`` is what files record."""

    problem: str
    data: DataConfig
    model: MLPConfig | CNNConfig | UNetConfig | FNOConfig
    train: TrainConfig
    #: Lines on the params-file keys that ``train.by_problem``/``train.by_trainer`` changed for this run.
    notes: tuple[str, ...] = dataclasses.field(default=(), compare=False)

    @property
    def target(self) -> str:
        return self.data.target_of(self.problem)

    def to_dict(self) -> dict[str, Any]:
        return {"problem": self.problem, "data": self.data.to_dict(),
                "model": {"kind": self.model.KIND, **self.model.to_dict()}, "train": self.train.to_dict()}


@dataclass(frozen=True)
class Params:
    """The checked ``data``, ``models``, ``train`` and ``mc`` sections of one params.yaml (+ overrides).

    ``train_raw`` is the file's ``train`` section with the overrides in it; ``train_typed`` holds the
    ``train`` keys that ``-S`` set (outside ``by_problem``/``by_trainer``), which win over both groups.
    """

    data: DataConfig
    models: dict[str, dict[str, Section]]
    train: TrainConfig
    mc: MCConfig
    train_raw: dict = dataclasses.field(repr=False)
    tune: TuneConfig = dataclasses.field(default_factory=TuneConfig)
    train_typed: dict = dataclasses.field(default_factory=dict, repr=False)

    def run(self, problem: str, model: str | None = None, trainer: str | None = None) -> RunConfig:
        """The config of one run; ``model``/``trainer`` are the CLI's (defaults: mlp, train.trainer)."""
        get_problem(problem)
        kind = Choice("mlp", tuple(MODELS)).check("--model", model or "mlp")
        if trainer is not None:
            trainer = Choice(TrainConfig().trainer, TRAINERS).check("--trainer", trainer)
            typed = self.train_typed.get("trainer", trainer)
            if typed != trainer:
                raise ConfigError(f"--trainer {trainer} and -S train.trainer={typed} disagree; give one of them")
        raw, notes = _train_for(self.train_raw, problem, trainer, self.train_typed)
        net = self.models.get(problem, {}).get(kind) or MODELS[kind]()
        return RunConfig(problem, self.data, net, TrainConfig.from_mapping(raw), notes)


#: Sections of ``train`` that override its keys for one problem or one trainer (applied in this order).
OVERRIDE_GROUPS = {"by_problem": tuple(PROBLEMS), "by_trainer": TRAINERS}


def _merge(out: dict, changes: Mapping) -> dict:
    """``changes`` over ``out``, nested sections (``fas``, ``growth``) key by key."""
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = {**out[key], **value}
        else:
            out[key] = copy.deepcopy(value)
    return out


def _train_for(train: Mapping, problem: str, trainer: str | None = None,
               typed: Mapping | None = None) -> tuple[dict, tuple[str, ...]]:
    """The ``train`` mapping of one run, and a note on each params-file key that a group changed.

    Order, last wins: the ``train`` keys, ``by_problem.PROBLEM``, ``by_trainer.TRAINER`` (TRAINER: the
    CLI's ``--trainer``, else ``train.trainer`` so far), then ``typed`` (what ``-S`` set).
    """
    typed = {**(typed or {}), **({"trainer": trainer} if trainer is not None else {})}
    base = {k: v for k, v in train.items() if k not in OVERRIDE_GROUPS}
    by_problem = _merge(copy.deepcopy(base), (train.get("by_problem") or {}).get(problem) or {})
    chosen = typed.get("trainer", by_problem.get("trainer", TrainConfig().trainer))
    by_trainer = _merge(copy.deepcopy(by_problem), (train.get("by_trainer") or {}).get(chosen) or {})
    stages = {"by_problem." + problem: flatten(by_problem, "train."),
              "by_trainer." + chosen: flatten(by_trainer, "train.")}
    file_value, typed_keys = flatten(base, "train."), flatten(typed, "train.")
    unused = "train.fas." if typed.get("trainer", by_trainer.get("trainer")) != "fas" else None
    notes = []
    for key, value in stages["by_trainer." + chosen].items():
        if key in typed_keys or value == file_value.get(key, value) or (unused and key.startswith(unused)):
            continue
        group = "by_problem." + problem if stages["by_problem." + problem].get(key) == value else "by_trainer." + chosen
        notes.append(f"{key} = {value!r} from train.{group} (train says {file_value[key]!r}; -S {key}=... wins)")
    return _merge(by_trainer, typed), tuple(notes)


#: What a command reads when it is given no params file, beyond each key's own default: the per-problem
#: networks and the ``train`` groups of the repository's params.yaml (tests/test_defaults.py compares every key).
BUILTIN: dict[str, Any] = {
    "models": {
        "poisson": {"mlp": {"hidden": [400, 400]}, "cnn": {"conv": [[16, 7, 2], [16, 7, 2]], "fc": [64, 64]},
                    "unet": {"channels": [16, 32, 64, 128], "head": [64]},
                    "fno": {"modes": 8, "width": 32, "layers": 4}},
        "darcy": {"mlp": {"hidden": [512, 512, 512]},
                  "cnn": {"conv": [[8, 11, 2], [16, 7, 1], [32, 3, 1]], "fc": [128, 128]},
                  "unet": {"channels": [16, 32, 64, 128], "head": [64]},
                  "fno": {"modes": 8, "width": 32, "layers": 4}},
    },
    "train": {
        "by_trainer": {"adam": {"lr": 0.001}, "adamw": {"lr": 0.001}, "fas": {"budget_wu": 400}},
        "by_problem": {
            "poisson": {"budget_wu": 6000, "batch_size": 64, "schedule": "cosine", "eval_every_wu": 100,
                        "checkpoint_every_wu": 1000},
            "darcy": {"budget_wu": 2500, "batch_size": 64, "schedule": "cosine", "eval_every_wu": 100,
                      "checkpoint_every_wu": 1000, "weight_decay": 1.0e-4,
                      "fas": {"pre": 2, "coarse": 2, "post": 2, "rematch_every": 10}},
        },
    },
}


def _models(raw: Any) -> dict[str, dict[str, Section]]:
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise ConfigError(f"models: {raw!r} is not allowed; need a mapping problem -> {{mlp: ..., cnn: ...}}")
    out: dict[str, dict[str, Section]] = {}
    for problem, kinds in raw.items():
        if problem not in PROBLEMS:
            raise ConfigError(f"models.{problem}: unknown key; allowed keys are {', '.join(PROBLEMS)}")
        kinds = {} if kinds is None else kinds
        if not isinstance(kinds, Mapping) or set(kinds) - set(MODELS):
            raise ConfigError(f"models.{problem}: {kinds!r} is not allowed; need a mapping with keys "
                              f"among {', '.join(MODELS)}")
        out[problem] = {kind: MODELS[kind].from_mapping(cfg, f"models.{problem}.{kind}") for kind, cfg in kinds.items()}
    return out


def load(params: str | Path | Mapping | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Params:
    """Read ``params`` (a path, a mapping, or None: the built-in defaults, which equal the repository's
    params.yaml) and ``-S`` overrides; check every section."""
    tree = read_params(params if params is not None else BUILTIN, overrides, sections=(*SECTIONS, *PROBLEMS))
    train_raw = tree.get("train") or {}
    if not isinstance(train_raw, Mapping):
        raise ConfigError(f"train: {train_raw!r} is not allowed; need a mapping of keys to values")
    for group, allowed in OVERRIDE_GROUPS.items():
        entries = train_raw.get(group) or {}
        if not isinstance(entries, Mapping) or set(entries) - set(allowed):
            raise ConfigError(f"train.{group}: {entries!r} is not allowed; need a mapping with keys among "
                              f"{', '.join(allowed)}")
        for key, changes in entries.items():  # a bad key in any entry fails now, whichever run this is
            base = {k: v for k, v in train_raw.items() if k not in OVERRIDE_GROUPS}
            TrainConfig.from_mapping(_merge(base, changes or {}), f"train.{group}.{key}")
    train_base = {k: v for k, v in train_raw.items() if k not in OVERRIDE_GROUPS}
    typed = read_params(None, overrides).get("train") or {}
    return Params(data=DataConfig.from_mapping(tree.get("data")), models=_models(tree.get("models")),
                  train=TrainConfig.from_mapping(train_base), mc=MCConfig.from_mapping(tree.get("mc")),
                  train_raw=dict(train_raw), tune=TuneConfig.from_mapping(tree.get("tune")),
                  train_typed={k: v for k, v in typed.items() if k not in OVERRIDE_GROUPS})


def resolve(params: str | Path | Mapping | None = None, *, problem: str, model: str | None = None,
            trainer: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """The :class:`RunConfig` of one (problem, model, trainer): ``load(params, overrides).run(...)``."""
    return load(params, overrides).run(problem, model, trainer)


def resolve_mc(params: str | Path | Mapping | None = None, overrides: list[str] | tuple[str, ...] = (),
               **flags: Any) -> MCConfig:
    """The ``mc`` section, with command-line ``flags`` (``n=...``; None: not given) on top; the other sections
    are not read (a bad ``train`` key does not stop ``surrogate mc``)."""
    raw = read_params(params, overrides, sections=(*SECTIONS, *PROBLEMS)).get("mc") or {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"mc: {raw!r} is not allowed; need a mapping of keys to values")
    given = {k: v for k, v in flags.items() if v is not None}
    return MCConfig.from_mapping({**raw, **given})


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
