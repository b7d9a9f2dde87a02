"""The second study's runs: tuning trials, final runs (5 seeds, test split) and the regime map.

Layout under ``OUT`` (default ``results/study/v2``; the stores are ``results/study/data``)::

    tuning/<setup>/<method>.journal     Optuna journal of the search (text, committed)
    trials/<setup>/<method>/trial<k>/   a trial's training dir while it runs (deleted after)
    runs/<setup>/<method>/seed<k>/      a final run; record.json (committed) when done
    runs/regime-n<N>/<variant>/seed<k>/ a regime-map run
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from study.core import Setup, make_task
from study.v2.presets import METHODS


def config(spec: Mapping, setup: str, method: str, seed: int, hp: Mapping[str, float], *, device: str,
           n_train: int | None = None) -> Any:
    """The :class:`~surrogate.config.RunConfig` of one run of ``method`` with hyperparameters ``hp``: the
    set-up's (:class:`study.core.Setup`) with the method applied (:meth:`study.v2.methods.Method.train`)."""
    cfg = Setup.from_spec(spec, setup).run(seed=seed, device=device, n_train=n_train)
    train = METHODS[method].train(cfg.train, hp, setup_wd=spec["setups"][setup]["weight_decay"],
                                  match=spec["fas_match"])
    return dataclasses.replace(cfg, train=train)


def _task(spec: Mapping, run_id: str, setup: str, method: str, seed: int, group: str, hp: Mapping, run_dir: Path,
          stores: Mapping[str, Path], ctx: Mapping, n_train: int | None = None) -> dict:
    s = spec["setups"][setup]
    cfg = config(spec, setup, method, seed, hp, n_train=n_train, **ctx)
    t = make_task(run_id, setup, method, seed, group, n_train or s["n_train"], s["budget_wu"], run_dir,
                  stores[s["problem"]], cfg)
    t["hp"] = dict(hp)
    return t


def trial_task(spec: Mapping, out: Path, stores: Mapping[str, Path], setup: str, method: str, number: int,
               hp: Mapping[str, float], **ctx: Any) -> dict:
    """Trial ``number`` of the search of (``setup``, ``method``): the tuning seed, the full budget."""
    return _task(spec, f"{setup}/{method}/trial{number}", setup, method, spec["tuning"]["seed"], "tuning", hp,
                 out / "trials" / setup / method / f"trial{number}", stores, ctx)


def hp_for(spec: Mapping, chosen: Mapping[tuple[str, str], Mapping], setup: str, method: str,
           fallback: bool = False) -> dict | None:
    """The settings a run of ``method`` uses: its (or its base's) chosen trial; {} untuned; None: not yet
    chosen ({}, the untuned defaults, with ``fallback``: for the estimate)."""
    d = spec["method_defs"][method]
    base = d.get("tuned_from", method)
    got = chosen.get((setup, base))
    if not spec["method_defs"][base]["tune"] or (got is None and fallback):
        return {}
    return None if got is None else dict(got)


def trial_tasks(spec: Mapping, out: Path, stores: Mapping[str, Path], **ctx: Any) -> list[dict]:
    """Every trial of every search at the untuned settings (what the estimate counts)."""
    return [trial_task(spec, out, stores, setup, m, k, {}, **ctx) for setup in spec["selected"]
            for m in spec["methods"] if spec["method_defs"][m]["tune"] for k in range(spec["tuning"]["trials"])]


def final_tasks(spec: Mapping, out: Path, stores: Mapping[str, Path], chosen: Mapping, fallback: bool = False,
                **ctx: Any) -> tuple[list[dict], list[str]]:
    """The final runs of the selected set-ups, and the (setup/method) whose search is not finished."""
    tasks, waiting = [], []
    for setup in spec["selected"]:
        for method in spec["methods"]:
            hp = hp_for(spec, chosen, setup, method, fallback)
            if hp is None:
                waiting.append(f"{setup}/{method}")
                continue
            tasks += [_task(spec, f"{setup}/{method}/seed{k}", setup, method, k, "main", hp,
                            out / "runs" / setup / method / f"seed{k}", stores, ctx) for k in range(spec["seeds"])]
    return tasks, waiting


def regime_cells(spec: Mapping) -> list[tuple[int, str, bool]]:
    """``(n_train, variant, from_main)`` of the regime map: the full-size row of a main method is its main runs."""
    reg = spec["regime"]
    full = spec["setups"][reg["setup"]]["n_train"]
    return [(n, m, n == full and m in spec["methods"]) for n in [*reg["n_train"], full] for m in reg["methods"]]


def regime_tasks(spec: Mapping, out: Path, stores: Mapping[str, Path], chosen: Mapping, fallback: bool = False,
                 **ctx: Any) -> tuple[list[dict], list[str]]:
    """The regime-map runs that the main runs do not cover, and the variants whose search is not finished."""
    reg = spec["regime"]
    setup = reg["setup"]
    if setup not in spec["selected"]:
        return [], []
    full = spec["setups"][setup]["n_train"]
    tasks, waiting = [], []
    for n, m, from_main in regime_cells(spec):
        hp = hp_for(spec, chosen, setup, m, fallback)
        if from_main:
            continue
        if hp is None:
            waiting.append(f"regime-n{n}/{m}")
            continue
        tasks += [_task(spec, f"regime-n{n}/{m}/seed{k}", setup, m, k, "regime", hp,
                        out / "runs" / f"regime-n{n}" / m / f"seed{k}", stores, ctx,
                        n_train=None if n == full else n) for k in range(reg["seeds"])]
    return tasks, waiting


def all_tasks(spec: Mapping, out: Path, stores: Mapping[str, Path], chosen: Mapping, fallback: bool = False,
              **ctx: Any) -> tuple[list[dict], list[str]]:
    """The final runs and the regime map (and what waits for its search)."""
    main, w1 = final_tasks(spec, out, stores, chosen, fallback, **ctx)
    reg, w2 = regime_tasks(spec, out, stores, chosen, fallback, **ctx)
    return main + reg, w1 + w2
