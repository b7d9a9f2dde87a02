"""The paper's four set-ups at the sizes the editions run them, and a set-up as typed run config.

A preset's sizes are data (they go into ``results.json`` as the spec's
``setups``); :class:`Setup` turns one of them into the
:class:`surrogate.config.RunConfig` that every method of an edition starts
from, built with :func:`dataclasses.replace` on the config classes' own
defaults -- ``params.yaml`` is not read, so no edit of it can change what a
study's run means.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from study.core.paper import FAS_STABILITY, MOMENTUM, paper_arch

if TYPE_CHECKING:
    from surrogate.config import RunConfig, TrainConfig

# What each set-up is; the presets size them.
SETUPS: dict[str, dict] = {
    "poisson_fc": {"title": "Poisson FC", "problem": "poisson", "model": "mlp"},
    "poisson_cnn": {"title": "Poisson CNN", "problem": "poisson", "model": "cnn"},
    "darcy_fc": {"title": "Darcy FC", "problem": "darcy", "model": "mlp"},
    "darcy_cnn": {"title": "Darcy CNN", "problem": "darcy", "model": "cnn"},
}
#: What the networks learn: Poisson's u field, Darcy's outflow QoI Q.
TARGETS = {"poisson": "u", "darcy": "Q"}
# Stores and split of every preset: the data seed and contiguous blocks of sample indices.
DATA = {"data_seed": 0, "split": {"train": 0.8, "val": 0.1, "test": 0.1}}
QUICK_TRAINING = {"budget_wu": 40, "eval_every_wu": 4, "batch_size": 40, "smoothing": 2, "rematch_every": 2}

#: Store sizes, seeds and set-up sizes of the first study's presets (the second reuses them).
SIZES: dict[str, dict] = {
    "full": {
        "data": {"poisson": 10000, "darcy": 4000},
        "seeds": 5,
        "eval_train_samples": 256,
        "setups": {
            "poisson_fc": {"arch": {"hidden": [400, 400]}, "budget_wu": 10000, "eval_every_wu": 50,
                           "batch_size": 200, "smoothing": 4, "rematch_every": 50, "weight_decay": 0.0},
            "poisson_cnn": {"arch": {"conv": [[16, 7, 2], [16, 7, 2]], "fc": [128, 128]}, "budget_wu": 1000,
                            "eval_every_wu": 20, "batch_size": 200, "smoothing": 4, "rematch_every": 50,
                            "weight_decay": 0.0},
            "darcy_fc": {"arch": {"hidden": [256, 256, 256]}, "budget_wu": 2000, "eval_every_wu": 20,
                         "batch_size": 200, "smoothing": 2, "rematch_every": 10, "weight_decay": 1e-6},
            "darcy_cnn": {"arch": {"conv": [[8, 11, 2], [16, 7, 1], [32, 3, 1]], "fc": [128, 128]},
                          "budget_wu": 1000, "eval_every_wu": 20, "batch_size": 200, "smoothing": 2,
                          "rematch_every": 10, "weight_decay": 1e-6},
        },
    },
    "quick": {
        "data": {"poisson": 400, "darcy": 300},
        "seeds": 3,
        "eval_train_samples": 64,
        "setups": {
            "poisson_fc": {"arch": {"hidden": [32, 32]}, **QUICK_TRAINING, "weight_decay": 0.0},
            "poisson_cnn": {"arch": {"conv": [[8, 7, 2], [8, 7, 2]], "fc": [32, 32]}, **QUICK_TRAINING,
                            "weight_decay": 0.0},
            "darcy_fc": {"arch": {"hidden": [32, 32, 32]}, **QUICK_TRAINING, "weight_decay": 1e-6},
            "darcy_cnn": {"arch": {"conv": [[4, 11, 2], [8, 7, 1], [8, 3, 1]], "fc": [16, 16]}, **QUICK_TRAINING,
                          "weight_decay": 1e-6},
        },
    },
}


def split_sizes(n_total: int, split: Mapping[str, float]) -> tuple[int, int]:
    """Training and validation sample counts of a store of ``n_total`` samples (contiguous blocks)."""
    n_train = math.floor(split["train"] * n_total + 1e-9)
    n_val = math.floor((split["train"] + split["val"]) * n_total + 1e-9) - n_train
    return n_train, n_val


def describe_setups(spec: dict, selected: list[str] | None) -> None:
    """Complete ``spec["setups"]`` (what each set-up is, the paper's network, sample counts) and set
    ``spec["selected"]``; an unknown selected set-up stops the command with a one-line message."""
    spec["setups"] = {name: {**SETUPS[name], **sizes} for name, sizes in spec["setups"].items()}
    for name, s in spec["setups"].items():
        s["paper_arch"] = paper_arch(name)
        s["n_samples"] = spec["data"][s["problem"]]
        s["n_train"], s["n_val"] = split_sizes(s["n_samples"], spec["split"])
    spec["selected"] = list(selected) if selected else list(spec["setups"])
    bad = [s for s in spec["selected"] if s not in spec["setups"]]
    if bad:
        raise SystemExit(f"--setups: unknown set-up(s) {', '.join(bad)} (allowed: {', '.join(spec['setups'])})")


def _train(s: Mapping, eval_train_samples: int) -> TrainConfig:
    """A set-up's training: its sizes, the paper's FAS cycle (sec. 8.3), one level, constant rate, no muP."""
    from surrogate.config import TrainConfig

    base = TrainConfig()
    sm = s["smoothing"]
    fas = dataclasses.replace(base.fas, cycle="V", smoother="sgd", pre=sm, coarse=sm, post=sm, tau="minibatch",
                              **FAS_STABILITY, theta=0.0, interpolation="plain", order="natural",
                              rematch_every=s["rematch_every"])
    growth = dataclasses.replace(base.growth, levels=1, share=0.2, state="reset", perturbation=1.0)
    return dataclasses.replace(base, budget_wu=float(s["budget_wu"]), work_measure="flops",
                               batch_size=s["batch_size"], momentum=MOMENTUM, weight_decay=s["weight_decay"],
                               parametrization="standard", schedule="constant", warmup=0.05,
                               eval_every_wu=float(s["eval_every_wu"]), eval_train_samples=eval_train_samples,
                               best_metric="mse", fas=fas, growth=growth)


@dataclass(frozen=True)
class Setup:
    """A set-up at a preset's sizes as typed config: the run every method of an edition starts from.

    :attr:`config` spells out every knob the editions compare at (so that a
    changed built-in default cannot change what a committed run means, see
    :mod:`study.core.runkey`) except a method's own: the trainer, its rate,
    schedule and weight decay, the FAS levels, tau, smoother and matching,
    the growth levels. :meth:`run` adds the seed, the device and the budget.
    """

    name: str
    n_samples: int
    config: RunConfig

    @classmethod
    def from_spec(cls, spec: Mapping, name: str) -> Setup:
        """The set-up ``name`` of a completed spec (:func:`describe_setups`)."""
        from surrogate.config import MODELS, DataConfig, RunConfig

        s = spec["setups"][name]
        data = DataConfig()
        data = dataclasses.replace(data, split=dataclasses.replace(data.split, **spec["split"]),
                                   memory_budget_mb=2048.0, allow_incomplete=False, normalize=True,
                                   target={s["problem"]: TARGETS[s["problem"]]}, eval_batch_size=1000,
                                   stream_order="global")
        model = dataclasses.replace(MODELS[s["model"]](), **s["arch"])
        return cls(name, s["n_samples"], RunConfig(s["problem"], data, model, _train(s, spec["eval_train_samples"])))

    def run(self, *, seed: int, device: str, budget: float | None = None, n_train: int | None = None) -> RunConfig:
        """The config of one run: ``seed``, ``device``, a budget (checkpoints every fifth of it) and, for a
        regime-map run, the first ``n_train`` samples as the training split (validation: the next block)."""
        train, data = self.config.train, self.config.data
        B = float(budget if budget is not None else train.budget_wu)
        train = dataclasses.replace(train, seed=seed, device=device, budget_wu=B,
                                    checkpoint_every_wu=max(B / 5.0, train.eval_every_wu))
        if n_train is not None:
            frac = n_train / self.n_samples
            split = dataclasses.replace(data.split, train=frac, test=1.0 - frac - data.split.val)
            data = dataclasses.replace(data, split=split)
        return dataclasses.replace(self.config, data=data, train=train)

