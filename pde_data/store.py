"""Problem-agnostic Zarr v3 store of PDE samples.

Layout of a store (a Zarr v3 group):

- one array per per-sample field, shape ``(samples, *sample_shape)``,
  chunked ``(chunk, *sample_shape)`` along the sample axis;
- the once-per-store arrays of the family (e.g. grid ``x``, ``y``);
- ``done``: bool ``(samples,)``, chunked like the data, True once a sample's
  chunk is written. A chunk is written data first, ``done`` last, so a killed
  run leaves at most unfinished chunks, which a re-run writes again;
- group attribute ``pde_data``: the record of :func:`record` (problem, schema
  and store-format versions, every generator parameter, seed, sample count,
  chunk size, mesh and grid, package versions).

Format 2 ends the codecs of the per-sample arrays and ``done`` with a crc32c
checksum per chunk and writes every chunk as a file, zeros too: a chunk of done
samples that is missing or does not decode is corruption, which every read of
:class:`StoreReader` refuses. Format 3 adds the ``manifest`` array
(:mod:`pde_data.manifest`): a digest per chunk bound to the store, the array and
the chunk's index, so that a swapped, foreign or linked chunk is refused too.
Every read also refuses NaN or inf in a done sample, a chunk that is a symbolic
link, and arrays whose codecs are not the format's. Format 4 labels the arrays
for xarray (:mod:`pde_data.labels`): Zarr v3 ``dimension_names`` on every array,
1-D grid coordinates ``x`` and ``y`` (formats 1-3 stored them as (n, n) images),
CF-style ``long_name``, ``units`` and ``description`` attributes, and Zarr's
consolidated metadata, so that ``xarray.open_zarr(STORE)`` opens it at once as a
labelled Dataset (the reads here use the arrays' own metadata, never that copy).
Formats 1 (no checksums), 2 (no manifest) and 3 (no labels) are still read with
the checks they allow.

A new store is built under a temporary name next to its target and renamed
into place, so a path that holds anything else is never half-overwritten.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec
from zarr.errors import ZarrUserWarning

from params import ConfigError
from pde_data import labels, manifest
from pde_data.chunks import (
    WRITE_CONFIG,
    ChunkFault,
    Inspect,
    bad_chunk,
    decode,
    decode_problem,
    file_problem,
    nonfinite,
    read_done,
    runs,
)
from pde_data.manifest import Manifest

#: Version of the layout above, written by this pde_data.
STORE_FORMAT = 4
#: Store formats this pde_data reads (1: no checksums; 2: no manifest; 3: no labels for xarray).
READ_FORMATS = (1, 2, 3, 4)
#: Codecs of every chunked array, from format 2 on (zarr's names, in order).
CODEC_NAMES = ("bytes", "zstd", "crc32c")
ATTR = "pde_data"
#: Group attribute with the generation runs' seconds and samples (written by pde_data.generate).
GENERATION = "generation"
#: Record keys that a resumed run must match exactly.
MATCH_KEYS = ("store_format", "problem", "schema_version", "params", "generate")
#: Claims beyond these are refused as corrupt before anything is allocated.
MAX_SAMPLES = 2**31
MAX_BYTES = 2**50  # 1 PiB of uncompressed samples
#: Largest store whose done flags :attr:`StoreReader.done` returns as one bool array.
MAX_DONE_FLAGS = 2**26
#: Codecs and runtime settings of the chunked arrays of a format-2 store.
COMPRESSORS = (ZstdCodec(level=0, checksum=False), Crc32cCodec())


class StoreError(ConfigError):
    """A store path that cannot be used (foreign, corrupt, mismatched, unwritable)."""


def record(family, generate: dict, versions: dict) -> dict[str, Any]:
    """The attributes that describe a store written by ``family`` with ``generate`` settings."""
    rec = {
        "store_format": STORE_FORMAT,
        "problem": family.name,
        "schema_version": family.schema_version,
        "params": family.params,
        "generate": dict(generate),
        "mesh": family.mesh,
        "sample_arrays": {name: [list(shape), dtype] for name, (shape, dtype) in family.sample_arrays.items()},
        "store_arrays": sorted(family.store_arrays()),
        "versions": versions,
    }
    return json.loads(json.dumps(rec))  # JSON-normal form (tuples -> lists), as read back


def read_record(path: str | Path) -> dict[str, Any]:
    """The ``pde_data`` record of the store at ``path``; refuses anything that is not one of ours."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"store {path}: does not exist")
    try:
        group = zarr.open_group(path, mode="r", use_consolidated=False)
    except Exception as err:  # zarr raises several types for "not a group"
        raise StoreError(f"store {path}: not a Zarr group ({err}); not a pde-data store") from err
    rec = group.attrs.get(ATTR)
    if not isinstance(rec, dict):
        raise StoreError(f"store {path}: Zarr group without a '{ATTR}' attribute; not a pde-data store")
    if rec.get("store_format") not in READ_FORMATS:
        raise StoreError(f"store {path}: store_format {rec.get('store_format')!r} is not supported; "
                         f"this pde_data reads store_format {' and '.join(map(str, READ_FORMATS))}")
    missing = [key for key in (*MATCH_KEYS, "sample_arrays", "store_arrays") if key not in rec]
    if missing:
        raise StoreError(f"store {path}: corrupt record, missing {', '.join(missing)}")
    _check_claims(path, rec)
    return rec


def _check_claims(path: Path, rec: dict) -> None:
    """Refuse a record whose sample count, chunk or arrays are malformed or absurd (before any allocation)."""
    gen = rec["generate"]
    samples, chunk = (gen.get(key) if isinstance(gen, dict) else None for key in ("samples", "chunk"))
    if not (type(samples) is int and type(chunk) is int and samples >= 0 and chunk >= 1):
        raise StoreError(f"store {path}: corrupt record, generate.samples {samples!r} and generate.chunk {chunk!r} "
                         "must be integers >= 0 and >= 1")
    if samples > MAX_SAMPLES:
        raise StoreError(f"store {path}: corrupt record, it claims {samples} samples, more than the "
                         f"{MAX_SAMPLES} pde_data supports")
    try:
        per_sample = sum(math.prod(int(v) for v in shape) * np.dtype(dtype).itemsize
                         for shape, dtype in rec["sample_arrays"].values())
    except (TypeError, ValueError, AttributeError) as err:
        raise StoreError(f"store {path}: corrupt record, sample_arrays {rec['sample_arrays']!r} ({err})") from None
    if samples * per_sample > MAX_BYTES:
        raise StoreError(f"store {path}: corrupt record, it claims {samples} samples of {per_sample} bytes "
                         f"({samples * per_sample / 2**50:.3g} PiB), beyond what a disk holds")


def _expected_arrays(rec: dict) -> dict[str, tuple[tuple, tuple, np.dtype]]:
    """(shape, chunks, dtype) of every chunked array that the record ``rec`` describes."""
    samples, chunk = rec["generate"]["samples"], rec["generate"]["chunk"]
    expected = {name: ((samples, *shape), (chunk, *shape), np.dtype(dtype))
                for name, (shape, dtype) in rec["sample_arrays"].items()}
    expected["done"] = ((samples,), (chunk,), np.dtype(bool))
    if rec["store_format"] >= 3:
        rows = (-(-samples // chunk), len(rec["sample_arrays"]), manifest.DIGEST_BYTES)
        expected[manifest.NAME] = (rows, (1, *rows[1:]), np.dtype(np.uint8))
    return expected


def open_store_group(path: str | Path, mode: str = "r") -> tuple[zarr.Group, dict[str, Any]]:
    """The Zarr group of one of our stores (read-only by default), its arrays checked; returns (group, record).

    The checks read each array's own metadata. A group opened to write (``mode="r+"``) keeps the store's
    consolidated metadata, so that a write of its attributes does not drop the copy that xarray reads.
    """
    path = Path(path)
    rec = read_record(path)
    group = zarr.open_group(path, mode="r", use_consolidated=False)
    for name, (shape, chunks, dtype) in _expected_arrays(rec).items():
        array = _member(group, path, name)
        if tuple(array.shape) != shape or tuple(array.chunks) != chunks:
            raise StoreError(f"store {path}: corrupt, array '{name}' has shape {array.shape} and chunks "
                             f"{array.chunks}; expected {shape} and {chunks}")
        if array.dtype != dtype:
            raise StoreError(f"store {path}: corrupt, array '{name}' has dtype {array.dtype}; its record says {dtype}")
        codecs = tuple(codec.to_dict()["name"] for codec in array.metadata.codecs)
        if rec["store_format"] >= 2 and codecs != CODEC_NAMES:
            raise StoreError(f"store {path}: corrupt, array '{name}' has codecs [{', '.join(codecs)}]; a format-"
                             f"{rec['store_format']} store has [{', '.join(CODEC_NAMES)}] (a checksum per chunk)")
    for name in rec["store_arrays"]:
        _member(group, path, name)
    if rec["store_format"] >= 3:
        _check_manifest(group, path, rec)
    return (group if mode == "r" else zarr.open_group(path, mode=mode)), rec


def _member(group: zarr.Group, path: Path, name: str) -> zarr.Array:
    """The array ``name`` of the store at ``path``: its own folder (no link), with readable metadata."""
    folder = path / name
    for item in (folder, folder / "zarr.json", folder / "c"):
        if item.is_symlink():
            raise StoreError(f"store {path}: corrupt, {item.relative_to(path)} is a symbolic link (to "
                             f"{os.readlink(item)}); a store's arrays must be its own files")
    try:
        array = group[name]
    except KeyError:
        raise StoreError(f"store {path}: corrupt, array '{name}' is missing") from None
    except Exception as err:  # noqa: BLE001 - zarr raises several types for unreadable metadata (an empty zarr.json ...)
        raise StoreError(f"store {path}: corrupt, the metadata of array '{name}' ({name}/zarr.json) cannot be "
                         f"read ({type(err).__name__})") from None
    if not isinstance(array, zarr.Array):
        raise StoreError(f"store {path}: corrupt, '{name}' is not an array")
    return array


def _check_manifest(group: zarr.Group, path: Path, rec: dict) -> None:
    """The manifest names the record's arrays and has a store id (else it is refused as corrupt)."""
    try:
        names = Manifest(group).names
    except (KeyError, TypeError, ValueError):
        names = None
    if names != list(rec["sample_arrays"]):
        raise StoreError(f"store {path}: corrupt, the manifest's attributes (store id, arrays {names!r}) do not "
                         f"describe this store's arrays {list(rec['sample_arrays'])}")


def inspector(group: zarr.Group, rec: dict, done_index: np.ndarray) -> Inspect:
    """The content check of a store's chunks: the done samples of a chunk (``done_index``: sorted indices;
    a chunk's done samples are the ones its writer wrote) match its manifest row (format 3) and are finite."""
    seal = Manifest(group) if rec["store_format"] >= 3 else None

    def inspect(array: zarr.Array, first: int, block: np.ndarray) -> list[tuple[int, str]]:
        size = array.chunks[0]
        count = -(-len(block) // size)
        rows = seal.rows(first, first + count - 1) if seal is not None and array.basename in seal.names else None
        starts = first * size + size * np.arange(count + 1)
        done = np.diff(np.searchsorted(done_index, starts))
        found = []
        for j, k in enumerate(range(first, first + count)):
            part = block[j * size:j * size + done[j]]
            sealed_wrong = rows is not None and seal.mismatch(array.basename, k, part, rows[j])
            problem = sealed_wrong or nonfinite(part, k * size)
            if problem:
                found.append((k, problem))
        return found

    return inspect


def repair_hint(path, problem: str) -> str:
    return f"run `pde-data verify {path}`; `pde-data generate {problem} ... --out {path}` regenerates bad chunks"


class StoreReader:
    """A read-only view of one of our stores: its record, done samples, arrays and grid.

    Needs neither DOLFINx nor torch; ``surrogate`` reads every store through it.
    Reading costs what is on disk, never what the record claims: the done set
    is read from the chunks of ``done`` that exist. Every read of chunk data
    refuses a chunk of done samples that is missing or does not decode.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.group, self.record = open_store_group(self.path)
        self.problem: str = self.record["problem"]
        self.n_total = int(self.record["generate"]["samples"])
        with _refusing(self.path, self.problem):
            #: Sorted int64 indices of the samples marked done.
            self.done_index = read_done(self.path, self.group["done"])
        self.inspect = inspector(self.group, self.record, self.done_index)
        self._done_flags: np.ndarray | None = None

    @property
    def n_done(self) -> int:
        return int(self.done_index.size)

    def done_in(self, a: int, b: int) -> np.ndarray:
        """The done sample indices in ``[a, b)`` (sorted; a view of :attr:`done_index`)."""
        lo, hi = np.searchsorted(self.done_index, [a, b])
        return self.done_index[lo:hi]

    def done_flags(self, a: int, b: int) -> np.ndarray:
        """Bool flags of the samples ``[a, b)`` (``b - a`` bytes)."""
        a, b = max(int(a), 0), min(int(b), self.n_total)
        flags = np.zeros(max(b - a, 0), dtype=bool)
        flags[self.done_in(a, b) - a] = True
        return flags

    @property
    def done(self) -> np.ndarray:
        """Bool flags of all samples, for stores of at most :data:`MAX_DONE_FLAGS` samples
        (else use :meth:`done_in`)."""
        if self.n_total > MAX_DONE_FLAGS:
            raise StoreError(f"store {self.path}: {self.n_total} samples are too many for one array of done flags; "
                             "use StoreReader.done_in(a, b)")
        if self._done_flags is None:
            self._done_flags = self.done_flags(0, self.n_total)
            self._done_flags.flags.writeable = False
        return self._done_flags

    def sample_shape(self, name: str) -> tuple[int, ...]:
        """The shape of one sample of the per-sample array ``name`` (from the record)."""
        if name not in self.record["sample_arrays"]:
            raise StoreError(f"store {self.path} ({self.problem}) has no per-sample array {name!r} "
                             f"(it has: {', '.join(self.record['sample_arrays'])})")
        return tuple(int(v) for v in self.record["sample_arrays"][name][0])

    def array(self, name: str) -> zarr.Array:
        """The per-sample array ``name``; reading a missing chunk of it raises instead of giving zeros."""
        self.sample_shape(name)
        return self.group[name].with_config({"read_missing_chunks": False})

    def read(self, name: str, index: np.ndarray) -> np.ndarray:
        """Rows ``index`` (ascending) of a per-sample array, read as one contiguous range.

        A chunk that holds a requested done sample and is missing, a link, does not decode, is not the one
        its manifest row describes, or holds NaN or inf raises :class:`StoreError`.
        """
        self.sample_shape(name)
        array = self.group[name]
        index = np.asarray(index, dtype=np.int64)
        if index.size == 0:
            return np.zeros((0, *array.shape[1:]), dtype=array.dtype)
        lo, hi = int(index.min()), int(index.max()) + 1
        size = array.chunks[0]
        first = lo // size
        wanted = np.unique(index[np.isin(index, self.done_in(lo, hi))] // size)
        with _refusing(self.path, self.problem):
            for k in map(int, wanted):
                problem = file_problem(self.path, array, k)
                if problem:
                    raise ChunkFault(bad_chunk(array, k, problem))
            block = decode(array, first, (hi - 1) // size)
            for a, b in runs(wanted, len(wanted) or 1):
                found = self.inspect(array, a, block[(a - first) * size:(b + 1 - first) * size])
                if found:
                    raise ChunkFault(bad_chunk(array, *found[0]))
            return block[index - first * size]

    def read_chunk(self, name: str, k: int) -> np.ndarray:
        """All samples of chunk ``k`` of a per-sample array (the unit of streamed reads)."""
        size = self.array(name).chunks[0]
        return self.read(name, np.arange(k * size, min((k + 1) * size, self.n_total)))

    def grid(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Grid coordinates of the n x n fields as (n, n) arrays ``X[row, col] = x[col]``, ``Y[row, col] = y[row]``."""
        if "x" not in self.group or "y" not in self.group:
            raise StoreError(f"store {self.path}: has no grid arrays 'x', 'y'")
        x, y = (self._whole(k) for k in "xy")
        if x.shape == (n,) and y.shape == (n,):
            return np.broadcast_to(x[None, :], (n, n)).copy(), np.broadcast_to(y[:, None], (n, n)).copy()
        if x.shape == (n, n) and y.shape == (n, n):
            return x, y
        raise StoreError(f"store {self.path}: grid arrays x {x.shape}, y {y.shape} do not fit the {n} x {n} fields")

    def _whole(self, name: str) -> np.ndarray:
        """A once-per-store array, read whole; a missing chunk file raises instead of reading as zeros."""
        with _refusing(self.path, self.problem, name):
            return np.asarray(self.group[name].with_config({"read_missing_chunks": False})[...], dtype=np.float64)

    def fingerprint(self) -> str:
        """sha256 of the attributes, the arrays' shapes and dtypes and the done set (no data read).

        The done set enters as ``np.packbits`` of the flags of all samples,
        hashed block by block (the same bytes, without one array of them all).
        The ``generation`` attribute (the seconds the runs that wrote the store
        took) is bookkeeping, not content, and stays out.
        """
        attrs = {k: v for k, v in self.group.attrs.items() if k != GENERATION}
        info = {"attrs": json.loads(json.dumps(attrs, default=str)),
                "arrays": {k: [list(self.group[k].shape), str(self.group[k].dtype)]
                           for k in sorted(self.group.array_keys())}}
        h = hashlib.sha256(json.dumps(info, sort_keys=True, default=str).encode())
        block = 8 * 2**20
        for a in range(0, self.n_total, block):
            h.update(np.packbits(self.done_flags(a, a + block)).tobytes())
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        """What a model file records of its training store."""
        return {"path": str(self.path), "problem": self.problem, "n_samples": self.n_total, "n_done": self.n_done,
                "fingerprint": self.fingerprint(), "seed": self.record["generate"].get("seed"),
                "schema_version": self.record.get("schema_version"), "params": self.record.get("params")}


@contextmanager
def _refusing(path: Path, problem: str, name: str | None = None):
    """Turn a bad chunk (or, for ``name``, any failed read of that array) into a :class:`StoreError`."""
    try:
        yield
    except ChunkFault as fault:
        raise StoreError(f"store {path}: corrupt, {fault.bad}; {repair_hint(path, problem)}") from fault
    except Exception as err:
        if name is None:
            raise
        raise StoreError(f"store {path}: corrupt, array '{name}': {decode_problem(err)}; "
                         f"{repair_hint(path, problem)}") from err


def _build(path: Path, family, rec: dict) -> None:
    """Write a complete empty store at ``path`` (which must not exist), its arrays labelled for xarray."""
    group = zarr.open_group(path, mode="w-", zarr_format=3)
    samples, chunk = rec["generate"]["samples"], rec["generate"]["chunk"]
    variables = {**getattr(family, "VARIABLES", {}), "done": labels.DONE}
    arrays = {**{name: (shape, dtype, 0) for name, (shape, dtype) in family.sample_arrays.items()},
              "done": ((), "bool", False)}
    for name, (shape, dtype, fill) in arrays.items():
        group.create_array(name, shape=(samples, *shape), chunks=(chunk, *shape), dtype=dtype, fill_value=fill,
                           compressors=COMPRESSORS, config=WRITE_CONFIG, attributes=labels.attributes(variables, name),
                           dimension_names=labels.dimension_names(variables, name, 1 + len(shape), per_sample=True))
    manifest.create(group, list(family.sample_arrays), -(-samples // chunk), COMPRESSORS, WRITE_CONFIG,
                    labels.MANIFEST.dims, labels.MANIFEST.attributes())
    for name, value in family.store_arrays().items():
        group.create_array(name, data=value, attributes=labels.attributes(variables, name),
                           dimension_names=labels.dimension_names(variables, name, value.ndim, per_sample=False))
    group.attrs[ATTR] = rec  # a group with this attribute is complete (the store is renamed into place after)
    with warnings.catch_warnings():  # "not part of the Zarr format 3 specification": xarray reads it all the same
        warnings.simplefilter("ignore", ZarrUserWarning)
        zarr.consolidate_metadata(path)


def _differences(old: dict, new: dict) -> list[str]:
    diffs = []
    for key in MATCH_KEYS:
        if isinstance(old.get(key), dict) and isinstance(new[key], dict):
            for sub in sorted(set(old[key]) | set(new[key])):
                if old[key].get(sub) != new[key].get(sub):
                    diffs.append(f"{key}.{sub}: store has {old[key].get(sub)!r}, this run asks {new[key].get(sub)!r}")
        elif old.get(key) != new[key]:
            diffs.append(f"{key}: store has {old.get(key)!r}, this run asks {new[key]!r}")
    return diffs


def sibling(path: Path, kind: str) -> Path:
    """A fresh hidden temporary name next to ``path``; ``kind`` is one of :data:`SIBLING_KINDS`."""
    return path.parent / f".{path.name}.{kind}-{uuid.uuid4().hex[:8]}"


#: Kinds of the temporary siblings of a store that :func:`prepare` writes (a killed run may leave them).
SIBLING_KINDS = ("creating", "replaced")


def prepare(path: str | Path, family, rec: dict, overwrite: bool = False, overwrite_changed: bool = False) -> str:
    """Create the store at ``path``, or check that it can be resumed; returns "created", "resumed" or
    "replaced" (a store of other parameters, with ``overwrite_changed``).

    An existing store is resumed only if its record matches ``rec`` on store
    format, problem, schema version, parameters and generation settings. With
    ``overwrite``, a store of ours (or an empty directory) is replaced; with
    ``overwrite_changed``, only a mismatched one is; anything that is not one of
    our stores is never touched.
    """
    path = Path(path)
    exists = path.exists() or path.is_symlink()
    if exists and not (path.is_dir() and not any(path.iterdir())):
        old = read_record(path)  # raises for anything that is not ours
        if old["store_format"] != rec["store_format"] and not (overwrite or overwrite_changed):
            raise StoreError(f"store {path}: store format {old['store_format']}, written by an earlier pde_data; "
                             f"this one writes format {rec['store_format']} (arrays labelled for xarray) and does "
                             "not mix formats in one store. It still reads it (pde-data info, surrogate train); to "
                             "add samples, regenerate it with --overwrite, or choose another --out")
        diffs = _differences(old, rec)
        if not diffs and not overwrite:
            open_store_group(path, mode="r+")  # check the arrays too
            return "resumed"
        if not (overwrite or overwrite_changed):
            raise StoreError(
                f"store {path}: was written with other parameters; refusing to mix samples:\n  "
                + "\n  ".join(diffs)
                + "\nUse --overwrite to replace it, or choose another --out."
            )
    # Build under a temporary sibling name, then rename into place.
    replacing = exists and any(path.iterdir())
    tmp = sibling(path, "creating")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _build(tmp, family, rec)
        if replacing:
            trash = sibling(path, "replaced")
            os.rename(path, trash)
            os.rename(tmp, path)
            shutil.rmtree(trash)
        else:
            os.replace(tmp, path)  # also replaces an empty directory
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StoreError(f"--out {path}: cannot write the store: {err.strerror or err}") from err
    return "created" if overwrite or not replacing else "replaced"


def summary(path: str | Path) -> str:
    """A human-readable description of the store at ``path``."""
    reader = StoreReader(path)
    group, rec, done = reader.group, reader.record, reader.n_done
    gen = rec["generate"]
    lines = [
        f"store      {path}",
        f"problem    {rec['problem']} (schema {rec['schema_version']}, store format {rec['store_format']})",
        f"samples    {done} / {gen['samples']} done (chunk {gen['chunk']}, seed {gen['seed']})",
        "params     " + ", ".join(f"{k}={v}" for k, v in rec["params"].items()),
        "mesh       " + ", ".join(f"{k}={v}" for k, v in rec["mesh"].items()),
        "versions   " + ", ".join(f"{k} {v}" for k, v in rec.get("versions", {}).items()),
        "xarray     " + (f"xarray.open_zarr({str(path)!r}) opens the arrays below as a labelled Dataset"
                         if rec["store_format"] >= 4 else f"store format {rec['store_format']} has no dimension "
                         "names; regenerate it (--overwrite) to open it with xarray"),
        "arrays",
    ]
    extra = [manifest.NAME] if rec["store_format"] >= 3 else []
    rows = [_array_columns(group[name]) for name in [*rec["sample_arrays"], "done", *extra, *rec["store_arrays"]]]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines += [f"  {'  '.join(col.ljust(w) for col, w in zip(row, widths))}  {row[3]}".rstrip() for row in rows]
    return "\n".join(lines)


def _array_columns(array: zarr.Array) -> tuple[str, str, str, str]:
    """(name, ``(dim: size, ...)``, dtype, ``[units] long name``): what xarray shows of the array (format 4;
    the shape alone for older stores)."""
    names = array.metadata.dimension_names
    dims = ", ".join(f"{d}: {k}" for d, k in zip(names, array.shape)) if names else ", ".join(map(str, array.shape))
    attrs = array.attrs
    label = f"[{attrs['units']}] {attrs['long_name']}" if "units" in attrs and "long_name" in attrs else ""
    return array.basename, f"({dims})", str(array.dtype), label
