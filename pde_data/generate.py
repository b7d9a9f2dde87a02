"""Problem-agnostic generation driver: fill a store, chunk by chunk, on any number of MPI ranks.

Sample i is drawn from ``numpy.random.default_rng(SeedSequence((seed, i)))``
and solved on ``MPI.COMM_SELF``, so the store's content depends only on the
parameters and the seed, never on the number of ranks, the chunk size or
restarts. Rank 0 takes the store's writer lock for the whole run, creates
(or checks and repairs) the store; then the chunks that are not done are
dealt round-robin to the ranks, each of which writes whole chunks.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

try:
    import dolfinx_solver  # noqa: F401 - orders MPI ahead of the bindings where present
except ImportError:
    pass

from mpi4py import MPI
from tqdm import tqdm

from params import ConfigError, read_params
from pde_data import chunks, integrity, lock, store
from pde_data.config import GENERATE, problem_config
from pde_data.fields import sample_rng
from pde_data.problems import PROBLEMS, get_family
from pde_data.provenance import versions
from pde_data.store import StoreError

#: The packages that shape a store's content, recorded in it.
STORE_PACKAGES = ("pde_data", "dolfinx", "petsc4py", "numpy", "zarr")


def solve_chunk(family, seed: int, start: int, stop: int) -> dict[str, np.ndarray]:
    """Draw and solve samples ``start:stop``; returns one stacked array per per-sample field.

    All inputs are drawn first, then solved: each loop keeps its own working set in
    cache (a draw right after a solve runs cold; bench_grids.py times the draws inside
    generate: 0.11 ms of a 3.25 ms Darcy sample at n = 32).
    """
    out = {name: np.empty((stop - start, *shape), dtype) for name, (shape, dtype) in family.sample_arrays.items()}
    inputs = [family.draw(sample_rng(seed, i)) for i in range(start, stop)]
    for j, sample in enumerate(inputs):
        for name, value in family.solve(sample).items():
            out[name][j] = value
    return out


def _on_root(comm: MPI.Comm, fn, *args, share: bool = True) -> Any:
    """Run ``fn`` on rank 0 and broadcast its result (``share=False``: rank 0 keeps it, the others get None).

    A ConfigError (StoreError included) on rank 0 is raised on every rank.
    """
    result = error = None
    if comm.rank == 0:
        try:
            result = fn(*args)
        except ConfigError as err:
            error = err
    if share:
        result, error = comm.bcast((result, error), root=0)
    else:
        error = comm.bcast(error, root=0)
    if error is not None:
        raise error
    return result


def _lock_and_tidy(out: Path) -> lock.WriterLock:
    """Rank 0: take the store's writer lock, then clear what killed runs left."""
    held = lock.writer_lock(out)
    try:
        for line in lock.clean_leftovers(out):
            print(f"pde-data: {line}", file=sys.stderr)
    except OSError as err:
        held.release()
        raise StoreError(f"--out {out}: cannot clean up after an earlier run: {err}") from err
    except BaseException:
        held.release()
        raise
    return held


def _todo(out: Path, samples: int, chunk: int, progress: bool) -> list[int]:
    """Rank 0: verify the store, mark bad chunks not done, and list the chunks to (re)write."""
    try:
        done_index = integrity.repair(out, progress)
    except OSError as err:
        raise _unwritable(out, err) from err
    return chunks.todo_chunks(done_index, samples, chunk)


def _unwritable(out: Path, err: OSError) -> StoreError:
    where = f" ({err.filename})" if err.filename else ""
    return StoreError(f"--out {out}: cannot write the store: {err.strerror or err}{where}")


def generate(
    problem: str,
    out: str | Path,
    params_path: str | Path | None = None,
    samples: int | None = None,
    seed: int | None = None,
    chunk: int | None = None,
    overwrite: bool = False,
    overwrite_changed: bool = False,
    progress: bool = True,
    overrides: Sequence[str] = (),
    comm: MPI.Comm = MPI.COMM_WORLD,
) -> str:
    """Write or resume the store ``out`` for ``problem``; returns "created", "resumed" or "replaced".

    ``overrides`` (``-S darcy.length=0.1``), then ``samples``, ``seed`` and
    ``chunk``, override the ``params.yaml`` section; ``chunk: auto`` becomes
    :func:`pde_data.chunks.auto_chunk` of the family's arrays. The store's writer lock
    is held (by rank 0) for the whole run; a resumed store is verified first
    and its bad chunks are written again. ``overwrite`` replaces an existing
    store of ours, ``overwrite_changed`` only one written with other settings.
    """
    # 1. Parameters: the problem's params.yaml section, command-line overrides on top.
    family_cls = get_family(problem)
    params = read_params(params_path, overrides, sections=PROBLEMS)
    kwargs, settings = problem_config(params, problem, family_cls)
    for key, flag, value in (("samples", "--n", samples), ("seed", "--seed", seed), ("chunk", "--chunk", chunk)):
        if value is not None:
            settings[key] = GENERATE[key].check(flag, value)
    if settings["samples"] > store.MAX_SAMPLES:
        raise ConfigError(f"{problem}.samples: {settings['samples']} is too large; need at most {store.MAX_SAMPLES}")

    # 2. One writer per store: rank 0 takes the lock and holds it to the end. A link to a store is
    #    followed: the store is written (or replaced) where it is, and the link keeps pointing at it.
    out = Path(os.path.realpath(out))
    held = _on_root(comm, _lock_and_tidy, out, share=False)
    try:
        status = _write(comm, problem, family_cls, kwargs, settings, out, (overwrite, overwrite_changed), progress)
        comm.barrier()
    finally:
        if held is not None:
            held.release()
    return status


def _write(comm, problem, family_cls, kwargs, settings, out: Path, overwrite: tuple[bool, bool],
           progress: bool) -> str:
    # 3. The family on every rank; rank 0 first, so the others find the JIT cache warm.
    started = time.perf_counter()
    if comm.rank == 0:
        family = family_cls(**kwargs)
    comm.barrier()
    if comm.rank != 0:
        family = family_cls(**kwargs)

    # 4. Rank 0 creates or checks the store, repairs bad chunks; all ranks agree on the chunks to do.
    if settings["chunk"] == "auto":
        settings = {**settings, "chunk": chunks.auto_chunk(family.sample_arrays, settings["samples"])}
    rec = store.record(family, settings, versions(*STORE_PACKAGES))
    status = _on_root(comm, store.prepare, out, family, rec, *overwrite)
    n, size = settings["samples"], settings["chunk"]
    todo = _on_root(comm, _todo, out, n, size, progress)[comm.rank :: comm.size]
    group, _ = store.open_store_group(out, mode="r+")

    # 5. Solve and write whole chunks; the progress bar shows rank 0's share.
    spans = [(k * size, min((k + 1) * size, n)) for k in todo]
    bar = tqdm(
        total=sum(stop - start for start, stop in spans),
        unit="sample",
        desc=f"{problem} (rank 0 of {comm.size})",
        disable=not progress or comm.rank != 0,
    )
    targets = chunks.writable(group, [*family.sample_arrays, "done"])
    try:
        for start, stop in spans:
            chunks.write_chunk(targets, start, solve_chunk(family, settings["seed"], start, stop))
            bar.update(stop - start)
    except OSError as err:  # a full disk, a folder made read-only: this rank alone sees it
        error = _unwritable(out, err)
        if comm.size == 1:
            raise error from err
        print(f"pde-data: error: {error} (rank {comm.rank})", file=sys.stderr, flush=True)
        comm.Abort(2)
    finally:
        bar.close()
    _record_time(comm, group, time.perf_counter() - started, sum(stop - start for start, stop in spans))
    return status


def _record_time(comm: MPI.Comm, group, seconds: float, samples: int) -> None:
    """Add this run's seconds (set-up, solves and writes, summed over the ranks) and samples to the store's
    ``generation`` attribute: what its data cost, for Monte Carlo figures at total cost (surrogate.mc.cost)."""
    seconds, samples = comm.reduce(seconds, root=0), comm.reduce(samples, root=0)
    if comm.rank == 0 and samples:
        old = group.attrs.get(store.GENERATION) or {}
        group.attrs[store.GENERATION] = {"seconds": float(old.get("seconds", 0.0)) + seconds,
                                     "samples": int(old.get("samples", 0)) + samples}
