"""``surrogate tune``: hyperparameters searched on a narrow proxy of the network, then used at full width.

muTransfer down the width hierarchy (Yang et al. 2022, "Tensor Programs V", section 4): under muP
(:mod:`surrogate.multilevel.width`) the best rates of a network do not depend on its width, so they can be
found on a network a fraction of the size. Here the proxy is level ``tune.level`` of the heavy-edge-matching
hierarchy of the very network that will be trained (about 2^-level of its widths, built from its initial
weights), trained with muP rates relative to the full network's shapes:

1. the search: an Optuna study (TPE after ``tune.startup`` random trials, seeded) over ``tune.space``
   (train keys, log-uniform ranges); each trial trains the proxy ``tune.seeds`` times for ``train.budget_wu``
   of the proxy's own work units, and its value is the mean over seeds of the best validation MSE. A trial
   that diverges scores +inf. The study lives in ``OUT/tune.journal`` (a plain-text Optuna journal): a killed
   search resumes where it stopped, and a search for other settings (config, store, space) gets a study of its
   own;
2. the cost: each proxy run's FLOPs over the full-width run's (work units times forward-backward FLOPs per
   sample), so the search's cost is counted in full-width runs; the search stops after ``tune.trials``
   complete trials, or earlier when its cost reaches ``tune.budget`` full-width runs (0: no cap);
3. the final run: the full network trained with the best values (``surrogate.train.train`` into
   ``OUT/model``), unless ``final=False``.

``OUT/tune.json`` records the space, every trial (values, seconds, cost), the best values, the search's total
seconds and cost, and the final run's summary.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from params import ConfigError, writable_dir
from surrogate import config as config_mod
from surrogate.config import RunConfig, TuneConfig
from surrogate.dataset import Dataset, load_dataset, open_store
from surrogate.io import make_net
from surrogate.metrics import split_errors
from surrogate.monitor import TrainingDiverged
from surrogate.multilevel import DivergenceError, build_hierarchy
from surrogate.outputs import RunOutputs
from surrogate.runtime import pick_device, write_json
from surrogate.schedule import lr_factor
from surrogate.train import Reporting, build_trainer, train

__all__ = ["proxy_run", "tune", "with_values"]

JOURNAL, RECORD, MODEL = "tune.journal", "tune.json", "model"


def with_values(cfg: RunConfig, values: dict[str, float], seed: int | None = None) -> RunConfig:
    """``cfg`` with the tuned ``values`` (dotted train keys) set, checked, and optionally another seed."""
    raw = cfg.train.to_dict()
    for key, value in values.items():
        *path, name = key.split(".")
        node = raw
        for part in path:
            node = node[part]
        node[name] = value
    if seed is not None:
        raw["seed"] = seed
    return dataclasses.replace(cfg, train=config_mod.TrainConfig.from_mapping(raw))


def _proxy(cfg: RunConfig, dataset: Dataset, level: int) -> tuple[torch.nn.Module, list[torch.Size], float]:
    """The level-``level`` net of the full network's hierarchy, the full shapes, and its FLOPs over the full."""
    torch.manual_seed(cfg.train.seed)
    full = make_net(cfg.to_dict()["model"], dataset.layout)
    shapes = [p.shape for p in full.parameters()]
    if level == 0:
        return full, shapes, 1.0
    try:
        net = build_hierarchy(full, level + 1, config=cfg.train.fas, seed=cfg.train.seed).nets[level]
    except ConfigError as exc:
        raise ConfigError(f"tune.level: {level} is not allowed for this network ({exc})") from None
    return net, shapes, net.flops_per_sample() / full.flops_per_sample()


def proxy_run(cfg: RunConfig, dataset: Dataset, level: int, device: torch.device) -> dict[str, float]:
    """Train the level-``level`` proxy for ``train.budget_wu`` of its own work units; its best validation MSE,
    seconds and cost in full-width runs."""
    net, shapes, flops_ratio = _proxy(cfg, dataset, level)
    trainer = build_trainer(cfg, net.to(device), dataset, device, base_shapes=shapes)
    t, best, next_eval, t0 = cfg.train, math.inf, 0.0, time.perf_counter()

    def val() -> float:
        errors = split_errors(trainer.hier.nets[0], dataset["val"], dataset.codec, cfg.data.eval_batch_size)
        return errors[dataset.layout.targets[0]]["mse"]

    try:
        while trainer.work[t.work_measure] < t.budget_wu:
            trainer.scale_lr(lr_factor(t.schedule, trainer.work[t.work_measure] / t.budget_wu, t.warmup))
            trainer.cycle()
            if trainer.work[t.work_measure] >= next_eval and not trainer.growing:
                best, next_eval = min(best, _finite(val())), next_eval + t.eval_every_wu
        best = min(best, _finite(val()))
    except (DivergenceError, TrainingDiverged, FloatingPointError):
        best = math.inf
    cost = flops_ratio * trainer.work["flops"] / t.budget_wu
    return {"best_val_mse": best, "seconds": time.perf_counter() - t0, "cost_runs": cost}


def _finite(value: float) -> float:
    """``value``; a NaN or infinite validation MSE ends the run as diverged (it scores +inf)."""
    if not math.isfinite(value):
        raise FloatingPointError(value)
    return value


def _study_name(cfg: RunConfig, tune_cfg: TuneConfig, fingerprint: str) -> str:
    """A key of everything the search depends on: a search for other settings is a study of its own."""
    what = {"config": cfg.to_dict(), "tune": {k: v for k, v in tune_cfg.to_dict().items() if k != "trials"},
            "store": fingerprint}
    return "tune-" + hashlib.sha1(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _open_study(path: Path, name: str, tune_cfg: TuneConfig):
    try:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend
    except ImportError:
        raise ConfigError("surrogate tune needs optuna: pip install 'pde-surrogate[study]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=tune_cfg.seed, n_startup_trials=tune_cfg.startup)
    return optuna.create_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(path))),
                               sampler=sampler, direction="minimize", load_if_exists=True)


def _search(cfg: RunConfig, tune_cfg: TuneConfig, dataset: Dataset, study, device, show: bool) -> None:
    """Run trials until ``tune.trials`` are complete or their cost reaches ``tune.budget`` full-width runs."""
    from optuna.trial import TrialState
    from tqdm.auto import tqdm

    def done() -> list:
        return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))

    bar = tqdm(total=tune_cfg.trials, initial=len(done()), unit="trial", desc="tune", disable=not show)
    while len(done()) < tune_cfg.trials and not _over_budget(done(), tune_cfg):
        trial = study.ask()
        values = {k: trial.suggest_float(k, lo, hi, log=True) for k, (lo, hi) in tune_cfg.space.items()}
        runs = [proxy_run(with_values(cfg, values, cfg.train.seed + s), dataset, tune_cfg.level, device)
                for s in range(tune_cfg.seeds)]
        for key in ("seconds", "cost_runs"):
            trial.set_user_attr(key, sum(r[key] for r in runs))
        value = sum(r["best_val_mse"] for r in runs) / len(runs)
        study.tell(trial, value if math.isfinite(value) else float("inf"))
        bar.update(1)
        bar.set_postfix(best=f"{study.best_value:.3g}", refresh=False)
    bar.close()


def _over_budget(trials: list, tune_cfg: TuneConfig) -> bool:
    return tune_cfg.budget > 0 and sum(t.user_attrs.get("cost_runs", 0.0) for t in trials) >= tune_cfg.budget


def _record(study, tune_cfg: TuneConfig) -> dict[str, Any]:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    rows = [{"number": t.number, "values": t.params, "value": t.value, **t.user_attrs} for t in trials]
    best = min(rows, key=lambda r: r["value"])
    return {"space": tune_cfg.space, "level": tune_cfg.level, "seeds": tune_cfg.seeds, "trials": rows,
            "best": {"values": best["values"], "value": best["value"], "trial": best["number"]},
            "search": {"trials": len(rows), "seconds": sum(r["seconds"] for r in rows),
                       "cost_runs": sum(r["cost_runs"] for r in rows)}}


def tune(cfg: RunConfig, tune_cfg: TuneConfig, store: str | Path, out: str | Path, *, final: bool = True,
         progress: bool = True, say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Search ``tune_cfg.space`` on the proxy, then train the full network with the best values (module doc)."""
    say = say or (lambda msg: print(msg, file=sys.stderr))
    if tune_cfg.level > 0 and cfg.train.parametrization != "mup":
        raise ConfigError(f"tune.level: {tune_cfg.level} needs train.parametrization mup (rates tuned on a "
                          "narrower net transfer to the full width only under muP); set it, or tune.level 0")
    out = writable_dir(out, "--out")
    device = pick_device(cfg.train.device)
    with RunOutputs(out, None, None) as outputs:
        outputs.lock()
        reader = open_store(store, cfg.problem)
        dataset = load_dataset(reader, data=cfg.data, flat=cfg.model.KIND == "mlp", device=device)
        study = _open_study(out / JOURNAL, _study_name(cfg, tune_cfg, reader.fingerprint()), tune_cfg)
        _search(cfg, tune_cfg, dataset, study, device, progress)
        record = _record(study, tune_cfg)
        write_json(out / RECORD, record)
        s = record["search"]
        say(f"tuned {', '.join(f'{k} = {v:.4g}' for k, v in record['best']['values'].items())} on level "
            f"{tune_cfg.level} in {s['trials']} trials: {s['seconds']:.1f} s, {s['cost_runs']:.2f} full-width runs")
        if final:
            summary = train(with_values(cfg, record["best"]["values"]), store, out / MODEL,
                            reporting=Reporting(progress=progress, live=False))
            record["final"] = {k: summary[k] for k in ("best", "work_units", "elapsed_s")}
            write_json(out / RECORD, record)
    return record
