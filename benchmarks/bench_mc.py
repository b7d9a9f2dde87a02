"""Throughput of the Monte Carlo ingredients: surrogate Q predictions per second against FEM solves per second.

In one run, on an n x n Darcy grid (default 32, the paper's), prints

* fields/s: fresh log-permeability fields drawn by :class:`surrogate.mc.FieldSampler`
  with numpy (FFT circulant embedding, per-index generators) and with torch on the
  surrogate's device (the cost both MC variants pay per sample);
* predictions/s of surrogate Q, ``Surrogate.predict`` in batches on the chosen device
  (fields drawn beforehand, so this is the network alone, incl. normalisation and host
  <-> device copies), for the Darcy MLP and CNN of ``params.yaml`` and of the paper
  (sec. 8.2), or for a trained model (``--model``);
* solves/s of the FEM model, ``pde_data.darcy.DarcyProblem.solve`` (mixed RTCF1 x DQ0,
  one direct solve; the one-off set-up / JIT compilation is printed apart);
* the speed-up of a surrogate sample over an FEM sample, with and without the field draw.

Each rate is the best of ``--repeats`` timed passes of at least ``--min-time`` seconds
(robust to other processes on the CPU). The untrained networks have random weights: the
cost of a forward pass does not depend on them.

    python benchmarks/bench_mc.py [--n 32] [--model DIR] [--nets all|params] [--device auto|cpu|cuda] [--threads T]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import yaml

from surrogate import mc
from surrogate.io import Surrogate, arch_of, load, make_net
from surrogate.layout import make_layout
from surrogate.runtime import pick_device

FIELD = {"kernel": "matern", "mean": 0.0, "variance": 1.0, "length": 0.2, "nu": 1.5}
PAPER = {"mlp": {"kind": "mlp", "hidden": [1024, 1024, 1024]},
         "cnn": {"kind": "cnn", "conv": [[100, 11, 2], [200, 7, 1], [400, 3, 1]], "fc": [2048, 2048]}}


def untrained(model_cfg: dict, n: int, device: torch.device) -> Surrogate:
    """A Darcy Q surrogate with random weights and identity normalisation."""
    layout = make_layout("darcy", "Q", {"log_k": (n, n), "Q": ()})
    torch.manual_seed(0)
    net = make_net(model_cfg, layout)
    meta = {"problem": "darcy", "layout": layout.to_dict(), "arch": arch_of(net),
            "normalization": {"inputs": {"log_k": [0.0, 1.0]}, "targets": {"Q": [0.0, 1.0]}}}
    return Surrogate(net, meta, device)


def label(cfg: dict) -> str:
    """Short description of a models.darcy.<kind> section: 'mlp 128-128-128', 'cnn c8k11s2/... fc 128-128'."""
    if cfg["kind"] == "mlp":
        return "mlp " + "-".join(map(str, cfg["hidden"]))
    conv = "/".join(f"c{c}k{k}s{s}" for c, k, s in cfg["conv"])
    return f"cnn {conv} fc {'-'.join(map(str, cfg['fc'])) or '-'}"


def rate(fn, count: int, min_time: float, repeats: int) -> float:
    """Best items per second of ``fn()`` (which handles ``count`` items) over ``repeats`` passes."""
    fn()  # warm-up
    best = 0.0
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        best = max(best, calls * count / elapsed)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=32, help="cells per side (default 32)")
    ap.add_argument("--model", default=None, help="a trained Darcy Q model (dir or file) instead of the untrained nets")
    ap.add_argument("--params", default=str(Path(__file__).resolve().parents[1] / "params.yaml"),
                    help="params.yaml with the models.darcy sizes")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--batch", type=int, default=4096, help="fields per predict call (default 4096)")
    ap.add_argument("--nets", choices=["all", "params"], default="all",
                    help="untrained nets to time: those of params.yaml and the paper's (all), or params.yaml's only "
                         "(the paper's CNN takes minutes per pass at n = 128 on a CPU)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--min-time", type=float, default=1.0, help="seconds per timed pass (default 1)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device, key="--device")
    n = args.n

    models: list[tuple[str, Surrogate]] = []
    if args.model:
        m = load(args.model, device)
        n = m.layout.n
        models.append((f"trained {m.arch['kind']} ({args.model})", m))
    else:
        sizes = (yaml.safe_load(Path(args.params).read_text()) or {}).get("models", {}).get("darcy", {})
        for kind in ("mlp", "cnn"):
            if kind in sizes:
                cfg = {"kind": kind, **sizes[kind]}
                models.append((f"{label(cfg)} (params.yaml)", untrained(cfg, n, device)))
        for cfg in PAPER.values() if args.nets == "all" else ():
            models.append((f"{label(cfg)} (paper)", untrained(cfg, n, device)))

    print(f"Darcy Monte Carlo throughput on a {n} x {n} grid; surrogate device {device}"
          f"{'' if device.type == 'cuda' else f' ({torch.get_num_threads()} torch threads)'}, batch {args.batch}")
    t0 = time.perf_counter()
    sampler = mc.FieldSampler(n, FIELD, seed=0)
    on_device = mc.FieldSampler(n, FIELD, seed=0, device=device)
    print(f"field set-up (once): {time.perf_counter() - t0:.3f} s")
    fields_ps = rate(lambda: sampler.draw(0, args.batch), args.batch, args.min_time, args.repeats)
    print(f"{'fields (draw, numpy)':66s} {fields_ps:12.1f} /s")
    device_ps = rate(lambda: _sync(on_device.draw(0, args.batch)), args.batch, args.min_time, args.repeats)
    print(f"{f'fields (draw, torch on {device})':66s} {device_ps:12.1f} /s")
    x = sampler.draw(0, args.batch)

    pred, both = {}, {}
    for name, m in models:
        pred[name] = rate(lambda m=m: m.predict(x, batch_size=args.batch), args.batch, args.min_time, args.repeats)
        print(f"{'surrogate Q: ' + name:66s} {pred[name]:12.1f} /s")
        both[name] = rate(lambda m=m: m.predict(on_device.draw(0, args.batch), batch_size=args.batch), args.batch,
                          args.min_time, args.repeats)
        print(f"{'  fields drawn on ' + str(device) + ' + surrogate Q':66s} {both[name]:12.1f} /s")

    fem_ps = None
    try:
        t0 = time.perf_counter()
        from pde_data.darcy import DarcyProblem

        problem = DarcyProblem(n=n, **FIELD)
        setup = time.perf_counter() - t0
        problem.solve(x[0])
        fem_ps = rate(lambda: [problem.solve(u) for u in x[:20]], 20, args.min_time, args.repeats)
        fem_label = f"FEM solves (DarcyProblem.solve, {problem.ksp.getPC().getFactorSolverType()} LU)"
        print(f"{fem_label:66s} {fem_ps:12.1f} /s"
              f"   (set-up incl. JIT/import {setup:.2f} s, once)")
    except ImportError as exc:
        print(f"FEM solves: skipped, DOLFINx not importable ({exc})")

    if fem_ps:
        target = {("cpu", 32): 50, ("cpu", 128): 100, ("cuda", 128): 1000}.get((device.type, n))
        print("\nspeed-up of one MC sample, surrogate over FEM (network only | fields + surrogate on the device "
              "against numpy field + FEM)" + (f"; target >= {target}x (issue 15)" if target else ""))
        for name, p in pred.items():
            with_field = (1 / fields_ps + 1 / fem_ps) / (1 / both[name])
            print(f"  {name:64s} x{p / fem_ps:9.1f} | x{with_field:7.1f}")


def _sync(x):
    """``x`` after the device finished it (honest GPU timings)."""
    if isinstance(x, torch.Tensor) and x.is_cuda:
        torch.cuda.synchronize(x.device)
    return x


if __name__ == "__main__":
    main()
