"""Calibration helpers: a set-up's nets on random data of its shapes, timed passes of a trainer, evaluations
and store loads (each edition times its own trainers with them)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from study.core.setups import Setup


def grid_layout(problem: str, params: str | None):
    """The problem's data layout on the params' grid (the study's targets: Poisson's u field, Darcy's Q)."""
    from surrogate.layout import make_layout

    n = 32
    if params and Path(params).exists():
        import yaml

        n = int(((yaml.safe_load(Path(params).read_text()) or {}).get(problem) or {}).get("n", n))
    return make_layout(problem, None, {"kappa": (n, n), "u": (n, n), "log_k": (n, n), "Q": ()})


def nets(spec: Mapping, setup: str, params: str | None, device: str):
    """The set-up's resolved config, data layout, fine net (seed 0) and its once-coarsened (half-width) copy."""
    import torch

    from surrogate.io import make_net
    from surrogate.multilevel import build_hierarchy

    cfg = Setup.from_spec(spec, setup).run(seed=0, device=device)
    shapes = grid_layout(cfg.problem, params)
    torch.manual_seed(0)
    net = make_net(cfg.to_dict()["model"], shapes)
    return cfg, shapes, net, build_hierarchy(copy.deepcopy(net), 2).nets[1]


def level1_cost(spec: Mapping, setup: str, params: str | None) -> float:
    """FLOP cost of a pass of the once-coarsened (half-width) net relative to the fine net."""
    from surrogate.multilevel import flops_per_sample

    _, _, net, coarse = nets(spec, setup, params, "cpu")
    return flops_per_sample(coarse) / flops_per_sample(net)


def random_data(spec: Mapping, setup: str, shapes: Any, dev: Any) -> tuple[Any, Any]:
    """Random inputs and targets of the set-up's shapes, enough rows for two minibatches (at least 400)."""
    import torch

    s = spec["setups"][setup]
    n = max(2 * s["batch_size"], 400)
    shape = (int(math.prod(shapes.in_shape)),) if s["model"] == "mlp" else tuple(shapes.in_shape)
    return torch.randn((n,) + shape, device=dev), torch.randn(n, shapes.out_dim, device=dev)


def _sync(dev: Any) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def one_pass(tr: Any, dev: Any) -> float:
    """Seconds per FLOP work unit of one timed pass of at least 2 cycles and 12 work units (at most 50 cycles)."""
    w0 = tr.work["flops"]
    _sync(dev)
    t0 = time.perf_counter()
    k = 0
    while k < 2 or (tr.work["flops"] - w0 < 12 and k < 50):
        tr.cycle()
        k += 1
    _sync(dev)
    return (time.perf_counter() - t0) / (tr.work["flops"] - w0)


def cycle_rate(tr: Any, dev: Any, repeats: int = 3) -> float:
    """Seconds per FLOP work unit of a trainer: the fastest of ``repeats`` passes after one warm-up cycle."""
    tr.cycle()
    return min(one_pass(tr, dev) for _ in range(repeats))


def eval_seconds(spec: Mapping, setup: str, net: Any, coarse: Any, X: Any, dev: Any, repeats: int = 3
                 ) -> tuple[float, float]:
    """Seconds of one evaluation: the fine net over validation + training subset, the coarse net over
    validation (fastest of ``repeats``; scaled from the rows of ``X``)."""
    import torch

    s = spec["setups"][setup]
    n_eval = s["n_val"] + spec["eval_train_samples"]
    net, coarse = net.to(dev), coarse.to(dev)
    rows, rows_aux = min(len(X), n_eval), min(len(X), s["n_val"])
    best_eval = best_aux = math.inf
    with torch.no_grad():
        for _ in range(repeats):
            _sync(dev)
            t0 = time.perf_counter()
            net(X[:rows])
            _sync(dev)
            best_eval = min(best_eval, (time.perf_counter() - t0) * n_eval / rows)
            t0 = time.perf_counter()
            coarse(X[:rows_aux])
            _sync(dev)
            best_aux = min(best_aux, (time.perf_counter() - t0) * s["n_val"] / rows_aux)
    return best_eval, best_aux


def load_seconds(spec: Mapping, setup: str, cfg: Any, stores: Mapping[str, Path] | None, dev: Any) -> float:
    """Seconds to load the set-up's store (1 s when there is none yet)."""
    from surrogate.dataset import load_dataset, open_store

    s = spec["setups"][setup]
    if stores is None or not Path(stores[s["problem"]]).exists():
        return 1.0
    t0 = time.perf_counter()
    load_dataset(open_store(stores[s["problem"]], s["problem"]), data=cfg.data, flat=s["model"] == "mlp",
                 device=dev, splits=("train", "val"))
    return time.perf_counter() - t0
