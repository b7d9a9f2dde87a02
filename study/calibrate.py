"""Calibration: seconds per FLOP work unit of every set-up and trainer, and the study's expected wall time."""

from __future__ import annotations

import copy
import math
import sys
import time
from pathlib import Path
from typing import Any, Mapping

from study.plan import cfg_dict, run_config
from study.presets import MOMENTUM


def _layout(problem: str, params: str | None):
    """The problem's data layout on the params' grid (the study's targets: Poisson's u field, Darcy's Q)."""
    from surrogate.layout import make_layout

    n = 32
    if params and Path(params).exists():
        import yaml

        n = int(((yaml.safe_load(Path(params).read_text()) or {}).get(problem) or {}).get("n", n))
    return make_layout(problem, None, {"kappa": (n, n), "u": (n, n), "log_k": (n, n), "Q": ()})


def _nets(spec: Mapping, setup: str, params: str | None, device: str):
    """The set-up's resolved config, data layout, fine net (seed 0) and its once-coarsened (half-width) copy."""
    import torch

    from surrogate.io import make_net
    from surrogate.multilevel import build_hierarchy

    s = spec["setups"][setup]
    cfg = run_config(spec, setup, "sgd", 0, params=params, device=device)
    layout = _layout(s["problem"], params)
    torch.manual_seed(0)
    net = make_net(cfg_dict(cfg)["model"], layout)
    return cfg, layout, net, build_hierarchy(copy.deepcopy(net), 2).nets[1]


def level1_cost(spec: Mapping, setup: str, params: str | None) -> float:
    """FLOP cost of a pass of the once-coarsened (half-width) net relative to the fine net."""
    from surrogate.multilevel import flops_per_sample

    _, _, net, coarse = _nets(spec, setup, params, "cpu")
    return flops_per_sample(coarse) / flops_per_sample(net)


def random_data(spec: Mapping, setup: str, layout: Any, dev: Any) -> tuple[Any, Any]:
    """Random inputs and targets of the set-up's shapes, enough rows for two minibatches (at least 400)."""
    import torch

    s = spec["setups"][setup]
    n = max(2 * s["batch_size"], 400)
    shape = (int(math.prod(layout.in_shape)),) if s["model"] == "mlp" else tuple(layout.in_shape)
    return torch.randn((n,) + shape, device=dev), torch.randn(n, layout.out_dim, device=dev)


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


def calibrate(spec: Mapping, *, params: str | None, device: str, stores: Mapping[str, Path] | None = None,
              repeats: int = 3) -> dict:
    """Seconds per FLOP work unit of each set-up and trainer, measured on random data of the right shapes.

    Each figure is the fastest of ``repeats`` timed passes (robust to other
    processes on the CPU).  Also measures one evaluation (validation +
    training subset, + the auxiliary net) and the store load time.
    """
    import torch

    from surrogate.io import make_net
    from surrogate.multilevel import FASTrainer, MinibatchStream, build_hierarchy
    from surrogate.runtime import pick_device

    dev = pick_device(device)
    out: dict[str, Any] = {}
    for setup in spec["selected"]:
        s = spec["setups"][setup]
        cfg, layout, net0, coarse = _nets(spec, setup, params, device)
        X, Y = random_data(spec, setup, layout, dev)
        per_wu: dict[str, float] = {}
        kinds = [("sgd", 1, "sgd"), ("adam", 1, "adam")] + [
            (f"fas{L}", L, "sgd") for L in sorted({spec["method_defs"][m]["levels"] for m in spec["methods"]} - {1})]
        for name, levels, opt in kinds:
            torch.manual_seed(0)
            net = make_net(cfg_dict(cfg)["model"], layout).to(dev)
            tr = FASTrainer(build_hierarchy(net, levels), X, Y, MinibatchStream(len(X), s["batch_size"], device=dev),
                            optimizer=opt, lr=1e-4, momentum=MOMENTUM, pre=s["smoothing"], coarse=s["smoothing"],
                            post=s["smoothing"], rematch_every=s["rematch_every"])
            per_wu[name] = cycle_rate(tr, dev, repeats)
        eval_s, aux_s = eval_seconds(spec, setup, net0, coarse, X, dev, repeats)
        out[setup] = {"s_per_wu": per_wu, "eval_s": eval_s + 0.005, "aux_eval_s": aux_s,
                      "load_s": load_seconds(spec, setup, cfg, stores, dev)}
    return out


def estimate_task(task: Mapping, spec: Mapping, cal: Mapping) -> float:
    """Expected seconds of one run: its work units, evaluations and store load at the calibrated rates."""
    c = cal[task["setup"]]
    m = spec["method_defs"][task["method"]]
    key = m["trainer"] if m["trainer"] != "fas" else f"fas{m['levels']}"
    B = float(task["budget_wu"])
    ev = spec["setups"][task["setup"]]["eval_every_wu"]
    n_eval = B / ev + 2
    frac = task["n_train"] / spec["setups"][task["setup"]]["n_train"]
    eval_s = c["eval_s"] * min(1.0, 0.2 + 0.8 * frac) if task["group"] == "regime" else c["eval_s"]
    per_eval = eval_s + (c["aux_eval_s"] if m["trainer"] == "fas" else 0.0)
    return B * c["s_per_wu"][key] + n_eval * per_eval + c["load_s"] + 0.5


def print_estimate(spec: Mapping, tasks: list[dict], cal: Mapping, jobs: int) -> float:
    """Print the calibration and the expected wall time per set-up (stderr); return the total in seconds."""
    total = 0.0
    by_setup: dict[str, float] = {}
    for t in tasks:
        e = estimate_task(t, spec, cal)
        key = t["setup"] if t["group"] == "main" else "regime map"
        by_setup[key] = by_setup.get(key, 0.0) + e
        total += e
    lines = ["study: calibration (fastest of 3 passes; ms per FLOP work unit) and expected wall time:"]
    for setup, c in cal.items():
        ms = ", ".join(f"{k} {1e3 * v:.2f}" for k, v in c["s_per_wu"].items())
        lines.append(f"  {setup:12s} {ms}; eval {1e3 * c['eval_s']:.0f} ms; load {c['load_s']:.1f} s; "
                     f"level-1 FLOP cost {spec['setups'][setup]['flops_ratio_level1']:.3f}")
    for k, v in by_setup.items():
        n = sum(1 for t in tasks if (t["setup"] if t["group"] == "main" else "regime map") == k)
        lines.append(f"  {k:12s} {n:4d} runs  {v / 60:7.1f} min")
    par = f" (about {total / 60 / jobs:.1f} min with --jobs {jobs} if the cores are free)" if jobs > 1 else ""
    lines.append(f"  total        {len(tasks):4d} runs  {total / 60:7.1f} min sequential{par}")
    print("\n".join(lines), file=sys.stderr, flush=True)
    return total
