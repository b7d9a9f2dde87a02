"""The study's runs: one resolved ``surrogate`` config per set-up, method and seed (and per regime-map cell)."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from study.presets import FAS_STABILITY, MOMENTUM
from study.record import LEGACY_VALUES


def cfg_dict(cfg: Any) -> dict:
    """The nested JSON-able dict of a resolved config (a typed config object or, in older versions, a dict)."""
    return cfg.to_dict() if hasattr(cfg, "to_dict") else copy.deepcopy(cfg)


def _flat(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    """``{"train.fas.match": "before", ...}`` of a nested mapping."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, Mapping) else {f"{prefix}{k}": v})
    return out


@functools.lru_cache(maxsize=1)
def known_keys() -> frozenset[str]:
    """Every dotted key of a resolved ``surrogate`` config (the keys that an override may set)."""
    from surrogate import config

    return frozenset(_flat(config.resolve(None, problem="poisson", model="mlp", trainer="sgd").to_dict()))


def pinned_overrides() -> list[str]:
    """``-S`` overrides that hold every key added after the first records at its legacy value
    (:data:`study.record.LEGACY_VALUES`), where the trainer knows the key: a new default in params.yaml
    cannot change what a run means."""
    return [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in _flat(LEGACY_VALUES).items()
            if k in known_keys()]


def run_config(spec: Mapping, setup: str, method: str, seed: int, *, params: str | None, device: str,
               budget: float | None = None, n_train: int | None = None, extra: Sequence[str] = ()) -> Any:
    """The resolved ``surrogate`` config of one run (every training knob set explicitly).

    ``extra``: further ``-S`` overrides, applied last (the second study's methods).
    """
    from surrogate import config

    s = spec["setups"][setup]
    m = spec["method_defs"][method]
    B = float(budget if budget is not None else s["budget_wu"])
    split = dict(spec["split"])
    if n_train is not None:
        frac = n_train / s["n_samples"]
        split = {"train": frac, "val": spec["split"]["val"], "test": 1.0 - frac - spec["split"]["val"]}
    smooth = s["smoothing"]
    ov = [
        f"data.split={json.dumps(split)}", "data.normalize=true", "data.allow_incomplete=false",
        f"models.{s['problem']}.{s['model']}={json.dumps(s['arch'])}",
        f"train.budget_wu={B}", "train.work_measure=flops", f"train.batch_size={s['batch_size']}",
        f"train.lr={m['lr']}", f"train.momentum={MOMENTUM}", f"train.weight_decay={s['weight_decay']}",
        f"train.seed={seed}", f"train.device={device}", f"train.eval_every_wu={s['eval_every_wu']}",
        f"train.checkpoint_every_wu={max(B / 5.0, s['eval_every_wu'])}",
        f"train.eval_train_samples={spec['eval_train_samples']}", "train.best_metric=mse",
        f"train.by_problem.{s['problem']}={{}}",
        "train.fas.cycle=V", "train.fas.smoother=sgd", f"train.fas.pre={smooth}", f"train.fas.coarse={smooth}",
        f"train.fas.post={smooth}", f"train.fas.tau={m['tau'] or 'minibatch'}",
        f"train.fas.alpha_p={FAS_STABILITY['alpha_p']}", f"train.fas.alpha_m={FAS_STABILITY['alpha_m']}",
        f"train.fas.gamma={FAS_STABILITY['gamma']}", f"train.fas.eta={FAS_STABILITY['eta']}",
        "train.fas.theta=0.0", "train.fas.interpolation=plain", "train.fas.order=natural",
        f"train.fas.rematch_every={s['rematch_every']}", f"train.by_trainer.{m['trainer']}={{}}",
        *pinned_overrides(),
    ]
    if m["trainer"] == "fas":
        ov.append(f"train.fas.levels={m['levels']}")
    return config.resolve(params, problem=s["problem"], model=s["model"], trainer=m["trainer"],
                          overrides=[*ov, *extra])


def make_task(run_id: str, setup: str, method: str, seed: int, group: str, n_train: int, budget_wu: float,
              run_dir: Path, store: Path, cfg: Any) -> dict:
    """One run: ``cfg`` (what :func:`surrogate.train.train` takes) and ``config`` (its JSON-able dict)."""
    return {"run_id": run_id, "setup": setup, "method": method, "seed": seed, "group": group, "n_train": n_train,
            "budget_wu": budget_wu, "dir": str(run_dir), "store": str(store), "cfg": cfg,
            "config": json.loads(json.dumps(cfg_dict(cfg), default=str))}


def plan(spec: Mapping, out: Path, stores: Mapping[str, Path], *, params: str | None, device: str) -> list[dict]:
    """Every run of the selected set-ups: the main grid (set-up x method x seed), then the regime map."""
    tasks = []
    for setup in spec["selected"]:
        s = spec["setups"][setup]
        for method in spec["methods"]:
            for seed in range(spec["seeds"]):
                tasks.append(make_task(f"{setup}/{method}/seed{seed}", setup, method, seed, "main", s["n_train"],
                                       s["budget_wu"], out / "runs" / setup / method / f"seed{seed}",
                                       stores[s["problem"]],
                                       run_config(spec, setup, method, seed, params=params, device=device)))
    reg = spec["regime"]
    if reg["setup"] in spec["selected"]:
        store = stores[spec["setups"][reg["setup"]]["problem"]]
        for n in reg["n_train"]:
            for method in reg["methods"]:
                for seed in range(reg["seeds"]):
                    tasks.append(make_task(f"regime-n{n}/{method}/seed{seed}", reg["setup"], method, seed,
                                           "regime", n, reg["budget_wu"],
                                           out / "runs" / f"regime-n{n}" / method / f"seed{seed}", store,
                                           run_config(spec, reg["setup"], method, seed, params=params,
                                                      device=device, budget=reg["budget_wu"], n_train=n)))
    return tasks
