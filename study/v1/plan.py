"""The first study's runs: one typed run config per set-up, method and seed (and per regime-map cell)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from study.core import Setup, make_task
from study.v1.methods import METHODS


def run_config(spec: Mapping, setup: str, method: str, seed: int, *, device: str, budget: float | None = None,
               n_train: int | None = None) -> Any:
    """The :class:`~surrogate.config.RunConfig` of one run: the set-up's (:class:`study.core.Setup`) with the
    method applied; ``budget``/``n_train``: a regime-map run's."""
    cfg = Setup.from_spec(spec, setup).run(seed=seed, device=device, budget=budget, n_train=n_train)
    return dataclasses.replace(cfg, train=METHODS[method].train(cfg.train))


def plan(spec: Mapping, out: Path, stores: Mapping[str, Path], *, device: str) -> list[dict]:
    """Every run of the selected set-ups: the main grid (set-up x method x seed), then the regime map."""
    tasks = []
    for setup in spec["selected"]:
        s = spec["setups"][setup]
        for method in spec["methods"]:
            for seed in range(spec["seeds"]):
                tasks.append(make_task(f"{setup}/{method}/seed{seed}", setup, method, seed, "main", s["n_train"],
                                       s["budget_wu"], out / "runs" / setup / method / f"seed{seed}",
                                       stores[s["problem"]], run_config(spec, setup, method, seed, device=device)))
    reg = spec["regime"]
    if reg["setup"] in spec["selected"]:
        store = stores[spec["setups"][reg["setup"]]["problem"]]
        for n in reg["n_train"]:
            for method in reg["methods"]:
                for seed in range(reg["seeds"]):
                    tasks.append(make_task(f"regime-n{n}/{method}/seed{seed}", reg["setup"], method, seed,
                                           "regime", n, reg["budget_wu"],
                                           out / "runs" / f"regime-n{n}" / method / f"seed{seed}", store,
                                           run_config(spec, reg["setup"], method, seed, device=device,
                                                      budget=reg["budget_wu"], n_train=n)))
    return tasks
