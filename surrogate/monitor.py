"""What training watches: validation errors of the fine and first auxiliary networks, and the best of each.

One evaluation gives a history record (the form ``history.json`` and the
study read)::

    {"work_units": ..., "cycles": ..., "work_units_flops": ..., "work_units_paper": ...,
     "train_loss": ..., "train_loss_levels": [...],      # mean minibatch loss since the last record
     "val": {"mse", "linf", "rel_l2"}, "val_targets": {...},       # fine network, physical units
     "train": {...},                                               # fine network, training subset
     "aux_val": {...}, "aux_val_targets": {...},                   # first auxiliary network (FAS)
     "growth_level": l}                                            # nested iteration: the net is level l

(``*_targets`` only with several targets, ``aux_*`` only with a hierarchy;
while a nested iteration grows the net, ``val`` is that of the current
coarse net, which is never kept as the best fine network).
A NaN or infinite loss raises :class:`TrainingDiverged`, naming the level
and the parameters to lower.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from surrogate.config import RunConfig
from surrogate.dataset import Dataset
from surrogate.io import arch_of
from surrogate.metrics import split_errors
from surrogate.multilevel import DivergenceError, Trainer


class TrainingDiverged(RuntimeError):
    """The loss became NaN/inf or exploded; the message names the level and the params to lower.

    ``history``: the evaluation records up to the divergence (set by ``train``).
    """

    def __init__(self, message: str, level: int | None = None):
        super().__init__(message)
        self.level = level
        self.history: list[dict] = []


def _stability_hint(cfg: RunConfig) -> str:
    t, f = cfg.train, cfg.train.fas
    hint = f"train.lr (now {t.lr:g})"
    if t.trainer != "adam":
        hint += f", train.momentum (now {t.momentum:g})"
    if t.trainer == "fas":
        hint += (f", train.fas.gamma (tau-correction scale, now {f.gamma:g}), train.fas.alpha_p / "
                 f"train.fas.alpha_m (coarse-grid correction scales, now {f.alpha_p:g} / {f.alpha_m:g}), "
                 f"or raise train.fas.eta (learning-rate divisor per level, now {f.eta:g}) "
                 f"or use fewer train.fas.levels (now {f.levels})")
    return hint


#: A validation MSE this many times the untrained network's is divergence, even while finite.
DIVERGENCE_GROWTH = 1e3


def diverged(cfg: RunConfig, level: int, work: float, what: str = "the training loss became NaN or inf"
             ) -> TrainingDiverged:
    where = "level 0 (the fine network)" if level == 0 else f"level {level} (coarse network {level})"
    return TrainingDiverged(
        f"training diverged after {work:.1f} work units: {what} on {where}. "
        f"Lower the stability parameters and train again: {_stability_hint(cfg)}. "
        "No model file was written or replaced.", level)


def _clone_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


class Monitor:
    """Evaluates the networks every ``train.eval_every_wu``, keeps the history and the best networks.

    ``best["fine"]`` / ``best["aux"]``: ``{"value", "state", "arch", "record"}``
    of the network with the lowest validation ``train.best_metric``.
    """

    def __init__(self, cfg: RunConfig, dataset: Dataset, trainer: Trainer):
        self.cfg, self.dataset, self.trainer = cfg, dataset, trainer
        self.roles = ("fine", "aux") if cfg.train.levels > 1 else ("fine",)
        self.history: list[dict[str, Any]] = []
        self.best = {role: {"value": math.inf, "state": None, "arch": None, "record": None} for role in self.roles}

    def evaluate(self, work: float, cycles: int) -> dict[str, Any]:
        """One history record at ``work`` units (see the module docstring)."""
        t, trainer, data = self.cfg.train, self.trainer, self.dataset
        try:
            losses = trainer.level_losses() if cycles else []
        except DivergenceError as exc:
            raise diverged(self.cfg, exc.level, work) from None
        rec: dict[str, Any] = {"work_units": work, "cycles": cycles,
                               "work_units_flops": float(trainer.work["flops"]),
                               "work_units_paper": float(trainer.work["paper"])}
        if losses and math.isfinite(losses[0]):
            rec["train_loss"] = losses[0]
        if len(losses) > 1:
            rec["train_loss_levels"] = losses
        ebs, primary = self.cfg.data.eval_batch_size, data.layout.targets[0]
        growing = trainer.growing   # nested iteration: the net is still a coarse one
        if growing:
            rec["growth_level"] = trainer.level
        for role, key in zip(("fine",) if growing else self.roles, ("val", "aux_val")):
            level = 0 if role == "fine" else 1
            errors = split_errors(trainer.hier.nets[level], data["val"], data.codec, ebs)
            rec[key] = errors[primary]
            if len(errors) > 1:
                rec[f"{key}_targets"] = errors
            mse = rec[key]["mse"]
            if not math.isfinite(mse):
                raise diverged(self.cfg, level, work, "the validation loss became NaN or inf")
            start = next((r[key]["mse"] for r in self.history if key in r), None)   # before training
            if start is not None and mse > DIVERGENCE_GROWTH * start:
                raise diverged(self.cfg, level, work, f"the validation MSE grew to {mse:.3g}, more than "
                               f"{DIVERGENCE_GROWTH:g} times its value before training ({start:.3g})")
            if role == "fine" and t.eval_train_samples > 0:
                rec["train"] = split_errors(trainer.hier.nets[0], data["train"], data.codec, ebs,
                                            t.eval_train_samples)[primary]
            best = self.best[role]
            if not growing and rec[key][t.best_metric] < best["value"]:
                net = trainer.hier.nets[level]
                best.update(value=rec[key][t.best_metric], state=_clone_state(net), arch=arch_of(net), record=rec)
        self.history.append(rec)
        return rec

    def summary(self) -> dict[str, Any]:
        """Best value of each metric over the history (the paper's tables), with where it was reached."""
        out = {"best": _best_of(self.history, "val")}
        if "aux" in self.roles:
            out["aux_best"] = _best_of(self.history, "aux_val")
        if any("train" in r for r in self.history):
            out["best_train"] = _best_of(self.history, "train")
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history, self.best = list(state["history"]), dict(state["best"])


def _best_of(history: list[dict], key: str) -> dict:
    out: dict[str, Any] = {}
    for m in ("mse", "linf", "rel_l2"):
        vals = [(r[key][m], r["work_units"]) for r in history if key in r and math.isfinite(r[key][m])]
        if vals:
            out[m], out[f"{m}_at_wu"] = min(vals)
    return out
