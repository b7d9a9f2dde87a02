"""Checksums bound to their place: the ``manifest`` array of a format-3 store.

A crc32c per chunk (the codec) proves that a chunk file decodes to what was
written *somewhere*; it cannot tell chunk 3 of ``u`` from chunk 5, or from
chunk 3 of another store of the same shape. The manifest can: row ``k`` holds,
for every per-sample array ``a`` of the store, the digest::

    blake2b-128( store id | a | k | dtype | shape | the chunk's values )

where the store id is a random token drawn when the store was created (an
attribute of the manifest). A chunk file that was swapped, copied from another store, replaced by a
link, or altered and re-encoded with valid codec checksums no longer matches its
row. Rows are written with their chunk (data, then the row, then ``done``), one
row per chunk file, so MPI ranks writing different chunks never share a file.
"""

from __future__ import annotations

import hashlib
import uuid

import numpy as np
import zarr

#: Name of the manifest array in a store.
NAME = "manifest"
#: Bytes per digest (blake2b-128).
DIGEST_BYTES = 16


def create(group: zarr.Group, names: list[str], n_chunks: int, compressors, config,
           dimension_names: tuple[str, ...] | None = None, attributes: dict | None = None) -> None:
    """Add an empty manifest for ``n_chunks`` chunks of the arrays ``names`` to a new store, with a fresh store id
    (``dimension_names`` and ``attributes``: its labels, :mod:`pde_data.labels`)."""
    array = group.create_array(NAME, shape=(n_chunks, len(names), DIGEST_BYTES),
                               chunks=(1, len(names), DIGEST_BYTES), dtype="uint8", fill_value=0,
                               compressors=compressors, config=config, dimension_names=dimension_names)
    array.attrs.update({**(attributes or {}), "store_id": uuid.uuid4().hex, "arrays": list(names),
                        "digest": "blake2b-128 of store id | array | chunk index | dtype | shape | values"})


class Manifest:
    """The digests of one store: :meth:`seal` writes a chunk's row, :meth:`mismatch` checks a chunk."""

    def __init__(self, group: zarr.Group):
        self.array = group[NAME]
        attrs = self.array.attrs
        self.store_id, self.names = str(attrs["store_id"]), [str(name) for name in attrs["arrays"]]

    def digest(self, name: str, k: int, values: np.ndarray) -> bytes:
        """The digest of ``values``, the samples of chunk ``k`` of array ``name``."""
        values = np.ascontiguousarray(values)
        head = f"{self.store_id}|{name}|{k}|{values.dtype.str}|{values.shape}|".encode()
        h = hashlib.blake2b(head, digest_size=DIGEST_BYTES)
        h.update(values.view(np.uint8).reshape(-1) if values.size else b"")
        return h.digest()

    def seal(self, k: int, arrays: dict[str, np.ndarray]) -> None:
        """Write row ``k``: the digests of the chunk ``arrays`` (each per-sample array, as its zarr dtype)."""
        row = [np.frombuffer(self.digest(name, k, arrays[name]), dtype=np.uint8) for name in self.names]
        self.array[k] = np.stack(row)

    def rows(self, first: int, last: int) -> np.ndarray:
        """Rows ``first`` to ``last`` (a missing row reads as zeros, which no digest equals)."""
        return np.asarray(self.array[first:last + 1])

    def mismatch(self, name: str, k: int, values: np.ndarray, row: np.ndarray) -> str | None:
        """What is wrong with chunk ``k`` of ``name`` against its manifest ``row`` (None: it is in place)."""
        want = row[self.names.index(name)].tobytes()
        if not any(want):
            return "no manifest entry (a chunk written without its digest)"
        if self.digest(name, k, values) != want:
            return "does not match its place in the manifest (a swapped, foreign or altered chunk)"
        return None
