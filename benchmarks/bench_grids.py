"""Grids of n = 32 to 256 cells per side: field draws, FEM solves, end-to-end generation, MPI scaling (issue 15).

For each n of ``--sizes`` it measures, per sample:

- field draw (Darcy log_k, default kernel): ``GaussianRandomField.sample_index``
  with method fft (circulant embedding) and, for n <= 64, cholesky (the dense
  reference), one core, including the sample's SeedSequence generator;
- bare assemble + solve of each family (``family.solve_fem``: no draw, no grid
  transfer, no I/O), as in ``benchmarks/bench_generate.py``;
- ``family.solve`` (the bare solve plus QoI and grid transfer);
- end to end through ``pde_data.generate.generate`` (draw, solve, grid
  transfer, Zarr write) as the marginal cost (T(N) - T(one chunk)) / (N - chunk),
  in the chunks that ``chunk: auto`` gives a store of 8000 samples (Darcy: 512
  samples at n = 32, 8 at n = 256; Poisson half as many); its ratio to the bare
  solve is paired: each end-to-end run over the mean of the bare runs just before
  and just after it, the median over the repeats (this machine's speed drifts by
  up to ~20% over seconds, so best-of figures from different moments mislead);
  and, inside those runs, the CPU time of the draws, the solves (``solve_fem``
  apart) and the chunk writes, whose sum over the time in ``solve_fem`` is the
  end-to-end ratio within one run;
- samples/s of ``generate`` under ``mpiexec -n R`` for R = 1, 2, marginal
  likewise: each rank times two stores (R chunks, then N samples) in one
  process, so that process start-up, imports and JIT-cache loading drop out.

Every process runs with one BLAS/OpenMP thread (MUMPS would otherwise use two
threads in a one-rank run and none to spare with two ranks), so "1 rank" is
one core and the bare solve is the one-core figure.
Each time is the best of ``--repeat`` interleaved runs, to damp the noise of a
shared machine; the end-to-end ratios are medians as described above. Prints a
table and the issue's targets next to the measured ratios; ``--out`` also writes
them as Markdown (default docs/GRIDS.md).

    .venv/bin/python benchmarks/bench_grids.py [--sizes 32 64 128 256] [--repeat 2] [--out docs/GRIDS.md]
"""

from __future__ import annotations

import os

ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
os.environ.update(ONE_THREAD)  # before numpy and PETSc load their BLAS

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Self

from pde_data import chunks
from pde_data.fields import FIELD_PARAMS, GaussianRandomField, sample_rng  # numpy only
from pde_data.generate import generate  # before dolfinx: orders MPI
from pde_data.problems import get_family

PROBLEMS = ("darcy", "poisson")
#: n -> samples N of the end-to-end and MPI runs (4-15 s of Darcy solves on one core each, 4 Darcy chunks),
#: and the inputs timed for the bare and full solves (about 1-2 s of Darcy solves).
RUNS = {32: (2048, 384), 64: (512, 96), 128: (128, 24), 256: (48, 12)}
#: The chunk of every run: what ``chunk: auto`` gives a store of this many samples (the pipeline's Darcy store).
STORE_SAMPLES = 8000
#: n -> field draws per timing (fft); the cholesky reference draws a quarter as many.
DRAWS = {32: 400, 64: 200, 128: 100, 256: 30}
#: The largest n for the cholesky reference (n = 64: ~20 s to factorise, 0.4 GB).
CHOLESKY_MAX_N = 64
TARGETS = {"draw": 2.0, "e2e": 1.2, "mpi": 1.8}
#: Run by every rank under mpiexec: marginal samples/s of generate by the wall clock and by the CPU time
#: of the busiest rank (printed by rank 0).
MPI_DRIVER = """
import sys, time
from pde_data.generate import generate
from mpi4py import MPI
problem, n, chunk, warm, samples, out = sys.argv[1], *map(int, sys.argv[2:6]), sys.argv[6]
wall, cpu = [], []
for count in (warm, samples):
    MPI.COMM_WORLD.barrier()
    start, start_cpu = time.perf_counter(), time.process_time()
    generate(problem, f"{out}-{count}.zarr", samples=count, chunk=chunk, progress=False, overrides=[f"{problem}.n={n}"])
    wall.append(time.perf_counter() - start)
    cpu.append(time.process_time() - start_cpu)
busiest = MPI.COMM_WORLD.reduce(cpu[1] - cpu[0], op=MPI.MAX)
if MPI.COMM_WORLD.rank == 0:
    print((samples - warm) / (wall[1] - wall[0]), (samples - warm) / busiest)
"""


class Cost(tuple):
    """(wall, cpu) seconds of one unit of work; ``best`` takes each at its minimum over runs."""

    def __new__(cls, wall: float, cpu: float):
        return super().__new__(cls, (wall, cpu))

    @staticmethod
    def best(costs) -> Cost:
        costs = list(costs)
        return Cost(*(min(c[i] for c in costs) for i in range(2)))


def timed(fn, count: int) -> Cost:
    """Cost of each of ``count`` units of work done by ``fn()``."""
    start, start_cpu = time.perf_counter(), time.process_time()
    fn()
    return Cost((time.perf_counter() - start) / count, (time.process_time() - start_cpu) / count)


def draw_cost(field: GaussianRandomField, draws: int) -> Cost:
    field.sample_index(0, 0)  # warm-up
    return timed(lambda: [field.sample_index(0, i) for i in range(draws)], draws)


def solve_cost(family, inputs, bare: bool) -> Cost:
    step = family.solve_fem if bare else family.solve
    step(inputs[0])  # warm-up
    return timed(lambda: [step(sample) for sample in inputs], len(inputs))


class InsideTimes:
    """CPU seconds spent inside the named functions while active: patched in on enter, restored on exit."""

    def __init__(self, targets: dict[str, tuple[object, str]]):
        self.targets, self.seconds = targets, dict.fromkeys(targets, 0.0)

    def __enter__(self) -> Self:
        self.saved = {name: getattr(owner, attr) for name, (owner, attr) in self.targets.items()}
        for name, (owner, attr) in self.targets.items():
            setattr(owner, attr, self._timed(name, self.saved[name]))
        return self

    def __exit__(self, *exc) -> None:
        for name, (owner, attr) in self.targets.items():
            setattr(owner, attr, self.saved[name])

    def _timed(self, name: str, fn):
        def inner(*args, **kwargs):
            start = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.process_time() - start
        return inner


def end_to_end_cost(problem: str, n: int, samples: int, chunk: int, tmp: Path) -> tuple[Cost, dict[str, float]]:
    """Marginal cost of a sample of ``generate``: (T(N) - T(one chunk)) / (N - chunk), start-up excluded.

    Also the marginal CPU seconds a sample spends in the family's ``draw``, ``solve``
    and ``solve_fem`` (the bare assemble+solve) and in the chunk writes, and in all.
    """
    family_cls = get_family(problem)
    parts = {"draw": (family_cls, "draw"), "solve": (family_cls, "solve"), "solve_fem": (family_cls, "solve_fem"),
             "write": (chunks, "write_chunk")}
    costs, inside = [], []
    for count in (chunk, samples):
        out = tmp / f"store-{count}.zarr"
        shutil.rmtree(out, ignore_errors=True)
        run = partial(generate, problem, out, samples=count, chunk=chunk, progress=False,
                      overrides=[f"{problem}.n={n}"])
        with InsideTimes(parts) as probe:
            costs.append(timed(run, 1))
        inside.append({**probe.seconds, "all": costs[-1][1]})
        shutil.rmtree(out, ignore_errors=True)
    per_sample = {name: (inside[1][name] - inside[0][name]) / (samples - chunk) for name in inside[0]}
    return Cost(*((costs[1][i] - costs[0][i]) / (samples - chunk) for i in range(2))), per_sample


def mpi_rates(problem: str, n: int, ranks: int, samples: int, chunk: int, tmp: Path) -> tuple[float, float]:
    """Samples/s of ``generate`` on ``ranks`` ranks: (by the wall clock, by the busiest rank's CPU time)."""
    mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or "mpiexec"
    out = tmp / f"mpi-{ranks}"
    cmd = [mpiexec, "-n", str(ranks), sys.executable, "-c", MPI_DRIVER,
           problem, str(n), str(chunk), str(ranks * chunk), str(samples), str(out)]
    run = subprocess.run(cmd, check=True, capture_output=True, text=True)
    for store in tmp.glob(f"{out.name}-*.zarr"):
        shutil.rmtree(store)
    wall, cpu = map(float, run.stdout.strip().splitlines()[-1].split())
    return wall, cpu


def measure(n: int, repeat: int, tmp: Path) -> dict:
    """All figures of grid size n: {"draw": {method: Cost}, "setup": {method: s}, problem: {...}}."""
    samples, solves = RUNS.get(n, (max(48, 48 * (256 // n) ** 2), 16))
    draws = DRAWS.get(n, 30)
    field_params = {key: spec.default for key, spec in FIELD_PARAMS.items()}
    row: dict = {"n": n, "samples": samples, "draw": {}, "setup": {}, "embedding": None, "load": os.getloadavg()[0]}
    for method in ("fft", "cholesky") if n <= CHOLESKY_MAX_N else ("fft",):
        start = time.perf_counter()
        field = GaussianRandomField(n, **{**field_params, "method": method})
        row["setup"][method] = time.perf_counter() - start
        count = draws if method == "fft" else draws // 4
        row["draw"][method] = Cost.best(draw_cost(field, count) for _ in range(repeat))
        if field.embedding is not None:
            row["embedding"] = field.embedding.shape[0]
        del field
    for problem in PROBLEMS:
        family = get_family(problem)(n=n)
        chunk = chunks.auto_chunk(family.sample_arrays, STORE_SAMPLES)
        inputs = [family.draw(sample_rng(0, i)) for i in range(solves)]
        bare = [solve_cost(family, inputs, bare=True)]
        runs = []
        for _ in range(repeat):
            runs.append((solve_cost(family, inputs, bare=False), end_to_end_cost(problem, n, samples, chunk, tmp),
                         *(mpi_rates(problem, n, r, samples, chunk, tmp) for r in (1, 2))))
            bare.append(solve_cost(family, inputs, bare=True))
        paired = [tuple(run[1][0][i] / ((before[i] + after[i]) / 2) for i in range(2))
                  for run, before, after in zip(runs, bare, bare[1:])]
        inside = {name: statistics.median(r[1][1][name] for r in runs) for name in runs[0][1][1]}
        row[problem] = {
            "bare": Cost.best(bare), "solve": Cost.best(r[0] for r in runs),
            "e2e": Cost.best(r[1][0] for r in runs),
            "e2e_ratio": tuple(statistics.median(p[i] for p in paired) for i in range(2)),
            "inside": inside,
            "in_run_ratio": statistics.median(r[1][1]["all"] / r[1][1]["solve_fem"] for r in runs),
            "rate1": tuple(max(r[2][i] for r in runs) for i in range(2)),
            "rate2": tuple(max(r[3][i] for r in runs) for i in range(2)),
            "solver": family.mesh.get("solver", "?"), "chunk": chunk,
        }
        del family
    return row


def ms(cost: Cost | None, cpu: bool = False) -> str:
    return "—" if cost is None else f"{cost[cpu] * 1e3:.2f}"


def ratios(row: dict, problem: str) -> dict[str, tuple[float, float]]:
    """e2e / bare (paired, median over the repeats) and 2 / 1 ranks, each (by the wall clock, by CPU time)."""
    p = row[problem]
    return {"e2e": p["e2e_ratio"],
            "mpi": tuple(p["rate2"][i] / p["rate1"][i] for i in range(2))}


def table(rows: list[dict]) -> list[str]:
    header = ("| n | problem | solver | draw fft ms (torus) | draw cholesky ms | bare assemble+solve ms | solve ms "
              "| end to end ms | e2e / bare (CPU) | 1 rank /s | 2 ranks /s | 2 / 1 ranks (CPU) |")
    lines = [header, "|---" * 12 + "|"]
    for row in rows:
        for problem in PROBLEMS:
            p, r = row[problem], ratios(row, problem)
            fft, cholesky = "—", "—"
            if problem == "darcy":
                fft = f"{ms(row['draw']['fft'])} ({row['embedding']}²)"
                cholesky = ms(row["draw"].get("cholesky"))
            lines.append(
                f"| {row['n']} | {problem} | {p['solver']} | {fft} | {cholesky} | {ms(p['bare'])} | {ms(p['solve'])} "
                f"| {ms(p['e2e'])} | {r['e2e'][0]:.2f}x ({r['e2e'][1]:.2f}x) | {p['rate1'][0]:.1f} "
                f"| {p['rate2'][0]:.1f} | {r['mpi'][0]:.2f}x ({r['mpi'][1]:.2f}x) |"
            )
    return lines


def targets(rows: list[dict]) -> list[str]:
    lines = ["| target | measured (wall clock) | | by CPU time |", "|---|---|---|---|"]

    def line(what: str, values: tuple[float, float], unit: str, ok) -> None:
        lines.append(f"| {what} | {values[0]:.2f}{unit} | {'met' if ok(values[0]) else 'MISSED'} "
                     f"| {values[1]:.2f}{unit} ({'met' if ok(values[1]) else 'missed'}) |")

    for row in rows:
        if row["n"] == 128:
            line(f"field draw at n = 128, one core, numpy: <= {TARGETS['draw']:g} ms",
                 tuple(t * 1e3 for t in row["draw"]["fft"]), " ms", lambda v: v <= TARGETS["draw"])
    for row in rows:
        line(f"end-to-end Darcy at n = {row['n']}: <= {TARGETS['e2e']:g}x bare", ratios(row, "darcy")["e2e"], "x",
             lambda v: v <= TARGETS["e2e"])
    for row in rows:
        ratio = row["darcy"]["in_run_ratio"]
        lines.append(f"| end-to-end Darcy at n = {row['n']}, within one run: <= {TARGETS['e2e']:g}x its time in "
                     f"solve_fem | — | | {ratio:.2f}x ({'met' if ratio <= TARGETS['e2e'] else 'missed'}) |")
    for row in rows:
        for problem in PROBLEMS:
            line(f"2 MPI ranks, {problem} at n = {row['n']}: >= {TARGETS['mpi']:g}x one rank",
                 ratios(row, problem)["mpi"], "x", lambda v: v >= TARGETS["mpi"])
    return lines


def breakdown(rows: list[dict]) -> list[str]:
    """Where a Darcy sample's CPU time goes within the end-to-end runs (marginal ms, median over the runs)."""
    header = ("| n | draw ms | bare assemble+solve (solve_fem) ms | QoI + pressure image ms | chunk writes ms "
              "| driver ms | end to end ms | / solve_fem |")
    lines = [header, "|---" * 8 + "|"]
    for row in rows:
        t = {name: seconds * 1e3 for name, seconds in row["darcy"]["inside"].items()}
        driver = t["all"] - t["draw"] - t["solve"] - t["write"]
        lines.append(f"| {row['n']} | {t['draw']:.2f} | {t['solve_fem']:.2f} | {t['solve'] - t['solve_fem']:.2f} "
                     f"| {t['write']:.2f} | {driver:.2f} | {t['all']:.2f} | {row['darcy']['in_run_ratio']:.2f}x |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256], help="cells per side")
    parser.add_argument("--repeat", type=int, default=2, help="interleaved runs; the best counts")
    parser.add_argument("--out", default="docs/GRIDS.md", help="Markdown copy ('' for none)")
    args = parser.parse_args()
    started, load = time.time(), os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            rows.append(measure(n, args.repeat, Path(tmp)))
            print(f"n = {n} done ({time.time() - started:.0f} s)", file=sys.stderr, flush=True)
    setups = ", ".join(f"n = {r['n']}: " + ", ".join(f"{m} {s:.2f} s" for m, s in r["setup"].items()) for r in rows)
    runs = ", ".join(f"n = {r['n']}: N = {r['samples']}, chunk " + " / ".join(str(r[p]["chunk"]) for p in PROBLEMS)
                     + f", load {r['load']:.1f}" for r in rows)
    command = "python benchmarks/bench_grids.py " + " ".join(sys.argv[1:])
    field = ", ".join(f"{k}={v.default}" for k, v in FIELD_PARAMS.items())
    generated = (f"Generated by `{command.strip()}` ({time.strftime('%Y-%m-%d %H:%M')}, "
                 f"{time.time() - started:.0f} s, best of {args.repeat}).")
    machine = (f"Machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), shared: load average "
               f"{load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (this run itself adds 1 to 2). "
               f"One BLAS/OpenMP thread per process. Darcy and Poisson with the defaults of params.yaml but n; "
               f"field: {field}. Runs (chunk: Darcy / Poisson; 1-min load average when each n started): {runs}. "
               f"Field set-up: {setups}. "
               "Times are best of the runs; e2e / bare is the median over the runs of each end-to-end time over "
               "the mean of the bare times measured just before and just after it. "
               "Ratios in brackets use CPU time instead of the wall clock (for MPI: the busiest rank's), "
               "which other processes on a shared machine disturb less.")
    text = [
        generated,
        "",
        machine,
        "",
        *table(rows),
        "",
        "Targets (issue 15):",
        "",
        *targets(rows),
        "",
        ("Where a Darcy sample's CPU time goes, measured inside the end-to-end runs (the CPU time spent in the "
         "family's draw, solve and solve_fem and in the chunk writes; driver = the rest: generators, "
         "stacking, progress; small negative values are timer noise), marginal per sample, median over the runs. "
         "The last column, end to end over "
         "the time in solve_fem of the same run, is free of the machine's drift between runs:"),
        "",
        *breakdown(rows),
    ]
    print("\n".join(text))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("# Grid sizes: field draws, FEM solves, generation\n\n" + "\n".join(text) + "\n")


if __name__ == "__main__":
    main()
