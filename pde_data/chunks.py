"""Chunk-level access to the arrays of a store on disk: where a chunk's file is, which exist, decoding, writing.

Zarr reads the fill value for a chunk whose file is missing and raises assorted
errors for one that does not decode (crc32c mismatch, a broken compressed
stream). The helpers here turn both into a :class:`ChunkFault` that names the
array and the chunk, so that :mod:`pde_data.store` can refuse to read it and
:mod:`pde_data.integrity` can report it. Every array of a store is chunked
along the sample axis only, so chunk ``k`` holds samples ``k*chunk`` to
``(k+1)*chunk - 1``; a writer writes whole chunks, then marks their samples done.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
from zarr.errors import ChunkNotFoundError

from pde_data import manifest
from pde_data.manifest import Manifest

#: Samples read at once when many chunks are decoded in a row.
BLOCK_BYTES = 32 * 2**20
#: Runtime settings of a store's arrays when written: every chunk is a file, an all-zero one too.
WRITE_CONFIG = {"write_empty_chunks": True}
#: ``chunk: auto``: about this many bytes in a chunk of the largest per-sample array ...
AUTO_CHUNK_BYTES = 2 * 2**20
#: ... and at least this many chunks in a store (work for several ranks; a killed run loses little).
AUTO_MIN_CHUNKS = 8


@dataclass(frozen=True)
class BadChunk:
    """Chunks ``first`` to ``last`` of array ``array`` (samples ``start`` to ``stop - 1``) and what is wrong."""

    array: str
    first: int
    last: int
    start: int
    stop: int
    problem: str

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def __str__(self) -> str:
        which = f"chunk {self.first}" if self.count == 1 else f"chunks {self.first}-{self.last}"
        return f"array '{self.array}' {which} (samples {self.start}-{self.stop - 1}): {self.problem}"


class ChunkFault(Exception):
    """A chunk that is missing or does not decode."""

    def __init__(self, bad: BadChunk):
        super().__init__(str(bad))
        self.bad = bad


def bad_chunk(array: zarr.Array, first: int, problem: str, last: int | None = None) -> BadChunk:
    size, n = array.chunks[0], array.shape[0]
    last = first if last is None else last
    return BadChunk(array.basename, first, last, first * size, min((last + 1) * size, n), problem)


def decode_problem(err: BaseException) -> str:
    """What a decode error means, in a few words."""
    text = str(err)
    if isinstance(err, ChunkNotFoundError):
        return "missing (a chunk file)"
    if "checksum" in text.lower():
        return "checksum mismatch"
    return f"does not decode ({type(err).__name__}: {text[:120]})"


def chunk_file(root: Path, array: zarr.Array, k: int) -> Path:
    """The file of chunk ``k`` (along the sample axis) of ``array`` in the store at ``root``."""
    return Path(root) / array.path / array.metadata.encode_chunk_key((k,) + (0,) * (array.ndim - 1))


def n_chunks(array: zarr.Array) -> int:
    return -(-array.shape[0] // array.chunks[0])


def existing_chunks(root: Path, array: zarr.Array) -> np.ndarray:
    """Sorted indices of the chunks of the 1-D ``array`` whose files exist (one directory listing).

    Costs what is on disk, never what the array's shape claims.
    """
    folder = chunk_file(root, array, 0).parent
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return np.zeros(0, dtype=np.int64)
    limit = n_chunks(array)
    found = sorted(int(name) for name in names if name.isdigit() and str(int(name)) == name)
    return np.array([k for k in found if k < limit], dtype=np.int64)


def runs(chunks: Iterable[int], most: int) -> Iterator[tuple[int, int]]:
    """Runs ``(first, last)`` of consecutive chunk indices, each at most ``most`` chunks long."""
    first = last = None
    for k in chunks:
        k = int(k)
        if first is not None and k == last + 1 and k - first < most:
            last = k
            continue
        if first is not None:
            yield first, last
        first = last = k
    if first is not None:
        yield first, last


def chunks_per_block(array: zarr.Array) -> int:
    one = array.chunks[0] * max(int(np.prod(array.shape[1:], dtype=np.int64)), 1) * array.dtype.itemsize
    return max(1, BLOCK_BYTES // max(one, 1))


def decode(array: zarr.Array, first: int, last: int) -> np.ndarray:
    """Samples of chunks ``first`` to ``last``; a chunk that does not decode raises :class:`ChunkFault`.

    Missing chunk files are not checked here (zarr reads them as fill values).
    """
    size, n = array.chunks[0], array.shape[0]
    try:
        return np.asarray(array[first * size : min((last + 1) * size, n)])
    except Exception as err:  # zarr and the codecs raise several types
        for k in range(first, last + 1):  # find the chunk
            try:
                array[k * size : min((k + 1) * size, n)]
            except Exception as one:
                raise ChunkFault(bad_chunk(array, k, decode_problem(one))) from one
        raise ChunkFault(bad_chunk(array, first, decode_problem(err), last)) from err


def file_problem(root: Path, array: zarr.Array, k: int) -> str | None:
    """"missing" or "a symbolic link" when chunk ``k`` of ``array`` is not a file of the store's own; else None."""
    file = chunk_file(root, array, k)
    if file.is_symlink():
        return f"a symbolic link (to {os.readlink(file)}); a store's chunks must be its own files"
    return None if file.is_file() else "missing"


def nonfinite(values: np.ndarray, start: int) -> str | None:
    """Which samples of ``values`` (samples ``start``, ``start + 1``, ...) hold NaN or inf; None if none do."""
    if values.dtype.kind not in "fc" or values.size == 0:
        return None
    bad = np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1))
    if bad.size == 0:
        return None
    shown = ", ".join(str(start + int(i)) for i in bad[:5]) + (", ..." if bad.size > 5 else "")
    return f"non-finite values (NaN or inf) in sample{'s' * (bad.size > 1)} {shown}"


#: ``inspect(array, first, block)`` of a store: [(chunk, what is wrong)] for the chunks of a decoded block.
Inspect = Callable[[zarr.Array, int, np.ndarray], list[tuple[int, str]]]


def check_chunks(root: Path, array: zarr.Array, chunks: Iterable[int], on_bad=None, on_done=lambda n: None,
                 inspect: Inspect | None = None) -> None:
    """Check that each of ``chunks`` of ``array`` is a file of the store, decodes and passes ``inspect``.

    Without ``on_bad`` the first bad chunk raises :class:`ChunkFault`; with it,
    every bad chunk is passed to ``on_bad`` and the check goes on. ``on_done(n)``
    counts the chunks checked (for a progress bar).
    """
    def report(bad: BadChunk) -> None:
        if on_bad is None:
            raise ChunkFault(bad)
        on_bad(bad)

    present = []
    for k in map(int, chunks):
        problem = file_problem(root, array, k)
        if problem is None:
            present.append(k)
            continue
        report(bad_chunk(array, k, problem))
        on_done(1)
    for first, last in runs(present, chunks_per_block(array)):
        for k0, block in _each_decoded(array, first, last, on_bad):
            for k, problem in inspect(array, k0, block) if inspect is not None else ():
                report(bad_chunk(array, k, problem))
        on_done(last - first + 1)


def read_done(root: Path, done: zarr.Array, on_bad=None) -> np.ndarray:
    """Sorted int64 indices of the samples marked done, read from the chunks of ``done`` that exist.

    A missing chunk of ``done`` means "not done" (zarr's fill value). A chunk
    that does not decode raises :class:`ChunkFault`, or, with ``on_bad``, is
    reported there and counts as not done.
    """
    size, parts = done.chunks[0], []
    for first, last in runs(existing_chunks(root, done), max(1, 2**24 // size)):
        for k, flags in _each_decoded(done, first, last, on_bad):
            parts.append(np.flatnonzero(flags).astype(np.int64) + k * size)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _each_decoded(array: zarr.Array, first: int, last: int, on_bad) -> list[tuple[int, np.ndarray]]:
    """[(first chunk, samples)] of chunks ``first``..``last`` that decode; one by one after a fault."""
    try:
        return [(first, decode(array, first, last))]
    except ChunkFault:
        if on_bad is None:
            raise
    out = []
    for k in range(first, last + 1):
        try:
            out.append((k, decode(array, k, k)))
        except ChunkFault as fault:
            on_bad(fault.bad)
    return out


def auto_chunk(sample_arrays: dict[str, tuple[tuple[int, ...], str]], samples: int) -> int:
    """Samples per chunk for ``chunk: auto``: a power of two, about :data:`AUTO_CHUNK_BYTES` per chunk of the
    largest of ``sample_arrays`` (name -> (shape, dtype) of one sample), and at least :data:`AUTO_MIN_CHUNKS`
    chunks for ``samples``. Darcy and Poisson: 512 at n = 32, 128 at 64, 32 at 128, 8 at 256.

    Each chunk write costs tens of ms whatever its size (Zarr's per-call work, run after the solves have
    pushed it out of the caches): at n = 32, benchmarks/bench_grids.py printed chunk writes of 0.38 ms per
    Darcy sample in 128-sample chunks (13 % of the solve) and 0.21 ms in 512-sample chunks (7 %).
    """
    largest = max(int(np.prod(shape)) * np.dtype(dtype).itemsize for shape, dtype in sample_arrays.values())
    size = min(AUTO_CHUNK_BYTES // largest, samples // AUTO_MIN_CHUNKS)
    return 1 << (max(size, 1).bit_length() - 1)


def todo_chunks(done_index: np.ndarray, samples: int, chunk: int) -> list[int]:
    """Indices of the chunks whose samples are not all done (``done_index``: the sorted done samples)."""
    count = -(-samples // chunk)
    sizes = np.full(count, chunk, dtype=np.int64)
    if count:
        sizes[-1] = samples - (count - 1) * chunk
    return np.flatnonzero(np.bincount(done_index // chunk, minlength=count) < sizes).tolist()


def writable(group: zarr.Group, names) -> dict[str, zarr.Array | Manifest]:
    """The arrays ``names`` of an open store, set to write every chunk (an all-zero one too) as a file,
    and its :class:`~pde_data.manifest.Manifest` (key ``manifest``) if it has one."""
    targets: dict[str, zarr.Array | Manifest] = {name: group[name].with_config(WRITE_CONFIG) for name in names}
    if manifest.NAME in group:
        targets[manifest.NAME] = Manifest(group)
    return targets


def write_chunk(targets: dict[str, zarr.Array | Manifest], start: int, arrays: dict[str, np.ndarray]) -> None:
    """Write the samples ``start:start+len`` (a whole chunk) of each array, its manifest row, then mark them done.

    ``targets``: from :func:`writable` (each name of ``arrays``, ``done`` and the manifest if any).
    """
    stop = start + len(next(iter(arrays.values())))
    arrays = {name: np.asarray(value, dtype=targets[name].dtype) for name, value in arrays.items()}
    for name, value in arrays.items():
        targets[name][start:stop] = value
    if manifest.NAME in targets:
        targets[manifest.NAME].seal(start // targets["done"].chunks[0], arrays)
    targets["done"][start:stop] = True
