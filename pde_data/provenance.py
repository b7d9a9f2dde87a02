"""Which software made a file: the versions recorded in every store and model file."""

from __future__ import annotations

import importlib
import platform


def versions(*modules: str) -> dict[str, str]:
    """Python's version and the ``__version__`` of each of ``modules`` (imported here), by module name."""
    out = {"python": platform.python_version()}
    for name in modules:
        out[name] = str(importlib.import_module(name).__version__)
    return out
