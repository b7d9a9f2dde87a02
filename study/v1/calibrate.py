"""The first study's calibration: seconds per FLOP work unit of every set-up and trainer, and its wall time."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from study.core import MOMENTUM, cycle_rate, eval_seconds, load_seconds, nets, random_data


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
        cfg, layout, net0, coarse = nets(spec, setup, params, device)
        X, Y = random_data(spec, setup, layout, dev)
        per_wu: dict[str, float] = {}
        kinds = [("sgd", 1, "sgd"), ("adam", 1, "adam")] + [
            (f"fas{L}", L, "sgd") for L in sorted({spec["method_defs"][m]["levels"] for m in spec["methods"]} - {1})]
        for name, levels, opt in kinds:
            torch.manual_seed(0)
            net = make_net(cfg.to_dict()["model"], layout).to(dev)
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
