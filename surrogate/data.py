"""Read the ``pde_data`` Zarr stores into training tensors.

Layout of a store (written by ``pde-data generate``): a Zarr v3 group with
per-sample arrays chunked along the sample axis (Poisson: ``kappa``, ``f``,
``u``, ``flux``, ``theta``; Darcy: ``log_k``, ``p``, ``Q``, ``Q_in``), grid
coordinates ``x``, ``y`` stored once, a boolean per-sample ``done`` array and
a group attribute ``pde_data`` with the generator's record (``store_format``,
``problem``, ``schema_version``, ``params``, ``generate`` (samples, chunk,
seed), ``mesh``, ``versions``).
Field arrays are ``[sample, row, col]`` with row = y index, col = x index.

What the networks see
---------------------
* Poisson: input (kappa, x, y) as 3 x n x n (flattened to 3 n^2 for the
  MLP); target u (n^2 values).
* Darcy: input log_k as 1 x n x n (n^2 for the MLP); target Q (one value),
  p (n^2 values) or both (``data.darcy_target``: ``Q``, ``p``, ``Q+p``;
  with both, the output vector is [Q, p...]).

Only the arrays a problem needs are ever read (never ``f``, ``flux``,
``theta``, ``Q_in``; ``p`` only when it is a target).  Only samples marked
done are used; a store with missing samples is refused unless
``data.allow_incomplete`` is set.

The split is by sample index, in contiguous blocks of the store's index
range ``[0, N)``: the first ``train`` fraction, the next ``val`` fraction,
the rest for ``test``.  Sample ``i`` is therefore always in the same split,
whichever samples happen to be done.  Normalisation statistics (a mean and a
standard deviation per input channel and per target; computed chunk by chunk
in float64) come from the done samples of the training split only.

When the encoded tensors of the requested splits fit ``data.memory_budget_mb``
they are read once onto the training device; otherwise each split is a
:class:`StreamedArray`, which reads the chunks a minibatch needs (keeping an
LRU cache of chunks within the budget).  Either way a minibatch is drawn as
``X[idx]`` with an index tensor -- never a per-sample ``__getitem__``.  (A
streamed minibatch reads its indices back to the host to fetch the chunks;
loaded tensors keep the training cycle free of host synchronisation.)
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch

PROBLEMS = ("poisson", "darcy")
DONE_ARRAY = "done"
RECORD_ATTR = "pde_data"   # group attribute with the generator's record (pde_data.store)
STORE_FORMAT = 1
GRID_CHANNELS = ("x", "y")


class DataError(ValueError):
    """A store that cannot be used (missing, wrong problem, incomplete, ...)."""


# --------------------------------------------------------------------------
# what a problem reads and predicts
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """Inputs, targets and shapes of one problem on an n x n grid."""

    problem: str
    n: int
    inputs: tuple[str, ...]          # per-sample input arrays read from the store
    channels: tuple[str, ...]        # network input channels (inputs + grid channels)
    targets: tuple[str, ...]         # target arrays, in output-vector order
    target_shapes: tuple[tuple[int, ...], ...]

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return (len(self.channels), self.n, self.n)

    @property
    def out_dim(self) -> int:
        return sum(math.prod(s) for s in self.target_shapes)

    @property
    def arrays(self) -> tuple[str, ...]:
        """Per-sample store arrays this problem reads."""
        return self.inputs + self.targets

    def to_dict(self) -> dict:
        return {"problem": self.problem, "n": self.n, "inputs": list(self.inputs),
                "channels": list(self.channels), "targets": list(self.targets),
                "target_shapes": [list(s) for s in self.target_shapes]}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Layout":
        return cls(problem=d["problem"], n=int(d["n"]), inputs=tuple(d["inputs"]),
                   channels=tuple(d["channels"]), targets=tuple(d["targets"]),
                   target_shapes=tuple(tuple(int(v) for v in s) for s in d["target_shapes"]))


def make_layout(problem: str, n: int, darcy_target: str = "Q") -> Layout:
    if problem == "poisson":
        return Layout("poisson", n, ("kappa",), ("kappa",) + GRID_CHANNELS, ("u",), ((n, n),))
    if problem == "darcy":
        targets = {"Q": ("Q",), "p": ("p",), "Q+p": ("Q", "p")}[darcy_target]
        shapes = tuple(() if t == "Q" else (n, n) for t in targets)
        return Layout("darcy", n, ("log_k",), ("log_k",), targets, shapes)
    raise DataError(f"unknown problem {problem!r} (allowed: {', '.join(PROBLEMS)})")


# --------------------------------------------------------------------------
# the store
# --------------------------------------------------------------------------
def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


class Store:
    """A read-only view of a ``pde_data`` Zarr store."""

    def __init__(self, path: str | Path):
        import zarr

        self.path = Path(path)
        if not self.path.exists():
            raise DataError(f"store {str(self.path)!r} does not exist "
                            "(write it with `pde-data generate {poisson,darcy} --out STORE`)")
        try:
            group = zarr.open_group(str(self.path), mode="r")
        except Exception as exc:  # noqa: BLE001 - any failure means: not a store
            raise DataError(f"{str(self.path)!r} is not a Zarr store ({type(exc).__name__}: {exc})") from None
        self.group = group
        self.attrs = _jsonable(dict(group.attrs))
        record = self.attrs.get(RECORD_ATTR)
        if not isinstance(record, dict):
            raise DataError(f"{str(self.path)!r} is a Zarr group without a {RECORD_ATTR!r} attribute: "
                            "not a pde-data store (or one whose generation never started)")
        fmt = record.get("store_format")
        if fmt != STORE_FORMAT:
            raise DataError(f"store {str(self.path)!r} has store_format {fmt!r}; this surrogate reads "
                            f"store_format {STORE_FORMAT}")
        self.record = record
        problem = record.get("problem")
        if problem not in PROBLEMS:
            raise DataError(f"store {str(self.path)!r} holds problem {problem!r}; "
                            f"surrogate trains on {', '.join(PROBLEMS)}")
        self.problem: str = problem
        names = set(group.array_keys())
        self._names = names
        if DONE_ARRAY not in names:
            raise DataError(f"store {str(self.path)!r} has no {DONE_ARRAY!r} array marking finished samples")
        self.done = np.asarray(group[DONE_ARRAY][...]).astype(bool).reshape(-1)
        self.n_total = int(self.done.shape[0])
        field = "kappa" if problem == "poisson" else "log_k"
        self.require(field)
        shape = group[field].shape
        if len(shape) != 3 or shape[1] != shape[2] or shape[0] != self.n_total:
            raise DataError(f"store {str(self.path)!r}: array {field!r} has shape {tuple(shape)}; "
                            f"expected ({self.n_total}, n, n)")
        self.n = int(shape[1])

    # -- arrays ---------------------------------------------------------------
    def require(self, name: str) -> None:
        if name not in self._names:
            raise DataError(f"store {str(self.path)!r} ({self.problem}) has no array {name!r} "
                            f"(it has: {', '.join(sorted(self._names))})")

    def array(self, name: str):
        self.require(name)
        return self.group[name]

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Grid coordinates as two (n, n) arrays ``X[row, col] = x[col]``, ``Y[row, col] = y[row]``."""
        n = self.n
        if "x" in self._names and "y" in self._names:
            x = np.asarray(self.group["x"][...], dtype=np.float64)
            y = np.asarray(self.group["y"][...], dtype=np.float64)
            if x.ndim == 1 and y.ndim == 1 and x.size == n and y.size == n:
                return np.broadcast_to(x[None, :], (n, n)).copy(), np.broadcast_to(y[:, None], (n, n)).copy()
            if x.shape == (n, n) and y.shape == (n, n):
                return x, y
            raise DataError(f"store {str(self.path)!r}: grid arrays x {x.shape}, y {y.shape} do not "
                            f"match the {n} x {n} fields")
        t = np.linspace(0.0, 1.0, n)
        gx, gy = np.meshgrid(t, t)
        return gx, gy

    # -- samples --------------------------------------------------------------
    @property
    def n_done(self) -> int:
        return int(self.done.sum())

    def check_complete(self, allow_incomplete: bool) -> None:
        missing = self.n_total - self.n_done
        if missing and not allow_incomplete:
            raise DataError(
                f"store {str(self.path)!r} has {missing} of {self.n_total} samples not marked done; "
                "finish it with `pde-data generate ... --out STORE` (it resumes), or set "
                "data.allow_incomplete: true to train on the finished samples only")
        if self.n_done == 0:
            raise DataError(f"store {str(self.path)!r} has no finished samples")

    def split_indices(self, fractions: Mapping[str, float]) -> dict[str, np.ndarray]:
        """Done sample indices of each split (contiguous blocks of [0, N))."""
        n = self.n_total
        n_train = int(math.floor(fractions["train"] * n + 1e-9))
        n_val = int(math.floor((fractions["train"] + fractions["val"]) * n + 1e-9)) - n_train
        bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, n)}
        if fractions.get("test", 0.0) == 0.0:
            bounds["val"] = (n_train, n)
            bounds["test"] = (n, n)
        out = {}
        for name, (a, b) in bounds.items():
            idx = np.arange(a, b)
            out[name] = idx[self.done[a:b]]
        return out

    def fingerprint(self) -> str:
        """sha256 of the store's attributes, array shapes/dtypes and done set (no data read)."""
        h = hashlib.sha256()
        info = {"attrs": self.attrs,
                "arrays": {k: [list(self.group[k].shape), str(self.group[k].dtype)] for k in sorted(self._names)}}
        h.update(json.dumps(info, sort_keys=True, default=str).encode())
        h.update(np.packbits(self.done).tobytes())
        return h.hexdigest()

    def describe(self) -> dict:
        return {"path": str(self.path), "problem": self.problem, "n": self.n, "n_samples": self.n_total,
                "n_done": self.n_done, "fingerprint": self.fingerprint(),
                "seed": (self.record.get("generate") or {}).get("seed"),
                "schema_version": self.record.get("schema_version")}

    def read(self, name: str, index: np.ndarray) -> np.ndarray:
        """Rows ``index`` (sorted ascending) of a per-sample array, reading contiguous ranges."""
        arr = self.array(name)
        index = np.asarray(index, dtype=np.int64)
        if index.size == 0:
            return np.zeros((0,) + tuple(arr.shape[1:]), dtype=np.float64)
        lo, hi = int(index.min()), int(index.max()) + 1
        block = np.asarray(arr[lo:hi])
        return block[index - lo]


def open_store(path: str | Path, problem: str | None = None) -> Store:
    store = Store(path)
    if problem is not None and store.problem != problem:
        raise DataError(f"store {str(path)!r} holds {store.problem!r} samples, not {problem!r}")
    return store


# --------------------------------------------------------------------------
# normalisation and encoding (shared with surrogate.load)
# --------------------------------------------------------------------------
class _Moments:
    """Mean and variance, combined chunk by chunk in float64 (Chan et al.)."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, a: np.ndarray) -> None:
        a = np.asarray(a, dtype=np.float64).ravel()
        if a.size == 0:
            return
        nb, mb = a.size, float(a.mean())
        m2b = float(((a - mb) ** 2).sum())
        n = self.n + nb
        delta = mb - self.mean
        self.mean += delta * nb / n
        self.m2 += m2b + delta * delta * self.n * nb / n
        self.n = n

    def result(self) -> list[float]:
        std = math.sqrt(self.m2 / self.n) if self.n else 1.0
        if not math.isfinite(std) or std < 1e-12:
            std = 1.0
        return [float(self.mean), float(std)]


def compute_normalization(store: Store, layout: Layout, train_index: np.ndarray, enabled: bool = True,
                          block: int | None = None) -> dict:
    """Per-channel / per-target [mean, std] over the done training samples."""
    stats: dict[str, dict[str, list[float]]] = {"inputs": {}, "targets": {}}
    if not enabled:
        stats["inputs"] = {c: [0.0, 1.0] for c in layout.channels}
        stats["targets"] = {t: [0.0, 1.0] for t in layout.targets}
        return {"enabled": False, **stats}
    if len(train_index) == 0:
        raise DataError(f"store {str(store.path)!r}: the training split has no finished samples")
    moments = {name: _Moments() for name in layout.arrays}
    for name in layout.arrays:
        arr = store.array(name)
        step = block or max(int(arr.chunks[0]), 1)
        for chunk_ids in _chunk_groups(train_index, step):
            moments[name].add(store.read(name, chunk_ids))
    gx, gy = store.grid()
    for c in layout.channels:
        if c == "x" or c == "y":
            m = _Moments()
            m.add(gx if c == "x" else gy)
            stats["inputs"][c] = m.result()
        else:
            stats["inputs"][c] = moments[c].result()
    for t in layout.targets:
        stats["targets"][t] = moments[t].result()
    return {"enabled": True, **stats}


def _chunk_groups(index: np.ndarray, chunk: int) -> Iterator[np.ndarray]:
    """Split sorted ``index`` into groups that share a chunk of length ``chunk``."""
    index = np.asarray(index, dtype=np.int64)
    if index.size == 0:
        return
    cid = index // chunk
    cuts = np.flatnonzero(np.diff(cid)) + 1
    yield from np.split(index, cuts)


class Codec:
    """Physical arrays <-> normalised network tensors for one layout.

    ``flat`` (MLP) flattens the input to ``C*n*n``; the CNN takes ``C x n x n``.
    The network output is always a vector of ``layout.out_dim`` values.
    """

    def __init__(self, layout: Layout, normalization: Mapping, flat: bool):
        self.layout = layout
        self.norm = normalization
        self.flat = flat
        n = layout.n
        self._in_mean = np.array([normalization["inputs"][c][0] for c in layout.channels], dtype=np.float64)
        self._in_std = np.array([normalization["inputs"][c][1] for c in layout.channels], dtype=np.float64)
        self._out_mean = np.concatenate([np.full(math.prod(s) or 1, normalization["targets"][t][0])
                                         for t, s in zip(layout.targets, layout.target_shapes)])
        self._out_std = np.concatenate([np.full(math.prod(s) or 1, normalization["targets"][t][1])
                                        for t, s in zip(layout.targets, layout.target_shapes)])
        self.grid: tuple[np.ndarray, np.ndarray] | None = None
        self.n = n

    @property
    def in_feature_shape(self) -> tuple[int, ...]:
        c, n, _ = self.layout.in_shape
        return (c * n * n,) if self.flat else (c, n, n)

    def set_grid(self, gx: np.ndarray, gy: np.ndarray) -> None:
        self.grid = (np.asarray(gx, dtype=np.float64), np.asarray(gy, dtype=np.float64))

    # -- inputs -----------------------------------------------------------------
    def stack_inputs(self, fields: Mapping[str, np.ndarray]) -> np.ndarray:
        """(B, C, n, n) physical channel stack from per-sample input arrays (+ grid)."""
        first = np.asarray(fields[self.layout.inputs[0]])
        b = first.shape[0]
        chans = []
        for c in self.layout.channels:
            if c in fields:
                chans.append(np.asarray(fields[c], dtype=np.float64))
            elif c in GRID_CHANNELS:
                if self.grid is None:
                    raise ValueError("grid coordinates are not known")
                g = self.grid[0] if c == "x" else self.grid[1]
                chans.append(np.broadcast_to(g, (b,) + g.shape))
            else:
                raise KeyError(c)
        return np.stack(chans, axis=1)

    def encode_stack(self, stack: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
        z = (stack - self._in_mean[None, :, None, None]) / self._in_std[None, :, None, None]
        t = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))
        if self.flat:
            t = t.reshape(t.shape[0], -1)
        return t.to(device)

    def encode_inputs(self, fields: Mapping[str, np.ndarray], device: torch.device | str = "cpu") -> torch.Tensor:
        return self.encode_stack(self.stack_inputs(fields), device)

    # -- targets ----------------------------------------------------------------
    def target_vector(self, fields: Mapping[str, np.ndarray]) -> np.ndarray:
        """(B, out_dim) physical target vector."""
        parts = []
        for t in self.layout.targets:
            a = np.asarray(fields[t], dtype=np.float64)
            parts.append(a.reshape(a.shape[0], -1))
        return np.concatenate(parts, axis=1)

    def encode_targets(self, fields: Mapping[str, np.ndarray], device: torch.device | str = "cpu") -> torch.Tensor:
        z = (self.target_vector(fields) - self._out_mean) / self._out_std
        return torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)).to(device)

    def decode_vector(self, y: torch.Tensor | np.ndarray) -> np.ndarray:
        """Normalised (B, out_dim) -> physical (B, out_dim) float64."""
        if isinstance(y, torch.Tensor):
            y = y.detach().to("cpu", torch.float64).numpy()
        return np.asarray(y, dtype=np.float64) * self._out_std + self._out_mean

    def decode_torch(self, y: torch.Tensor) -> torch.Tensor:
        """Normalised -> physical, on y's device (float32)."""
        std = torch.as_tensor(self._out_std, dtype=y.dtype, device=y.device)
        mean = torch.as_tensor(self._out_mean, dtype=y.dtype, device=y.device)
        return y * std + mean

    def split_targets(self, vec: np.ndarray) -> dict[str, np.ndarray]:
        """Physical (B, out_dim) -> {target: (B,) or (B, n, n)}."""
        out, k = {}, 0
        for t, s in zip(self.layout.targets, self.layout.target_shapes):
            size = math.prod(s) if s else 1
            out[t] = vec[:, k:k + size].reshape((vec.shape[0],) + tuple(s))
            k += size
        return out

    def target_slices(self) -> dict[str, slice]:
        out, k = {}, 0
        for t, s in zip(self.layout.targets, self.layout.target_shapes):
            size = math.prod(s) if s else 1
            out[t] = slice(k, k + size)
            k += size
        return out


# --------------------------------------------------------------------------
# tensors: loaded or streamed
# --------------------------------------------------------------------------
class _ChunkCache:
    def __init__(self, max_bytes: float):
        self.max_bytes = max(float(max_bytes), 0.0)
        self.items: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self.bytes = 0

    def get(self, key, load):
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        value = load()
        self.items[key] = value
        self.bytes += value.nbytes
        while self.bytes > self.max_bytes and len(self.items) > 1:
            _, old = self.items.popitem(last=False)
            self.bytes -= old.nbytes
        return value


class StreamedArray:
    """Tensor-like view of encoded inputs or targets that reads store chunks on demand.

    ``A[idx]`` (idx: int tensor/array/slice over positions 0..len-1) returns a
    float32 tensor on ``device``; chunks are cached (LRU) up to ``cache_bytes``.
    """

    def __init__(self, store: Store, names: tuple[str, ...], index: np.ndarray, encode, feature_shape,
                 device: torch.device, cache: _ChunkCache):
        self.store, self.names, self.index = store, names, np.asarray(index, dtype=np.int64)
        self._encode, self.device, self._cache = encode, torch.device(device), cache
        self.shape = torch.Size((len(self.index),) + tuple(feature_shape))
        self.dtype = torch.float32
        self._chunks = {name: max(int(store.array(name).chunks[0]), 1) for name in names}

    def __len__(self) -> int:
        return len(self.index)

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def _rows(self, name: str, sample_ids: np.ndarray) -> np.ndarray:
        arr = self.store.array(name)
        chunk = self._chunks[name]
        cids = sample_ids // chunk
        out = np.empty((len(sample_ids),) + tuple(arr.shape[1:]), dtype=arr.dtype)
        for c in np.unique(cids):
            lo = int(c) * chunk
            block = self._cache.get((name, int(c)), lambda lo=lo: np.asarray(arr[lo:min(lo + chunk, arr.shape[0])]))
            sel = cids == c
            out[sel] = block[sample_ids[sel] - lo]
        return out

    def __getitem__(self, idx) -> torch.Tensor:
        if isinstance(idx, torch.Tensor):
            pos = idx.detach().to("cpu").numpy().astype(np.int64).reshape(-1)
        elif isinstance(idx, slice):
            pos = np.arange(len(self.index))[idx]
        else:
            pos = np.asarray(idx, dtype=np.int64).reshape(-1)
        ids = self.index[pos]
        fields = {name: self._rows(name, ids) for name in self.names}
        return self._encode(fields, self.device)

    def to(self, device) -> "StreamedArray":
        self.device = torch.device(device)
        return self


@dataclass
class Split:
    """Encoded inputs X and targets Y of one split (tensors or :class:`StreamedArray`)."""

    name: str
    index: np.ndarray      # store sample indices, ascending
    X: Any
    Y: Any

    def __len__(self) -> int:
        return len(self.index)

    @property
    def streamed(self) -> bool:
        return isinstance(self.X, StreamedArray)

    def batches(self, batch_size: int, limit: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        total = len(self) if limit is None else min(limit, len(self))
        for a in range(0, total, batch_size):
            sl = slice(a, min(a + batch_size, total))
            yield self.X[sl], self.Y[sl]


def encoded_bytes(layout: Layout, n_samples: int) -> int:
    c, n, _ = layout.in_shape
    return 4 * n_samples * (c * n * n + layout.out_dim)


class Dataset:
    """Everything training/evaluation needs from one store."""

    def __init__(self, store: Store, layout: Layout, codec: Codec, splits: dict[str, Split], streamed: bool,
                 split_index: dict[str, np.ndarray]):
        self.store, self.layout, self.codec = store, layout, codec
        self.splits, self.streamed, self.split_index = splits, streamed, split_index

    def __getitem__(self, name: str) -> Split:
        return self.splits[name]


def load_dataset(store: Store | str | Path, *, data_cfg: Mapping, flat: bool, device: torch.device | str = "cpu",
                 splits: tuple[str, ...] = ("train", "val"), normalization: Mapping | None = None,
                 problem: str | None = None, force_stream: bool | None = None,
                 block_bytes: int = 64 << 20) -> Dataset:
    """Open ``store`` and build encoded tensors for ``splits``.

    ``normalization`` (e.g. from a saved model) is used as given; otherwise it
    is computed on the training split.  ``force_stream`` overrides the memory
    budget decision (tests).
    """
    if not isinstance(store, Store):
        store = open_store(store, problem)
    elif problem is not None and store.problem != problem:
        raise DataError(f"store {str(store.path)!r} holds {store.problem!r} samples, not {problem!r}")
    store.check_complete(bool(data_cfg.get("allow_incomplete", False)))
    layout = make_layout(store.problem, store.n, data_cfg.get("darcy_target", "Q"))
    for name in layout.arrays:
        store.require(name)
        shape = tuple(store.array(name).shape)
        want = (store.n_total,) + tuple(s for s in layout.target_shapes[layout.targets.index(name)]) \
            if name in layout.targets else (store.n_total, store.n, store.n)
        if shape != want:
            raise DataError(f"store {str(store.path)!r}: array {name!r} has shape {shape}; expected {want}")
    split_index = store.split_indices(data_cfg["split"])
    for name in splits:
        if len(split_index[name]) == 0:
            raise DataError(f"store {str(store.path)!r}: the {name!r} split has no finished samples "
                            f"(N = {store.n_total}, data.split = {dict(data_cfg['split'])})")
    if normalization is None:
        normalization = compute_normalization(store, layout, split_index["train"],
                                              bool(data_cfg.get("normalize", True)))
    codec = Codec(layout, normalization, flat)
    codec.set_grid(*store.grid())
    device = torch.device(device)
    budget = float(data_cfg.get("memory_budget_mb", 2048.0)) * 2 ** 20
    need = sum(encoded_bytes(layout, len(split_index[s])) for s in splits)
    streamed = need > budget if force_stream is None else bool(force_stream)
    out: dict[str, Split] = {}
    if streamed:
        cache = _ChunkCache(budget)
        tshape = (layout.out_dim,)
        for s in splits:
            idx = split_index[s]
            X = StreamedArray(store, layout.inputs, idx, codec.encode_inputs, codec.in_feature_shape, device, cache)
            Y = StreamedArray(store, layout.targets, idx, codec.encode_targets, tshape, device, cache)
            out[s] = Split(s, idx, X, Y)
    else:
        for s in splits:
            idx = split_index[s]
            xs, ys = [], []
            step = max(1, int(block_bytes // max(encoded_bytes(layout, 1), 1)))
            for a in range(0, len(idx), step):
                part = idx[a:a + step]
                fields = {name: store.read(name, part) for name in layout.arrays}
                xs.append(codec.encode_inputs(fields, device))
                ys.append(codec.encode_targets(fields, device))
            out[s] = Split(s, idx, torch.cat(xs), torch.cat(ys))
    return Dataset(store, layout, codec, out, streamed, split_index)
