"""Calibration of the second study: seconds per FLOP work unit of each trainer it runs, and its wall time.

Each method's runs are built as the study builds them
(:func:`surrogate.train.build_trainer` on the method's resolved config) and
timed on random data of the set-up's shapes with the core's helpers
(:mod:`study.core.calibrate`). A rate key names a phase: ``sgd``,
``adamw`` (one level), ``fas2-adamw`` (FAS levels and smoother),
``grow2-adamw`` (the coarse phase of a nested iteration, per fine-net work
unit). The FAS rates also give the share of each cycle's FLOPs spent on the
coarse levels (``coarse_share``), read off the work counter.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from unittest import mock

from study.core import eval_seconds, load_seconds, nets, one_pass, random_data
from study.v2.methods import family
from study.v2.plan import config

TEST_EVAL_S = 0.5     # evaluating best.pt on the test split, beyond one evaluation and one store load


def rate_keys(d: Mapping) -> tuple[str, str | None]:
    """The rate key of a method's main phase, and of its growth phase (None without nested iteration)."""
    fam = family(d["trainer"], d["smoother"])
    main = f"fas{d['levels']}-{fam}" if d["trainer"] == "fas" else fam
    return main, (f"grow{d['growth']}-{fam}" if d["growth"] > 1 else None)


def _probes(spec: Mapping) -> dict[str, tuple[str, bool]]:
    """A method to time each rate key with, and whether it is the growth phase."""
    out: dict[str, tuple[str, bool]] = {}
    for m, d in spec["method_defs"].items():
        main, grow = rate_keys(d)
        if d["growth"] == 1:
            out.setdefault(main, (m, False))
        if grow:
            out.setdefault(grow, (m, True))
    return out


class _InMemory(dict):
    """The splits that :func:`surrogate.train.build_trainer` reads, held in memory (not streamed)."""

    streamed = False


def _trainer(spec: Mapping, setup: str, method: str, data: tuple, layout: Any, dev: Any) -> tuple[Any, float]:
    """The trainer of ``method`` as a run builds it, after one warm-up cycle, and the FLOP share of the coarse
    levels in that cycle (read off the work counter)."""
    import torch

    from surrogate.dataset import Split
    from surrogate.io import make_net
    from surrogate.multilevel.work import WorkCounter
    from surrogate.train import build_trainer

    cfg = config(spec, setup, method, 0, {}, device=str(dev))
    torch.manual_seed(0)
    net = make_net(cfg.to_dict()["model"], layout).to(dev)
    X, Y = data
    trainer = build_trainer(cfg, net, _InMemory({"train": Split("train", range(len(X)), X, Y)}), dev)
    by_level: dict[int, float] = defaultdict(float)
    add = WorkCounter.add

    def counted(self: WorkCounter, level: int, n_samples: int) -> None:
        by_level[level] += n_samples / self.batch_size * self.cost[level]["flops"]
        add(self, level, n_samples)

    with mock.patch.object(WorkCounter, "add", counted):
        trainer.cycle()
    total = sum(by_level.values())
    return trainer, (sum(v for k, v in by_level.items() if k > 0) / total if total else 0.0)


def calibrate(spec: Mapping, *, params: str | None, device: str, stores: Mapping[str, Path] | None = None,
              repeats: int = 3) -> dict[str, dict]:
    """Per selected set-up: ``s_per_wu`` and ``coarse_share`` by rate key, ``eval_s``, ``aux_eval_s``, ``load_s``.

    The timed passes go round the trainers ``repeats`` times (each keeps its fastest), so that a burst of
    other work on the machine spoils one pass of each rather than every pass of one.
    """
    from surrogate.runtime import pick_device

    dev = pick_device(device)
    out: dict[str, dict] = {}
    for setup in spec["selected"]:
        cfg, layout, net0, coarse = nets(spec, setup, params, device)
        data = random_data(spec, setup, layout, dev)
        built = {key: _trainer(spec, setup, m, data, layout, dev) for key, (m, _) in _probes(spec).items()}
        rates = {key: math.inf for key in built}
        for _ in range(repeats):
            for key, (tr, _) in built.items():
                rates[key] = min(rates[key], one_pass(tr, dev))
        shares = {key: 0.0 if _probes(spec)[key][1] else share for key, (_, share) in built.items()}
        eval_s, aux_s = eval_seconds(spec, setup, net0, coarse, data[0], dev, repeats)
        out[setup] = {"s_per_wu": rates, "coarse_share": shares, "eval_s": eval_s + 0.005, "aux_eval_s": aux_s,
                      "load_s": load_seconds(spec, setup, cfg, stores, dev)}
    return out


def _share(task: Mapping, d: Mapping) -> float:
    """A nested iteration's budget share of the coarse levels: tuned, else mid-range, else the preset's."""
    if d["growth"] == 1:
        return 0.0
    if "share" in task.get("hp", {}):
        return float(task["hp"]["share"])
    if "share" in d["space"]:
        low, high, _ = d["space"]["share"]
        return (low + high) / 2.0
    return float(d["share"])


def estimate_task(task: Mapping, spec: Mapping, cal: Mapping) -> float:
    """Expected seconds of one run (trial, final or regime): training, evaluations, store load, test split."""
    c, d = cal[task["setup"]], spec["method_defs"][task["method"]]
    s = spec["setups"][task["setup"]]
    main, grow = rate_keys(d)
    share = _share(task, d)
    B = float(task["budget_wu"])
    train_s = B * ((1.0 - share) * c["s_per_wu"][main] + share * (c["s_per_wu"][grow] if grow else 0.0))
    frac = task["n_train"] / s["n_train"]
    eval_s = c["eval_s"] * (min(1.0, 0.2 + 0.8 * frac) if task["group"] == "regime" else 1.0)
    per_eval = eval_s + (c["aux_eval_s"] if d["trainer"] == "fas" else 0.0)
    test_s = 0.0 if task["group"] == "tuning" else c["load_s"] + c["eval_s"] + TEST_EVAL_S
    return train_s + (B / s["eval_every_wu"] + 2) * per_eval + c["load_s"] + test_s + 0.5


def phase_of(task: Mapping) -> str:
    return {"tuning": "search", "main": "final runs", "regime": "regime map"}[task["group"]]


def print_estimate(spec: Mapping, tasks: list[dict], cal: Mapping, jobs: int) -> float:
    """Print the calibration and the expected wall time per set-up and phase (stderr); return the total."""
    lines = ["study v2: calibration (fastest timed pass; ms per FLOP work unit) and expected wall time:"]
    for setup, c in cal.items():
        ms = ", ".join(f"{k} {1e3 * v:.2f}" for k, v in c["s_per_wu"].items())
        lines.append(f"  {setup:12s} {ms}; eval {1e3 * c['eval_s']:.0f} ms; load {c['load_s']:.1f} s")
    cells: dict[tuple[str, str], list[float]] = defaultdict(list)
    for t in tasks:
        cells[(t["setup"], phase_of(t))].append(estimate_task(t, spec, cal))
    for (setup, phase), v in cells.items():
        lines.append(f"  {setup:12s} {phase:11s} {len(v):4d} runs  {sum(v) / 60:7.1f} min")
    total = sum(sum(v) for v in cells.values())
    par = f" (about {total / 60 / jobs:.1f} min with --jobs {jobs} if the cores are free)" if jobs > 1 else ""
    lines.append(f"  total                    {len(tasks):4d} runs  {total / 60:7.1f} min sequential{par}")
    print("\n".join(lines), file=sys.stderr, flush=True)
    return total
