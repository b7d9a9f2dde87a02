"""Darcy solves with and without ``pde_data.heap.keep_freed_memory``: time, page faults, kernel time per solve.

Each (n, setting) runs in a fresh process (the malloc settings are process-wide), with one
BLAS/OpenMP thread: a DarcyProblem, a few warm-up solves, then ``--solves`` timed solves of
distinct fields, three times; it prints the best pass. "glibc default" replaces
``keep_freed_memory`` by a no-op before the solver and the sampler are imported, so glibc keeps
its dynamically adjusted thresholds, whose effect depends on the process's allocation history
(at n = 32 some processes fault at every solve and some do not: rerun to see both).

    .venv/bin/python benchmarks/bench_heap.py [--sizes 32 256] [--solves 200 6]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys

ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
#: Run in a fresh process: argv = setting (keep | default), n, solves; prints "ms faults kernel_ms" per solve.
PROBE = """
import resource, sys, time
import pde_data.heap
if sys.argv[1] == "default":
    pde_data.heap.keep_freed_memory = lambda: False
from pde_data.fields import sample_rng
from pde_data.darcy import DarcyProblem
n, solves = int(sys.argv[2]), int(sys.argv[3])
darcy = DarcyProblem(n=n)
inputs = [darcy.draw(sample_rng(0, i)) for i in range(solves)]
for log_k in inputs[:3]:
    darcy.solve_fem(log_k)
best = None
for _ in range(3):
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.process_time()
    for log_k in inputs:
        darcy.solve_fem(log_k)
    seconds, after = time.process_time() - start, resource.getrusage(resource.RUSAGE_SELF)
    row = (seconds * 1e3 / solves, (after.ru_minflt - before.ru_minflt) / solves,
           (after.ru_stime - before.ru_stime) * 1e3 / solves)
    best = row if best is None or row[0] < best[0] else best
print(*best)
"""


def probe(setting: str, n: int, solves: int) -> tuple[float, float, float]:
    run = subprocess.run([sys.executable, "-c", PROBE, setting, str(n), str(solves)], capture_output=True, text=True,
                         check=True, env={**os.environ, **ONE_THREAD})
    ms, faults, kernel = map(float, run.stdout.split())
    return ms, faults, kernel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 256], help="cells per side")
    parser.add_argument("--solves", type=int, nargs="+", default=[200, 6], help="timed solves per pass, per size")
    args = parser.parse_args()
    if len(args.solves) != len(args.sizes):
        parser.error("--solves needs one count per size of --sizes")
    if platform.libc_ver()[0] != "glibc":
        parser.error("the malloc settings are glibc's; this C library is not")
    print("Darcy solve_fem per solve, best of 3 passes, one thread, a fresh process each")
    print(f"{'n':>4}  {'malloc':<24}{'CPU ms':>9}{'page faults':>13}{'kernel ms':>11}")
    for n, solves in zip(args.sizes, args.solves):
        for setting, label in (("default", "glibc default"), ("keep", "keep_freed_memory")):
            ms, faults, kernel = probe(setting, n, solves)
            print(f"{n:>4}  {label:<24}{ms:>9.2f}{faults:>13.0f}{kernel:>11.2f}", flush=True)


if __name__ == "__main__":
    main()
