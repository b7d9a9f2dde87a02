"""``surrogate train``: one-level (SGD/Adam) or multilevel FAS training on a store.

Every trainer runs through :class:`surrogate.multilevel.FASTrainer`; ``sgd``
and ``adam`` are a one-level hierarchy (one optimizer step per cycle), ``fas``
a hierarchy of ``train.fas.levels`` networks. The run is budgeted in work
units (``train.budget_wu``; one unit = forward + backward pass over one
minibatch of the fine network, the paper's section 8), counted as
``train.work_measure``: ``paper`` (the 1/4-per-level rule) or ``flops``.

The loop, in order:

1. check every input (store, parameters, checkpoint) before anything is written,
   and take the writer lock of every output (:mod:`surrogate.outputs`): a
   second run with the same OUT, live directory or metrics file is refused;
2. every ``train.eval_every_wu``: :class:`surrogate.monitor.Monitor` evaluates
   the fine (and first auxiliary) network on the validation split, keeps the
   best, and :class:`surrogate.progress.Progress` logs it (dvclive, tqdm);
3. every ``train.checkpoint_every_wu``: the whole state goes atomically to
   ``OUT/checkpoint.pt``; ``--resume`` continues from it and ends with the
   same result as an uninterrupted run (``--resume auto``: or starts over when
   the checkpoint was written with other parameters or on another store);
4. at the end: ``best.pt`` / ``final.pt`` (and for FAS ``aux_best.pt`` /
   ``aux_final.pt``, the first auxiliary network), ``history.json`` (every
   evaluation record), ``train_summary.json`` (best and final errors, sizes,
   store) and, with ``metrics``, a flat JSON of the figures to compare across
   experiments (``dvc metrics``). They and the dvclive curves are written under
   staged names and moved into place together: a run that fails, diverges or
   fills the disk leaves the previous run's files and curves as they were.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from params import ConfigError, writable_dir
from pde_data.provenance import versions
from surrogate import config as config_mod
from surrogate import distributed
from surrogate.config import RunConfig
from surrogate.dataset import Dataset, load_dataset, open_store
from surrogate.io import ModelFileError, arch_of, build_net, make_net, read_checkpoint, save_checkpoint, save_model
from surrogate.monitor import Monitor, TrainingDiverged
from surrogate.outputs import NETWORK_FILES, RunOutputs
from surrogate.progress import Progress
from surrogate.runtime import write_json
from surrogate.schedule import lr_factor

__all__ = ["CHECKPOINT", "OUTPUT_FILES", "QUIET", "Reporting", "ResumeError", "TrainingDiverged", "build_trainer",
           "train"]

OUTPUT_FILES = (*NETWORK_FILES.values(), "history.json", "train_summary.json")
CHECKPOINT = "checkpoint.pt"
LIVE_DIR = "dvclive"
#: Keys that may differ between a checkpoint and a --resume run.
RESUMABLE_CHANGES = ("train.budget_wu", "train.device", "train.checkpoint_every_wu")


class ResumeError(ValueError):
    """A checkpoint that does not belong to this run."""


def build_trainer(cfg: RunConfig, net: torch.nn.Module, dataset: Dataset, device: torch.device,
                  base_shapes: list[torch.Size] | None = None):
    """The trainer for ``cfg``: a :class:`FASTrainer` (sgd/adam/adamw: one level), after a nested
    iteration in width when ``train.growth.levels`` > 1. ``base_shapes``: the shapes muP's rates are
    relative to (default: ``net``'s own; a narrow proxy of a wider network gets the wide one's)."""
    from surrogate import multilevel as ml

    t = cfg.train
    train = dataset["train"]
    block, window = dataset.chunk_window() if dataset.streamed and cfg.data.stream_order == "chunks" else (1, 1)
    batches = ml.MinibatchStream(len(train), min(t.batch_size, len(train)), seed=t.seed, device=device,
                                 block=block, window=window)

    base = base_shapes or [p.shape for p in net.parameters()]

    def final(fine: torch.nn.Module) -> ml.FASTrainer:
        hierarchy = ml.build_hierarchy(fine, config=t.hierarchy, seed=t.seed)
        return ml.FASTrainer(hierarchy, train.X, train.Y, batches, t.fas, t.optimizer, base_shapes=base)

    if t.growth.levels == 1:
        return final(net)
    return ml.NestedIteration(net, train.X, train.Y, batches, t.growth, t.optimizer, final, t.budget_wu,
                              t.work_measure, hem=t.fas, seed=t.seed, base_shapes=base)


#: ``resume`` modes of :func:`train`: off, continue a matching checkpoint (else refuse), or continue a
#: matching one and start over otherwise (a DVC stage whose output persists between runs).
RESUME_MODES = (False, True, "auto")


def _read_resume(cfg: RunConfig, ckpt_path: Path, strict: bool, say: Callable[[str], None]) -> dict | None:
    """The checkpoint to continue from, or None to start from scratch.

    A checkpoint of other parameters, or one that cannot be read, is a :class:`ResumeError` when
    ``strict``; otherwise the run starts over (and says why).
    """
    if not ckpt_path.exists():
        say(f"--resume: no checkpoint in {ckpt_path.parent}; starting from scratch")
        return None
    try:
        ck = read_checkpoint(ckpt_path)
        if not isinstance(ck.get("config"), dict) or not isinstance(ck.get("loop"), dict):
            raise ResumeError(f"--resume: {ckpt_path} is damaged (no run config or loop state)")
        changed = [k for k in config_mod.diff(ck["config"], cfg.to_dict()) if k not in RESUMABLE_CHANGES]
        if changed:
            raise ResumeError(f"--resume: {ckpt_path} was written with other parameters ({', '.join(changed)})")
    except (ResumeError, ModelFileError) as exc:
        if strict:
            raise ResumeError(f"{exc}; train without --resume to start over, or use another --out") from None
        say(f"{exc}; starting from scratch")
        return None
    say(f"resuming from {ckpt_path} at {ck['loop']['work_units']:.1f} work units")
    return ck


def _next_multiple(work: float, every: float) -> float:
    return (math.floor(work / every + 1e-9) + 1) * every


def _lock(outputs: RunOutputs, main: bool, device: torch.device) -> None:
    """Rank 0 takes the outputs' writer locks; every process of a torchrun job fails if it could not."""
    error = None
    if main:
        try:
            outputs.lock()
        except ConfigError as exc:
            error = exc
    failed = distributed.sum_over_processes(np.array([float(error is not None)]), device)[0] > 0
    if error is not None:
        raise error
    if failed:
        raise ConfigError("torchrun: process 0 could not lock the outputs (see its message)")


@dataclass(frozen=True)
class Reporting:
    """What a training run shows and logs: the tqdm bar, the dvclive curves, one-line messages on stderr."""

    progress: bool = True
    live: bool = True
    verbose: bool = True


#: A run that shows and logs nothing (tests, studies, benchmarks).
QUIET = Reporting(progress=False, live=False, verbose=False)


def train(cfg: RunConfig, store: str | Path, out: str | Path, *, resume: bool | str = False,
          reporting: Reporting = Reporting(), live_dir: str | Path | None = None, metrics: str | Path | None = None,
          callback: Callable[[dict], None] | None = None) -> dict:
    """Train as configured by ``cfg`` (:func:`surrogate.config.resolve`); returns the summary with its history.

    ``resume``: one of :data:`RESUME_MODES`. ``reporting``: what the run shows and logs (:class:`Reporting`).
    ``callback(state)`` is called after every cycle with ``{"work_units", "cycle", "checkpointed"}`` (tests use
    it to simulate a kill).
    """
    if resume not in RESUME_MODES:
        raise ConfigError(f"--resume: {resume!r} is not allowed; need one of {', '.join(map(str, RESUME_MODES))}")
    # 1. inputs first: nothing in OUT is touched before they all pass
    device = distributed.init(cfg.train.device)
    main = distributed.is_main()  # under torchrun, rank 0 alone writes files and shows progress
    say = (lambda msg: print(msg, file=sys.stderr)) if reporting.verbose and main else (lambda msg: None)
    processes = distributed.started_processes()
    if processes > cfg.train.batch_size:
        raise ConfigError(f"torchrun: {processes} processes share minibatches of train.batch_size "
                          f"{cfg.train.batch_size}; need at most as many processes as samples in a minibatch")
    out = writable_dir(out, "--out")
    if metrics is not None:
        writable_dir(Path(metrics).parent, "--metrics")
    live_path = (Path(live_dir) if live_dir is not None else out / LIVE_DIR) if reporting.live else None
    with RunOutputs(out, live_path, None if metrics is None else Path(metrics)) as outputs:
        _lock(outputs, main, device)
        run = _Run(cfg, store, outputs, device, main, say, resume)
        run.loop(reporting.progress and main, callback)
        summary = run.finish()
    b = summary["best"]
    say(f"trained {cfg.problem} {cfg.model.KIND} with {cfg.train.trainer} for {summary['work_units']:.1f} work "
        f"units in {summary['elapsed_s']:.1f} s: best validation mse {b['mse']:.4g} (at {b['mse_at_wu']:.1f} wu), "
        f"best linf {b['linf']:.4g} (at {b['linf_at_wu']:.1f} wu) -> {out}")
    return {**summary, "history": run.monitor.history}


class _Run:
    """One training run: its data, trainer, monitor and loop state, resumed from a checkpoint or new."""

    def __init__(self, cfg: RunConfig, store: str | Path, outputs: RunOutputs, device: torch.device, main: bool,
                 say: Callable[[str], None], resume: bool | str):
        self.cfg, self.outputs, self.device, self.main = cfg, outputs, device, main
        self.ckpt_path = outputs.out / CHECKPOINT
        ck = _read_resume(cfg, self.ckpt_path, resume is True, say) if resume else None
        reader = open_store(store, cfg.problem)
        self.store_info = reader.describe()
        if ck is not None and ck.get("store", {}).get("fingerprint") != self.store_info["fingerprint"]:
            why = (f"--resume: the store {str(store)!r} is not the one {self.ckpt_path} was trained on (its "
                   "fingerprint differs)")
            if resume is True:
                raise ResumeError(f"{why}; train without --resume to start over")
            say(f"{why}; starting from scratch")
            ck = None
        self.dataset = load_dataset(reader, data=cfg.data, flat=cfg.model.KIND == "mlp", device=device,
                                    normalization=None if ck is None else ck["normalization"])
        torch.manual_seed(cfg.train.seed)
        net = make_net(cfg.to_dict()["model"], self.dataset.layout).to(device)
        self.trainer = build_trainer(cfg, net, self.dataset, device)
        self.monitor = Monitor(cfg, self.dataset, self.trainer)
        self.state = {"work_units": 0.0, "cycles": 0, "next_eval": 0.0, "elapsed_s": 0.0}
        if ck is not None:
            self._restore(ck)

    def _restore(self, ck: dict) -> None:
        try:
            self.trainer.load_state_dict(ck["trainer"])
            self.monitor.load_state_dict(ck["monitor"])
            self.state = dict(ck["loop"])
            torch.set_rng_state(ck["rng"]["torch"])
            if self.device.type == "cuda" and ck["rng"].get("cuda") is not None:
                torch.cuda.set_rng_state(ck["rng"]["cuda"], self.device)
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
            raise ResumeError(f"--resume: {self.ckpt_path} is damaged ({type(exc).__name__}: {exc}); train without "
                              "--resume to start over") from None

    def work(self) -> float:
        return float(self.trainer.work[self.cfg.train.work_measure])

    def checkpoint(self, path: Path, finished: bool = False) -> None:
        dev = self.device
        rng = {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None}
        save_checkpoint(path, {"config": self.cfg.to_dict(), "store": self.store_info,
                               "normalization": self.dataset.codec.norm, "trainer": self.trainer.state_dict(),
                               "monitor": self.monitor.state_dict(), "history": self.monitor.history,
                               "loop": self.state, "rng": rng, "finished": finished})

    def evaluate(self) -> None:
        """One evaluation, and the seconds of training so far at it (``state["eval_elapsed_s"]``, evaluations
        included: seconds-to-target figures; wall time, so kept out of the history records)."""
        self.progress.record(self.monitor.evaluate(self.work(), self.state["cycles"]))
        self.state.setdefault("eval_elapsed_s", []).append(time.perf_counter() - self.start)
        self.state["next_eval"] = _next_multiple(self.work(), self.cfg.train.eval_every_wu)

    def loop(self, show: bool, callback: Callable[[dict], None] | None) -> None:
        """Cycles until the budget, evaluating and checkpointing on the way (steps 2 and 3)."""
        t, state = self.cfg.train, self.state
        self.progress = Progress(self.outputs.live_stage if self.main else None, show, t.budget_wu,
                                 state["work_units"])
        for rec in self.monitor.history:
            self.progress.record(rec)
        next_ckpt = _next_multiple(state["work_units"], t.checkpoint_every_wu)
        self.start = start = time.perf_counter() - state["elapsed_s"]
        try:
            if state["work_units"] >= state["next_eval"]:
                self.evaluate()
            while self.work() < t.budget_wu:
                self.trainer.scale_lr(lr_factor(t.schedule, self.work() / t.budget_wu, t.warmup))
                self.trainer.cycle()
                state["cycles"] += 1
                state["work_units"] = w = self.work()
                self.progress.advance(min(w, t.budget_wu))
                if w >= state["next_eval"] or w >= t.budget_wu:
                    self.evaluate()
                checkpointed = t.budget_wu > w >= next_ckpt
                if checkpointed:
                    next_ckpt = _next_multiple(w, t.checkpoint_every_wu)
                    state["elapsed_s"] = time.perf_counter() - start
                    if self.main:
                        self.checkpoint(self.ckpt_path)
                if callback is not None:
                    callback({"work_units": w, "cycle": state["cycles"], "checkpointed": checkpointed})
            if self.monitor.history[-1]["work_units"] < self.work():
                self.evaluate()
        except TrainingDiverged as exc:
            exc.history = list(self.monitor.history)
            raise
        finally:
            self.progress.close()
        state["elapsed_s"] = time.perf_counter() - start

    def finish(self) -> dict:
        """Step 4: the summary; rank 0 stages every output file and moves them into place together."""
        cfg, out = self.cfg, self.outputs.out
        summary = _summary(cfg, self.dataset, self.monitor, self.store_info, self.state, self.work(), self.device)
        if self.main:
            stage = self.outputs.stage
            written = _write_outputs(cfg, out, stage, self.dataset, self.trainer.hier, self.monitor, summary,
                                     self.store_info)
            if self.outputs.metrics is not None:
                write_json(stage(self.outputs.metrics), flat_metrics(summary))
            self.checkpoint(stage(self.ckpt_path), finished=True)
            self.outputs.commit()
            for name in set(OUTPUT_FILES) - set(written):
                (out / name).unlink(missing_ok=True)  # e.g. aux_best.pt of an earlier FAS run in this OUT
        distributed.barrier()
        return summary


def _model_meta(cfg: RunConfig, dataset: Dataset, net: torch.nn.Module, role: str, selection: str,
                record: dict, store_info: dict) -> dict:
    gx, gy = dataset.codec.grid if dataset.codec.grid is not None else (None, None)
    prefix = "aux_" if role == "aux" else ""
    cfg_dict = cfg.to_dict()
    return {
        "problem": cfg.problem, "layout": dataset.layout.to_dict(),
        "grid": {"n": dataset.layout.n, "x": None if gx is None else gx.tolist(),
                 "y": None if gy is None else gy.tolist()},
        "arch": arch_of(net), "model_config": cfg_dict["model"], "normalization": dataset.codec.norm,
        "train": cfg_dict["train"], "data": cfg_dict["data"], "config": cfg_dict, "store": store_info,
        "role": role, "level": 0 if role == "fine" else 1, "selection": selection,
        "work_units": record["work_units"],
        "metrics": {"val": record.get(f"{prefix}val"), "val_by_target": record.get(f"{prefix}val_targets")},
        "versions": versions("pde_data", "torch", "numpy"), "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _summary(cfg: RunConfig, dataset: Dataset, monitor: Monitor, store_info: dict, loop: dict, work: float,
             device: torch.device) -> dict:
    final = monitor.history[-1]
    summary = {"problem": cfg.problem, "model": cfg.model.KIND, "trainer": cfg.train.trainer,
               "levels": cfg.train.levels, "device": str(device), "processes": distributed.started_processes(),
               "store": store_info, "work_measure": cfg.train.work_measure, "data_streamed": dataset.streamed,
               "work_units": work, "cycles": loop["cycles"], "elapsed_s": loop["elapsed_s"],
               "eval_elapsed_s": list(loop.get("eval_elapsed_s", [])),   # per history record
               "n_train": len(dataset["train"]), "n_val": len(dataset["val"]), **monitor.summary(),
               "final": {"val": final["val"], "train": final.get("train")}}
    if "aux" in monitor.roles:
        summary["aux_final"] = {"val": final["aux_val"]}
    return summary


def _write_outputs(cfg: RunConfig, out: Path, stage: Callable[[Path], Path], dataset: Dataset, hier,
                   monitor: Monitor, summary: dict, store_info: dict) -> list[str]:
    """Write the model files, history and summary under ``stage`` d names; returns their names."""
    final = monitor.history[-1]
    written = ["history.json", "train_summary.json"]
    for role, level in (("fine", 0), ("aux", 1))[:len(monitor.roles)]:
        prefix = "aux_" if role == "aux" else ""
        net = hier.nets[level]
        save_model(stage(out / f"{prefix}final.pt"), net,
                   _model_meta(cfg, dataset, net, role, "final", final, store_info))
        best = monitor.best[role]
        best_net = build_net(best["arch"])
        best_net.load_state_dict(best["state"])
        save_model(stage(out / f"{prefix}best.pt"), best_net,
                   _model_meta(cfg, dataset, best_net, role, "best", best["record"], store_info))
        written += [f"{prefix}final.pt", f"{prefix}best.pt"]
    write_json(stage(out / "history.json"), monitor.history, indent=None)
    write_json(stage(out / "train_summary.json"), summary)
    return written


def flat_metrics(summary: dict) -> dict[str, float]:
    """The few numbers to compare across experiments (``dvc metrics``): the best validation MSE and L-inf
    of the fine network and the best validation MSE of the first auxiliary one (the rest: train_summary.json)."""
    out = {"val_mse": summary["best"]["mse"], "val_linf": summary["best"]["linf"]}
    if "aux_best" in summary:
        out["aux_val_mse"] = summary["aux_best"]["mse"]
    return out
