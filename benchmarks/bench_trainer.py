"""Cost of a FAS V-cycle against the work units it counts (paper Poisson FC network).

For the paper's Poisson fully connected network (3072-400-400-1024), batch
200 and 4 pre-, coarse- and post-smoothing steps, prints for 2, 3 and 4
levels

    ratio = wall seconds per V-cycle
            / (FLOP-based work units per V-cycle * wall seconds per plain SGD step)

with both timings taken in the same run, interleaved (a V-cycle, then a few
plain SGD steps of the fine net, repeated); "ratio" is the median over
these rounds of each round's ratio, "ratio (min)" the fastest cycle over
the fastest step (both are robust to other processes on the CPU), and
"ratio (paper WU)" uses the 1/4-per-level work units instead.  1.0 means
the cycle costs exactly the work it counts; the rest is transfer, tau and
bookkeeping overhead.  The plain step is a bare PyTorch loop (zero_grad,
forward, MSE, backward, SGD-momentum step) on the same kind of minibatch
stream.  The heavy edge matching (every 50 cycles) is timed separately
("s/rematch"): it adds s/rematch / 50 to a cycle on average.

    python benchmarks/bench_trainer.py [--device auto|cpu|cuda] [--cycles 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.nn import functional as F

from surrogate.models import MLP
from surrogate.multilevel import FASTrainer, MinibatchStream, build_hierarchy
from surrogate.runtime import pick_device

WIDTHS = [3072, 400, 400, 1024]
BATCH = 200


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def bench(levels: int, cycles: int, steps_per_round: int, n_samples: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    X = torch.randn(n_samples, WIDTHS[0], device=device)
    Y = torch.randn(n_samples, WIDTHS[-1], device=device)
    model = MLP(WIDTHS).to(device)
    trainer = FASTrainer(build_hierarchy(model, levels), X, Y, MinibatchStream(n_samples, BATCH, device=device),
                         lr=0.01, momentum=0.9, pre=4, coarse=4, post=4)
    plain = MLP(WIDTHS).to(device)
    opt = torch.optim.SGD(plain.parameters(), lr=0.01, momentum=0.9)
    stream = MinibatchStream(n_samples, BATCH, seed=1, device=device)

    def plain_steps():
        for _ in range(steps_per_round):
            idx = stream.next()
            opt.zero_grad(set_to_none=True)
            F.mse_loss(plain(X[idx]), Y[idx]).backward()
            opt.step()

    for _ in range(2):                       # warm-up
        trainer.cycle()
        plain_steps()
    rounds, wu = [], {"flops": 0.0, "paper": 0.0}
    for _ in range(cycles):
        before = trainer.work
        t_cycle = _timed(trainer.cycle, device)
        t_step = _timed(plain_steps, device) / steps_per_round
        wu = {k: trainer.work[k] - before[k] for k in wu}
        rounds.append((t_cycle, t_step))
    trainer.level_losses()
    rematch_s = min(_timed(trainer.hier.rematch, device) for _ in range(3))
    cycle_s = statistics.median(r[0] for r in rounds)
    step_s = statistics.median(r[1] for r in rounds)
    return {"levels": levels, "cycle_s": cycle_s, "rematch_s": rematch_s, "step_s": step_s,
            "wu_flops": wu["flops"], "wu_paper": wu["paper"],
            # each round's cycle against the plain steps timed right after it, median over rounds
            "ratio": statistics.median(c / (wu["flops"] * s) for c, s in rounds),
            "ratio_paper": statistics.median(c / (wu["paper"] * s) for c, s in rounds),
            # fastest cycle against fastest step: robust to other processes sharing the CPU
            "ratio_min": min(r[0] for r in rounds) / (wu["flops"] * min(r[1] for r in rounds))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--levels", type=int, nargs="+", default=[2, 3, 4])
    ap.add_argument("--cycles", type=int, default=30, help="timed V-cycles per hierarchy depth")
    ap.add_argument("--steps", type=int, default=8, help="plain SGD steps timed after each V-cycle")
    ap.add_argument("--samples", type=int, default=4000, help="synthetic training samples")
    args = ap.parse_args()
    device = pick_device(args.device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"MLP {WIDTHS}, batch {BATCH}, pre/coarse/post 4/4/4, V-cycle")
    print(f"{'levels':>6} {'s/cycle':>9} {'s/step':>9} {'WU flops':>9} {'WU paper':>9} "
          f"{'ratio':>7} {'ratio (min)':>12} {'ratio (paper WU)':>17} {'s/rematch':>10}")
    for levels in args.levels:
        r = bench(levels, args.cycles, args.steps, args.samples, device)
        print(f"{r['levels']:>6} {r['cycle_s']:>9.4f} {r['step_s']:>9.5f} {r['wu_flops']:>9.3f} "
              f"{r['wu_paper']:>9.3f} {r['ratio']:>7.3f} {r['ratio_min']:>12.3f} {r['ratio_paper']:>17.3f} "
              f"{r['rematch_s']:>10.4f}")


if __name__ == "__main__":
    main()
