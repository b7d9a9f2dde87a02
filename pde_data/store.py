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
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from pde_data.config import ConfigError

#: Version of the layout above; stores of another version are refused.
STORE_FORMAT = 1
ATTR = "pde_data"
#: Record keys that a resumed run must match exactly.
MATCH_KEYS = ("problem", "schema_version", "params", "generate")


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
        group = zarr.open_group(path, mode="r")
    except Exception as err:  # zarr raises several types for "not a group"
        raise StoreError(f"store {path}: not a Zarr group ({err}); not a pde-data store") from err
    rec = group.attrs.get(ATTR)
    if not isinstance(rec, dict):
        raise StoreError(f"store {path}: Zarr group without a '{ATTR}' attribute; not a pde-data store")
    if rec.get("store_format") != STORE_FORMAT:
        raise StoreError(
            f"store {path}: store_format {rec.get('store_format')!r} is not supported; "
            f"this pde_data reads store_format {STORE_FORMAT}"
        )
    missing = [key for key in (*MATCH_KEYS, "sample_arrays", "store_arrays") if key not in rec]
    if missing:
        raise StoreError(f"store {path}: corrupt record, missing {', '.join(missing)}")
    return rec


def open_store(path: str | Path, mode: str = "r") -> tuple[zarr.Group, dict[str, Any]]:
    """Open one of our stores (read-only by default) and check its arrays; returns (group, record)."""
    rec = read_record(path)
    group = zarr.open_group(path, mode=mode)
    samples, chunk = rec["generate"]["samples"], rec["generate"]["chunk"]
    expected = {name: ((samples, *shape), (chunk, *shape)) for name, (shape, _) in rec["sample_arrays"].items()}
    expected["done"] = ((samples,), (chunk,))
    for name, (shape, chunks) in expected.items():
        try:
            array = group[name]
        except KeyError:
            raise StoreError(f"store {path}: corrupt, array '{name}' is missing") from None
        if tuple(array.shape) != shape or tuple(array.chunks) != chunks:
            raise StoreError(
                f"store {path}: corrupt, array '{name}' has shape {array.shape} and chunks {array.chunks}; "
                f"expected {shape} and {chunks}"
            )
    for name in rec["store_arrays"]:
        if name not in group:
            raise StoreError(f"store {path}: corrupt, array '{name}' is missing")
    return group, rec


class StoreReader:
    """A read-only view of one of our stores: its record, ``done`` flags, arrays and grid.

    Needs neither DOLFINx nor torch; ``surrogate`` reads every store through it.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.group, self.record = open_store(self.path)
        self.problem: str = self.record["problem"]
        self.done = np.asarray(self.group["done"][:], dtype=bool)
        self.n_total = int(self.done.size)

    @property
    def n_done(self) -> int:
        return int(self.done.sum())

    def sample_shape(self, name: str) -> tuple[int, ...]:
        """The shape of one sample of the per-sample array ``name`` (from the record)."""
        if name not in self.record["sample_arrays"]:
            raise StoreError(f"store {self.path} ({self.problem}) has no per-sample array {name!r} "
                             f"(it has: {', '.join(self.record['sample_arrays'])})")
        return tuple(int(v) for v in self.record["sample_arrays"][name][0])

    def array(self, name: str) -> zarr.Array:
        self.sample_shape(name)
        return self.group[name]

    def read(self, name: str, index: np.ndarray) -> np.ndarray:
        """Rows ``index`` (ascending) of a per-sample array, read as one contiguous range."""
        array = self.array(name)
        index = np.asarray(index, dtype=np.int64)
        if index.size == 0:
            return np.zeros((0, *array.shape[1:]), dtype=array.dtype)
        lo, hi = int(index.min()), int(index.max()) + 1
        return np.asarray(array[lo:hi])[index - lo]

    def grid(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Grid coordinates of the n x n fields as (n, n) arrays ``X[row, col] = x[col]``, ``Y[row, col] = y[row]``."""
        if "x" not in self.group or "y" not in self.group:
            raise StoreError(f"store {self.path}: has no grid arrays 'x', 'y'")
        x = np.asarray(self.group["x"][...], dtype=np.float64)
        y = np.asarray(self.group["y"][...], dtype=np.float64)
        if x.shape == (n,) and y.shape == (n,):
            return np.broadcast_to(x[None, :], (n, n)).copy(), np.broadcast_to(y[:, None], (n, n)).copy()
        if x.shape == (n, n) and y.shape == (n, n):
            return x, y
        raise StoreError(f"store {self.path}: grid arrays x {x.shape}, y {y.shape} do not fit the {n} x {n} fields")

    def fingerprint(self) -> str:
        """sha256 of the attributes, the arrays' shapes and dtypes and the done set (no data read)."""
        info = {"attrs": json.loads(json.dumps(dict(self.group.attrs), default=str)),
                "arrays": {k: [list(self.group[k].shape), str(self.group[k].dtype)]
                           for k in sorted(self.group.array_keys())}}
        h = hashlib.sha256(json.dumps(info, sort_keys=True, default=str).encode())
        h.update(np.packbits(self.done).tobytes())
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        """What a model file records of its training store."""
        return {"path": str(self.path), "problem": self.problem, "n_samples": self.n_total, "n_done": self.n_done,
                "fingerprint": self.fingerprint(), "seed": self.record["generate"].get("seed"),
                "schema_version": self.record.get("schema_version"), "params": self.record.get("params")}

    def bytes_per_sample(self, names: tuple[str, ...]) -> int:
        """Bytes of one sample of the per-sample arrays ``names`` as stored."""
        return sum(math.prod(self.sample_shape(n)) * np.dtype(self.record["sample_arrays"][n][1]).itemsize
                   for n in names)


def _build(path: Path, family, rec: dict) -> None:
    """Write a complete empty store at ``path`` (which must not exist)."""
    group = zarr.open_group(path, mode="w-", zarr_format=3)
    samples, chunk = rec["generate"]["samples"], rec["generate"]["chunk"]
    for name, (shape, dtype) in family.sample_arrays.items():
        group.create_array(name, shape=(samples, *shape), chunks=(chunk, *shape), dtype=dtype, fill_value=0)
    group.create_array("done", shape=(samples,), chunks=(chunk,), dtype="bool", fill_value=False)
    for name, value in family.store_arrays().items():
        group.create_array(name, data=value)
    group.attrs[ATTR] = rec  # last: a group with this attribute is complete


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


def prepare(path: str | Path, family, rec: dict, overwrite: bool = False) -> str:
    """Create the store at ``path``, or check that it can be resumed; returns "created" or "resumed".

    An existing store is resumed only if its record matches ``rec`` on
    problem, schema version, parameters and generation settings. With
    ``overwrite``, a mismatched store of ours (or an empty directory) is
    replaced; anything that is not one of our stores is never touched.
    """
    path = Path(path)
    exists = path.exists() or path.is_symlink()
    if exists and not (path.is_dir() and not any(path.iterdir())):
        old = read_record(path)  # raises for anything that is not ours
        diffs = _differences(old, rec)
        if not diffs and not overwrite:
            open_store(path, mode="r+")  # check the arrays too
            return "resumed"
        if not overwrite:
            raise StoreError(
                f"store {path}: was written with other parameters; refusing to mix samples:\n  "
                + "\n  ".join(diffs)
                + "\nUse --overwrite to replace it, or choose another --out."
            )
    # Build under a temporary sibling name, then rename into place.
    tmp = path.parent / f".{path.name}.creating-{uuid.uuid4().hex[:8]}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _build(tmp, family, rec)
        if exists and any(path.iterdir()):
            trash = path.parent / f".{path.name}.replaced-{uuid.uuid4().hex[:8]}"
            os.rename(path, trash)
            os.rename(tmp, path)
            shutil.rmtree(trash)
        else:
            os.replace(tmp, path)  # also replaces an empty directory
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StoreError(f"--out {path}: cannot write the store: {err.strerror or err}") from err
    return "created"


def missing_chunks(group: zarr.Group) -> list[int]:
    """Indices of the chunks whose samples are not all done."""
    done = group["done"][:]
    chunk = group["done"].chunks[0]
    starts = np.arange(0, done.size, chunk)
    return [int(k) for k, start in enumerate(starts) if not done[start : start + chunk].all()]


def write_chunk(targets: dict[str, zarr.Array], start: int, arrays: dict[str, np.ndarray]) -> None:
    """Write the samples ``start:start+len`` (a whole chunk) of each array, then mark them done.

    ``targets`` maps each name of ``arrays`` and ``done`` to its open Zarr array.
    """
    stop = start + len(next(iter(arrays.values())))
    for name, value in arrays.items():
        targets[name][start:stop] = value
    targets["done"][start:stop] = True


def summary(path: str | Path) -> str:
    """A human-readable description of the store at ``path``."""
    group, rec = open_store(path)
    done = int(group["done"][:].sum())
    gen = rec["generate"]
    lines = [
        f"store      {path}",
        f"problem    {rec['problem']} (schema {rec['schema_version']}, store format {rec['store_format']})",
        f"samples    {done} / {gen['samples']} done (chunk {gen['chunk']}, seed {gen['seed']})",
        "params     " + ", ".join(f"{k}={v}" for k, v in rec["params"].items()),
        "mesh       " + ", ".join(f"{k}={v}" for k, v in rec["mesh"].items()),
        "versions   " + ", ".join(f"{k} {v}" for k, v in rec.get("versions", {}).items()),
        "arrays",
    ]
    for name in [*rec["sample_arrays"], "done", *rec["store_arrays"]]:
        array = group[name]
        lines.append(f"  {name:<8} {str(tuple(array.shape)):<18} {array.dtype}")
    return "\n".join(lines)
