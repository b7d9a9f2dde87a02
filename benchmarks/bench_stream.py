"""Training from a store larger than the memory budget: streamed minibatches against loaded ones.

Writes a Darcy-shaped store of random fields (``log_k`` n x n, ``Q``) in the
project's store format (no solver needed: throughput does not depend on the
values), then, for the same CNN and minibatches, times

* ``loaded``: the splits encoded once onto the device (what training does when
  they fit ``data.memory_budget_mb``), then training steps;
* ``streamed``: every minibatch read from its Zarr chunks (``StreamedArray``,
  an LRU cache of chunks within the budget, here set far below the data size),
  with the global shuffle (the same minibatches as loaded) and with
  ``data.stream_order: chunks`` (chunk-local shuffles: each chunk read about
  once per epoch).

It prints samples per second of each and their ratio, and the store's size.

    python benchmarks/bench_stream.py [--n 128] [--samples 2000] [--steps 40]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from params import replace
from pde_data import chunks, store
from surrogate import config
from surrogate.dataset import load_dataset
from surrogate.io import make_net
from surrogate.train import build_trainer


class RandomDarcy:
    """A Darcy-shaped family of random fields (store format only; nothing is solved)."""

    name, schema_version = "darcy", 1

    def __init__(self, n: int):
        self.params = {"n": n, "random": True}
        self.mesh = {"cells": [n, n]}
        self.sample_arrays = {"log_k": ((n, n), "float32"), "Q": ((), "float64")}
        self.n = n

    def store_arrays(self):
        t = ((np.arange(self.n) + 0.5) / self.n).astype(np.float32)
        return {"x": t, "y": t}


def write_store(path: Path, n: int, samples: int, chunk: int) -> None:
    fam = RandomDarcy(n)
    rec = store.record(fam, {"samples": samples, "chunk": chunk, "seed": 0}, {"bench": "1"})
    store.prepare(path, fam, rec)
    group, _ = store.open_store_group(path, mode="r+")
    targets = chunks.writable(group, [*fam.sample_arrays, "done"])
    rng = np.random.default_rng(0)
    for start in range(0, samples, chunk):
        stop = min(start + chunk, samples)
        chunks.write_chunk(targets, start, {"log_k": rng.standard_normal((stop - start, n, n), dtype=np.float32),
                                           "Q": rng.random(stop - start)})


def rate(cfg, path: Path, stream: bool, steps: int) -> tuple[float, bool]:
    """Training samples per second of ``steps`` one-level steps, and whether the data were streamed."""
    torch.manual_seed(0)
    data = load_dataset(path, data=cfg.data, flat=False, force_stream=stream)
    net = make_net(cfg.to_dict()["model"], data.layout)
    trainer = build_trainer(cfg, net, data, torch.device("cpu"))
    trainer.cycle()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.cycle()
    return steps * cfg.train.batch_size / (time.perf_counter() - start), data.streamed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "darcy.zarr"
        t0 = time.perf_counter()
        write_store(path, args.n, args.samples, args.chunk)
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
        print(f"store: {args.samples} samples of {args.n} x {args.n}, {size:.0f} MiB on disk "
              f"(written in {time.perf_counter() - t0:.1f} s)")
        cfg = config.resolve({"models": {"darcy": {"cnn": {"conv": [[16, 7, 4], [32, 5, 2], [32, 3, 2]],
                                                           "fc": [128]}}}},
                             problem="darcy", model="cnn", trainer="adam",
                             overrides=[f"train.batch_size={args.batch}", "train.device=cpu",
                                        "data.memory_budget_mb=16"])
        loaded, _ = rate(cfg, path, False, args.steps)
        streamed, was = rate(cfg, path, True, args.steps)
        chunked, _ = rate(dataclasses.replace(cfg, data=replace(cfg.data, stream_order="chunks")), path, True,
                          args.steps)
        assert was
        print(f"CNN conv [[16,7,4],[32,5,2],[32,3,2]] fc [128], batch {args.batch}, {args.steps} Adam steps, CPU")
        print(f"  loaded                          {loaded:9.0f} samples/s")
        print(f"  streamed, global shuffle        {streamed:9.0f} samples/s   {streamed / loaded:.2f}x loaded")
        print(f"  streamed, stream_order chunks   {chunked:9.0f} samples/s   {chunked / loaded:.2f}x loaded")
        print(f"  (chunk {args.chunk} samples, cache 16 MiB)")


if __name__ == "__main__":
    main()
