"""Reading a generated store's per-sample arrays back, and comparing two stores (store tests)."""

import numpy as np

from pde_data.store import open_store_group


def read_samples(path, fields):
    """The per-sample ``fields`` and the ``done`` flags of the store at ``path``, as numpy arrays."""
    group, _ = open_store_group(path)
    return {name: group[name][:] for name in (*fields, "done")}


def assert_same_samples(a, b, fields):
    for name in fields:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
