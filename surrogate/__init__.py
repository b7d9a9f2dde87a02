"""Neural-network PDE surrogates trained with one-level and multilevel-in-width (FAS) methods.

``surrogate.load(path)`` returns a trained surrogate with ``predict(x)`` in
physical units and its metadata (see :mod:`surrogate.io`).  Importing the
package is light: torch, zarr, dvclive and matplotlib are imported only by
the submodules that use them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load"]


def load(path: Any, device: Any = "cpu"):
    """Load a surrogate written by ``surrogate train`` or ``surrogate export`` (never executes code from a file).

    ``path``: a model file (``best.pt``, ``final.pt``, ``aux_best.pt``, ``aux_final.pt``),
    a model directory (its ``best.pt``) or an export directory (``model.safetensors`` +
    ``config.json``).  Returns a :class:`surrogate.io.Surrogate`.
    """
    from surrogate.io import load as _load

    return _load(path, device)
