"""Reusing FEM samples already solved: the store's test split as control-variate pairs (``mc.reuse: test``).

**Why it is unbiased.** The store's sample i is drawn from its own generator
SeedSequence((seed, i)): the samples are independent draws of the field.
The surrogate g is a function of the training split (the fit) and of the
validation split (``best.pt`` is chosen by validation error, and the
pipeline's ``select`` stage picks among models by it) only; the test split
is read by ``surrogate evaluate`` for metrics but nothing is fitted to it. So
given g, the test pairs (f(x_i), g(x_i)) are i.i.d. with E[f(x_i) - beta g(x_i) | g]
= E[f] - beta E_x[g]. The fresh fields x'_j of the Monte Carlo run come from
streams that no store uses (:mod:`surrogate.mc.fields`) and are independent
of both, with E[g(x'_j) | g] = E_x[g]. Hence, for any fixed beta,

    mu = mean_pairs(f - beta g) + beta mean_N(g(x'))

has E[mu | g] = E[f]: unbiased whatever the surrogate's bias. (With beta
estimated from the same pairs the bias is O(1/M), as for the plain control
variate.) The validation split would not do: g depends on it through the
selection, a small but real bias. This needs the fresh fields to follow the
store's distribution: reuse is refused when ``mc.field`` changes it.

**K-fold cross-fitting** (:func:`surrogate.mc.estimators.cross_fit`) extends
the argument to every store sample: with K surrogates g_k, each trained
without fold k, sample i of fold k is independent of g_k, and the
correction beta sum_k (M_k / M) mean_N(g_k) has the matching expectation.
Training K surrogates needs index-set splits in ``surrogate train`` (it takes
contiguous fractions), so the pipeline uses the test split; the estimator is
tested on a model where K fits are cheap.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pde_data.store import StoreError, StoreReader
from surrogate.config import SplitConfig
from surrogate.io import Surrogate
from surrogate.mc.errors import MCError

#: ``mc.reuse`` values: none, or the split that nothing is fitted to (module docstring).
REUSE = ("none", "test")


def heldout_pairs(sur: Surrogate, field: Mapping, trained_field: Mapping) -> tuple[np.ndarray, np.ndarray, dict]:
    """(log_k (M, n, n), Q_fem (M,), info) of the test split of the store ``sur`` was trained on.

    ``field``/``trained_field``: the MC run's field parameters and the store's; they must agree.
    """
    info = dict(sur.meta.get("store") or {})
    changed = [k for k in trained_field if k in field and field[k] != trained_field[k]]
    if changed:
        raise MCError(f"mc.reuse: the store's test samples follow the training field, but this run draws from "
                      f"another one ({', '.join(changed)} differ); reusing them would bias E[Q]: set mc.reuse: none "
                      "or drop the mc.field overrides")
    path = info.get("path")
    try:
        store = StoreReader(path)
    except (StoreError, TypeError) as err:
        raise MCError(f"mc.reuse: the surrogate's training store {path!r} cannot be read ({err}); set mc.reuse: "
                      "none") from None
    if info.get("fingerprint") and store.fingerprint() != info["fingerprint"]:
        raise MCError(f"mc.reuse: store {path} has changed since the surrogate was trained on it (fingerprint); "
                      "its test split may hold other samples: set mc.reuse: none or retrain")
    from surrogate.dataset import split_indices

    split = SplitConfig.from_mapping((sur.meta.get("data") or {}).get("split"))
    index = split_indices(store, split)["test"]
    if len(index) < 3:
        raise MCError(f"mc.reuse: store {path} has {len(index)} finished test samples; need at least 3")
    log_k = store.read("log_k", index).astype(np.float64)
    q = store.read("Q", index).astype(np.float64).reshape(-1)
    return log_k, q, {"store": str(path), "split": "test", "samples": len(index),
                      "first": int(index[0]), "last": int(index[-1])}
