"""Sample generation speed: end to end against the bare FEM solve, and MPI scaling.

For each problem it prints, per sample:
- the bare assemble + solve of the family's system (no grid transfer, no I/O);
- end to end through `pde_data.generate.generate` (draw, solve, grid transfer,
  Zarr write), as the marginal cost: (T(N) - T(one chunk)) / (N - chunk);
- samples/s of `mpiexec -n R pde-data generate` for R = 1, 2, again marginal
  (start-up and JIT-cache loading excluded).
Each figure is the best of --repeat interleaved runs, which damps the noise of
a shared machine.

    .venv/bin/python benchmarks/bench_generate.py [--problem poisson] [--samples 2048] [--chunk 128] [--repeat 3]

To add a problem, add its bare assemble+solve to BARE.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pde_data.fields import sample_rng
from pde_data.generate import generate  # before dolfinx: orders MPI
from pde_data.problems import get_family

#: Problem -> bare assemble + solve of one input (the FEM part of `family.solve`).
BARE = {
    "poisson": lambda family, sample: family.solve_fem(sample),
    "darcy": lambda family, sample: family.solve_fem(sample),  # k^-1, matrix assembly, MUMPS LU
}


def bare_ms(problem: str, samples: int) -> float:
    family = get_family(problem)()
    inputs = [family.draw(sample_rng(0, i)) for i in range(samples)]
    BARE[problem](family, inputs[0])  # warm-up
    start = time.perf_counter()
    for sample in inputs:
        BARE[problem](family, sample)
    return (time.perf_counter() - start) / samples * 1e3


def end_to_end_ms(problem: str, samples: int, chunk: int, tmp: Path) -> float:
    times = {}
    for n in (chunk, samples):
        out = tmp / f"e2e-{n}.zarr"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        generate(problem, out, samples=n, chunk=chunk, progress=False)
        times[n] = time.perf_counter() - start
    return (times[samples] - times[chunk]) / (samples - chunk) * 1e3


def mpi_rate(problem: str, ranks: int, samples: int, chunk: int, tmp: Path) -> float:
    mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or "mpiexec"
    times = {}
    for n in (ranks * chunk, samples):
        out = tmp / f"mpi-{ranks}-{n}.zarr"
        shutil.rmtree(out, ignore_errors=True)
        cmd = [mpiexec, "-n", str(ranks), sys.executable, "-m", "pde_data.cli", "generate", problem,
               "--out", str(out), "--n", str(n), "--chunk", str(chunk), "--no-progress"]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times[n] = time.perf_counter() - start
    return (samples - ranks * chunk) / (times[samples] - times[ranks * chunk])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problem", nargs="*", default=list(BARE), choices=list(BARE))
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--chunk", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for problem in args.problem:
            runs = []
            for _ in range(args.repeat):
                runs.append((
                    bare_ms(problem, min(args.samples, 500)),
                    end_to_end_ms(problem, args.samples, args.chunk, Path(tmp)),
                    *(mpi_rate(problem, r, args.samples, args.chunk, Path(tmp)) for r in (1, 2)),
                ))
            bare, e2e = min(r[0] for r in runs), min(r[1] for r in runs)
            rates = {1: max(r[2] for r in runs), 2: max(r[3] for r in runs)}
            print(f"{problem}: {args.samples} samples, chunk {args.chunk}, default parameters, best of {args.repeat}")
            print(f"  bare assemble+solve   {bare:8.3f} ms/sample")
            print(f"  end to end (generate) {e2e:8.3f} ms/sample   {e2e / bare:.2f}x bare (target <= 1.5x)")
            print(f"  mpiexec -n 1          {rates[1]:8.1f} samples/s")
            speedup = rates[2] / rates[1]
            print(f"  mpiexec -n 2          {rates[2]:8.1f} samples/s   {speedup:.2f}x 1 rank (target >= 1.8x)")


if __name__ == "__main__":
    main()
