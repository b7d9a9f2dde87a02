"""Checking a store chunk by chunk (``pde-data verify``) and marking bad chunks for regeneration.

Every chunk of every per-sample array that holds a done sample must be a file
of the store's own (not a link), decode (from format 2: its crc32c checksum),
match its row of the manifest (format 3: a digest bound to the store, the array
and the chunk index, :mod:`pde_data.manifest`) and hold finite values; every
chunk of ``done`` that exists must decode; no file or folder of the store may be
a symbolic link. :func:`verify` lists what is not so; :func:`repair`, run by
``pde-data generate`` before it resumes a store, marks the samples of each bad
chunk not done, so that they are solved again.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pde_data import store
from pde_data.chunks import BadChunk, check_chunks, existing_chunks, read_done, writable

#: Bad chunks listed one a line; the rest are counted.
SHOWN = 20


@dataclass
class Report:
    """What :func:`verify` found in one store."""

    path: Path
    problem: str
    store_format: int
    n_done: int
    n_total: int
    checked: int = 0
    bad: list[BadChunk] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.bad

    @property
    def n_bad(self) -> int:
        return sum(b.count for b in self.bad)

    def text(self) -> str:
        fmt = {1: "1 (no checksums: only missing chunks and chunks that do not decode can be detected)",
               2: "2 (crc32c checksum per chunk, not bound to its place: a swapped or foreign chunk cannot be "
                  "detected; regenerate with --overwrite for format 3)",
               3: "3 (crc32c checksum per chunk; manifest of digests bound to the store, array and chunk index)"
               }.get(self.store_format, str(self.store_format))
        lines = [f"store      {self.path}", f"format     {fmt}",
                 f"samples    {self.n_done} / {self.n_total} done",
                 f"checked    {self.checked} chunks (the done samples' chunks of every per-sample array, and done)"]
        if self.clean:
            return "\n".join([*lines, "result     ok: every chunk is present, decodes, holds finite values"
                                   + (" and matches its place in the manifest" if self.store_format >= 3 else "")])
        lines += [f"bad        {b}" for b in self.bad[:SHOWN]]
        if len(self.bad) > SHOWN:
            lines.append(f"bad        ... and {len(self.bad) - SHOWN} more")
        lines.append(f"result     corrupt: {self.n_bad} bad chunk{'s' * (self.n_bad != 1)}; "
                     f"`pde-data generate {self.problem} ... --out {self.path}` regenerates them")
        return "\n".join(lines)


def verify(path: str | Path, progress: bool = False) -> tuple[Report, np.ndarray]:
    """Check every chunk of the done samples of the store at ``path``; returns (report, done sample indices).

    Samples of a chunk of ``done`` that does not decode count as not done.
    """
    path = Path(path)
    group, rec = store.open_store_group(path)
    links = _links(path)
    if links:
        target = os.readlink(path / links[0])
        raise store.StoreError(f"store {path}: corrupt, {links[0]} is a symbolic link (to {target})"
                               f"{f' (and {len(links) - 1} more)' if len(links) > 1 else ''}; a store's files must be "
                               "its own")
    done = group["done"]
    report = Report(path, rec["problem"], int(rec["store_format"]), 0, int(done.shape[0]))
    done_index = read_done(path, done, on_bad=report.bad.append)
    report.n_done = int(done_index.size)
    report.checked = int(existing_chunks(path, done).size)
    chunks = np.unique(done_index // done.chunks[0])
    names = list(rec["sample_arrays"])
    bar = tqdm(total=len(chunks) * len(names), unit="chunk", desc=f"verify {path.name}", disable=not progress,
               delay=0.5)

    def count(n: int) -> None:
        report.checked += n
        bar.update(n)

    inspect = store.inspector(group, rec, done_index)
    for name in names:
        check_chunks(path, group[name], chunks, on_bad=report.bad.append, on_done=count, inspect=inspect)
    bar.close()
    return report, done_index


def _links(path: Path) -> list[Path]:
    """The folders and metadata files inside the store at ``path`` that are symbolic links (relative paths).

    A linked chunk file is a bad chunk (found by the chunk checks; rewriting it replaces the link, not its
    target); a linked folder or metadata file would send reads and writes into another store.
    """
    found = []
    for folder, dirs, files in os.walk(path):
        names = [*dirs, *(name for name in files if name == "zarr.json")]
        found += [Path(folder, name).relative_to(path) for name in names if Path(folder, name).is_symlink()]
    return sorted(found)


def repair(path: str | Path, progress: bool = False) -> np.ndarray:
    """Verify the store at ``path`` and mark the samples of every bad chunk not done; returns the done samples.

    Says on stderr how many chunks it marks for regeneration.
    """
    report, done_index = verify(path, progress)
    if report.clean:
        return done_index
    group, _ = store.open_store_group(path, mode="r+")
    done = writable(group, ["done"])["done"]
    for start, stop in sorted({(b.start, b.stop) for b in report.bad}):  # whole chunks (all arrays share them)
        done[start:stop] = False  # so a corrupt chunk of done is overwritten, never read
        done_index = done_index[(done_index < start) | (done_index >= stop)]
    several = report.n_bad != 1
    listed = "".join(f"\n  {b}" for b in report.bad[:SHOWN])
    print(f"pde-data: {path}: {report.n_bad} bad chunk{'s' * several}, regenerating {'their' if several else 'its'} "
          f"samples:{listed}", file=sys.stderr)
    return done_index
