"""A store's splits as encoded tensors on the training device, loaded or streamed.

The split is by sample index, in contiguous blocks of the store's index
range ``[0, N)``: the first ``data.split.train`` fraction, the next ``val``
fraction, the rest for ``test``. Sample ``i`` is therefore always in the
same split, whichever samples happen to be done; only done samples are
used, and a store with missing samples is refused unless
``data.allow_incomplete``. Only the arrays the layout needs are read.

When the encoded tensors of the requested splits fit
``data.memory_budget_mb`` they are read once onto the device; otherwise
each split is a :class:`StreamedArray`, which reads the chunks a minibatch
needs (an LRU cache of chunks within the budget). Either way a minibatch is
``X[idx]`` with an index tensor, never a per-sample ``__getitem__``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pde_data.store import StoreError, StoreReader
from surrogate.codec import Codec
from surrogate.config import DataConfig, SplitConfig
from surrogate.layout import Layout, layout_of
from surrogate.normalization import compute_normalization


def open_store(path: Any, problem: str | None = None) -> StoreReader:
    """The store at ``path`` (or ``path`` itself if already open), checked to hold ``problem``."""
    store = path if isinstance(path, StoreReader) else StoreReader(path)
    if problem is not None and store.problem != problem:
        raise StoreError(f"store {store.path} holds {store.problem!r} samples, not {problem!r}")
    return store


def check_complete(store: StoreReader, allow_incomplete: bool) -> None:
    missing = store.n_total - store.n_done
    if missing and not allow_incomplete:
        raise StoreError(
            f"store {store.path} has {missing} of {store.n_total} samples not marked done; "
            "finish it with `pde-data generate ... --out STORE` (it resumes), or set "
            "data.allow_incomplete: true to train on the finished samples only")
    if store.n_done == 0:
        raise StoreError(f"store {store.path} has no finished samples")


def split_indices(store: StoreReader, split: SplitConfig) -> dict[str, np.ndarray]:
    """Done sample indices of each split (contiguous blocks of [0, N))."""
    n = store.n_total
    n_train = math.floor(split.train * n + 1e-9)
    n_val = math.floor((split.train + split.val) * n + 1e-9) - n_train
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, n)}
    if split.test == 0.0:
        bounds["val"], bounds["test"] = (n_train, n), (n, n)
    return {name: store.done_in(a, b) for name, (a, b) in bounds.items()}


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

    def __init__(self, store: StoreReader, names: tuple[str, ...], index: np.ndarray, encode, feature_shape,
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
            block = self._cache.get((name, int(c)), lambda c=int(c): self.store.read_chunk(name, c))
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

    def to(self, device) -> StreamedArray:
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


@dataclass
class Dataset:
    """Everything training/evaluation needs from one store."""

    store: StoreReader
    layout: Layout
    codec: Codec
    splits: dict[str, Split]
    streamed: bool
    split_index: dict[str, np.ndarray]
    budget_bytes: float = 0.0

    def __getitem__(self, name: str) -> Split:
        return self.splits[name]

    def chunk_window(self) -> tuple[int, int]:
        """(samples per chunk, chunks per shuffle window) of the ``stream_order: chunks`` order: a window
        is half of what the streaming cache holds, so a window's chunks stay cached while it is drawn."""
        chunk = int(self.store.array(self.layout.inputs[0]).chunks[0])
        per_chunk = chunk * encoded_bytes(self.layout, 1)
        return chunk, max(int(self.budget_bytes // (2 * per_chunk)), 1)


def load_dataset(store: StoreReader | Any, *, data: DataConfig, flat: bool, device: torch.device | str = "cpu",
                 splits: tuple[str, ...] = ("train", "val"), normalization: Mapping | None = None,
                 problem: str | None = None, force_stream: bool | None = None,
                 block_bytes: int = 64 << 20) -> Dataset:
    """Open ``store`` and build encoded tensors for ``splits``.

    ``normalization`` (e.g. from a saved model) is used as given; otherwise it
    is computed on the training split.  ``force_stream`` overrides the memory
    budget decision (tests).
    """
    store = open_store(store, problem)
    check_complete(store, data.allow_incomplete)
    layout = layout_of(store, data.target_of(store.problem))
    split_index = split_indices(store, data.split)
    for name in splits:
        if len(split_index[name]) == 0:
            raise StoreError(f"store {store.path}: the {name!r} split has no finished samples "
                             f"(N = {store.n_total}, data.split = {data.split.to_dict()})")
    if normalization is None:
        normalization = compute_normalization(store, layout, split_index["train"], data.normalize)
    codec = Codec(layout, normalization, flat)
    if layout.grid_channels:
        codec.set_grid(*store.grid(layout.n))
    device = torch.device(device)
    budget = data.memory_budget_mb * 2 ** 20
    need = sum(encoded_bytes(layout, len(split_index[s])) for s in splits)
    streamed = need > budget if force_stream is None else bool(force_stream)
    out: dict[str, Split] = {}
    cache = _ChunkCache(budget)
    for s in splits:
        idx = split_index[s]
        if streamed:
            X = StreamedArray(store, layout.inputs, idx, codec.encode_inputs, codec.in_feature_shape, device, cache)
            Y = StreamedArray(store, layout.targets, idx, codec.encode_targets, (layout.out_dim,), device, cache)
        else:
            step = max(1, int(block_bytes // encoded_bytes(layout, 1)))
            xs, ys = [], []
            for a in range(0, len(idx), step):
                fields = {name: store.read(name, idx[a:a + step]) for name in layout.arrays}
                xs.append(codec.encode_inputs(fields, device))
                ys.append(codec.encode_targets(fields, device))
            X, Y = torch.cat(xs), torch.cat(ys)
        out[s] = Split(s, idx, X, Y)
    return Dataset(store, layout, codec, out, streamed, split_index, budget)
