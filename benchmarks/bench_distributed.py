"""Data-parallel throughput: P gloo processes against one process, at equal global batch.

The paper's Poisson FC network (3072-400-400-1024), global batch 200, plain
SGD steps and 2-level FAS V-cycles through :class:`surrogate.multilevel.FASTrainer`
(the code path of ``torchrun -m surrogate train``), random data. Every
process uses one thread (``torch.set_num_threads(1)``), so P processes use P
cores. Prints training samples per second (global minibatch samples
processed per wall second) for one process and for P, and their ratio
(target: at least 1.6 for P = 2 on CPU).

    python benchmarks/bench_distributed.py [--processes 2] [--steps 60]
"""

from __future__ import annotations

import argparse
import os
import socket
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from surrogate.models import MLP
from surrogate.multilevel import FASConfig, FASTrainer, MinibatchStream, build_hierarchy

WIDTHS = [3072, 400, 400, 1024]
BATCH = 200
SAMPLES = 3200


def _rate(levels: int, steps: int) -> float:
    """Global minibatch samples per second of ``steps`` cycles (one process or one of a group)."""
    torch.manual_seed(0)
    X, Y = torch.randn(SAMPLES, WIDTHS[0]), torch.randn(SAMPLES, WIDTHS[-1])
    fas = FASConfig(levels=levels, pre=1, coarse=1, post=1)
    trainer = FASTrainer(build_hierarchy(MLP(WIDTHS), config=fas), X, Y, MinibatchStream(SAMPLES, BATCH), fas)
    trainer.cycle()  # warm-up
    if dist.is_initialized():
        dist.barrier()
    start, before = time.perf_counter(), trainer.work["flops"]
    for _ in range(steps):
        trainer.cycle()
    if dist.is_initialized():
        dist.barrier()
    return (trainer.work["flops"] - before) * BATCH / (time.perf_counter() - start)


def _backward_ms(samples: int, steps: int) -> float:
    """Milliseconds of one forward + backward of ``samples`` samples through the fine network."""
    torch.manual_seed(0)
    net, X, Y = MLP(WIDTHS), torch.randn(samples, WIDTHS[0]), torch.randn(samples, WIDTHS[-1])
    torch.nn.functional.mse_loss(net(X), Y).backward()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        torch.nn.functional.mse_loss(net(X), Y).backward()
    return (time.perf_counter() - start) / steps * 1e3


def _allreduce_ms(steps: int) -> float:
    """Milliseconds of one all-reduce of a flat buffer as large as the network's gradient, in the group."""
    flat = torch.ones(sum(p.numel() for p in MLP(WIDTHS).parameters()))
    dist.all_reduce(flat)  # warm-up
    dist.barrier()
    start = time.perf_counter()
    for _ in range(steps):
        dist.all_reduce(flat)
    return (time.perf_counter() - start) / steps * 1e3


def _worker(rank: int, world: int, port: int, levels: int, steps: int, out) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    if levels:
        result = _rate(levels, steps)
    else:  # the parts of a data-parallel step, each process busy at once as in training
        result = (_backward_ms(BATCH // world, steps), _allreduce_ms(steps))
    if rank == 0:
        out.put(result)
    dist.destroy_process_group()


def _group_rate(processes: int, levels: int, steps: int):
    """Rank 0's result of :func:`_worker` (levels 0: the step's parts) in a group of ``processes``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    out = ctx.SimpleQueue()
    mp.start_processes(_worker, args=(processes, port, levels, steps, out), nprocs=processes, start_method="spawn")
    return out.get()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--steps", type=int, default=60, help="cycles timed per measurement")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    print(f"paper Poisson FC {WIDTHS}, global batch {BATCH}, 1 thread per process, {args.steps} cycles")
    print(f"{'trainer':<14}{'1 process':>14}{f'{args.processes} processes':>16}{'ratio':>8}  (samples/s)")
    for label, levels in (("SGD", 1), ("FAS 2 levels", 2)):
        one = _rate(levels, args.steps)
        many = _group_rate(args.processes, levels, args.steps)
        print(f"{label:<14}{one:>14.0f}{many:>16.0f}{many / one:>8.2f}  (target >= 1.6 for 2 processes)")
    whole = _backward_ms(BATCH, args.steps)
    share, reduce = _group_rate(args.processes, 0, args.steps)
    params = sum(p.numel() for p in MLP(WIDTHS).parameters())
    print(f"\nwhere a step's time goes (ms; forward + backward only, no optimizer step):\n"
          f"  1 process, {BATCH} samples: {whole:.2f}\n"
          f"  {args.processes} processes, each {BATCH // args.processes} samples: {share:.2f}"
          f" + all-reduce of the {params * 4 / 2**20:.1f} MiB gradient {reduce:.2f}\n"
          f"  bound on the speed-up of exact data parallelism: {whole:.2f} / {share:.2f} = {whole / share:.2f}"
          f" with free communication, {whole:.2f} / ({share:.2f} + {reduce:.2f}) = {whole / (share + reduce):.2f}"
          f" without overlap")


if __name__ == "__main__":
    main()
