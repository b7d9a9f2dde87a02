"""Tiny synthetic pde-data stores for the surrogate tests (no DOLFINx needed).

Same layout as ``pde-data generate`` writes: a Zarr v3 group with per-sample
arrays chunked along the sample axis, ``x``/``y`` grid arrays, a boolean
``done`` array and ``problem`` etc. in the group attributes.  The fields are
smooth and cheap functions of random parameters so that a tiny network can
learn something.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr

from surrogate import config

#: Tiny models and a 16-work-unit training: the surrogate tests' shared parameters.
TINY = {
    "poisson": {"mlp": {"hidden": [8, 8]}, "cnn": {"conv": [[4, 3, 2], [4, 3, 1]], "fc": [8]}},
    "darcy": {"mlp": {"hidden": [8, 8]}, "cnn": {"conv": [[4, 3, 2], [4, 3, 1]], "fc": [8]}},
}
PARAMS = {
    "data": {"split": {"train": 0.6, "val": 0.2, "test": 0.2}},
    "models": TINY,
    "train": {"budget_wu": 16, "batch_size": 6, "lr": 0.01, "eval_every_wu": 4, "checkpoint_every_wu": 8,
              "eval_train_samples": 8, "device": "cpu",
              "fas": {"levels": 2, "pre": 2, "coarse": 2, "post": 2, "rematch_every": 2}},
}


def cfg_for(problem, model="mlp", trainer="fas", overrides=()):
    """The resolved config of ``problem``, ``model`` and ``trainer`` under PARAMS and the ``-S`` overrides."""
    return config.resolve(PARAMS, problem=problem, model=model, trainer=trainer, overrides=list(overrides))


def make_store(path: str | Path, problem: str, arrays: dict[str, np.ndarray], grid: tuple[np.ndarray, np.ndarray],
               done: np.ndarray, seed: int, chunk: int) -> Path:
    """A store of ``problem`` holding the per-sample ``arrays`` (first axis: samples) and the (x, y) grid."""
    g = zarr.open_group(str(path), mode="w", zarr_format=3)
    for name, data in {**arrays, "done": done}.items():
        _arr(g, name, data, chunk)
    for name, coord in zip("xy", grid):
        g.create_array(name, shape=coord.shape, dtype="float32")[...] = coord.astype(np.float32)
    _record(g, problem, len(done), grid[0].shape[0], seed, chunk)
    return Path(path)


def _record(g, problem, n_samples, n, seed, chunk):
    arrays = {name: [list(g[name].shape[1:]), str(g[name].dtype)] for name in g.array_keys()
              if name not in ("done", "x", "y")}
    g.attrs["pde_data"] = {
        "store_format": 1, "problem": problem, "schema_version": 1, "params": {"n": n, "synthetic": True},
        "generate": {"samples": n_samples, "chunk": chunk, "seed": seed}, "mesh": {"cells": [n, n]},
        "sample_arrays": arrays, "store_arrays": ["x", "y"], "versions": {"synthetic": "1"}}


def _arr(g, name, data, chunk):
    shape = data.shape
    a = g.create_array(name, shape=shape, chunks=(chunk,) + shape[1:], dtype=data.dtype,
                       fill_value=0)
    a[...] = data
    return a


def make_poisson_store(path: str | Path, n_samples: int = 24, n: int = 8, seed: int = 0, chunk: int = 5,
                       missing: tuple[int, ...] = ()) -> Path:
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, n)
    x, y = np.meshgrid(t, t)
    theta = np.stack([rng.uniform(0.5, 4, n_samples), rng.uniform(0.5, 4, n_samples),
                      rng.uniform(0, 0.5, n_samples), rng.uniform(0, 0.5, n_samples),
                      rng.uniform(0, np.pi / 2, n_samples)], axis=1)
    kappa = np.empty((n_samples, n, n))
    u = np.empty((n_samples, n, n))
    for i, (kx, ky, ax, ay, al) in enumerate(theta):
        xr = np.cos(al) * (x - .5) - np.sin(al) * (y - .5) + .5
        yr = np.sin(al) * (x - .5) + np.cos(al) * (y - .5) + .5
        kappa[i] = 1.1 + np.cos(kx * np.pi * (xr + ax)) * np.cos(ky * np.pi * (yr + ay))
        u[i] = np.sin(np.pi * x) * np.sin(np.pi * y) * (0.5 + 0.2 * kappa[i]) / kappa[i].mean()
    done = np.ones(n_samples, bool)
    for m in missing:
        done[m] = False
        kappa[m] = 0.0
        u[m] = 0.0
    f32 = np.float32
    f = np.broadcast_to(32 * np.exp(-4 * ((x - .25) ** 2 + (y - .25) ** 2)), kappa.shape)
    return make_store(path, "poisson", {"kappa": kappa.astype(f32), "u": u.astype(f32), "f": f.astype(f32),
                                        "flux": np.zeros((n_samples, 2, n, n), f32), "theta": theta},
                      (x, y), done, seed, chunk)


def make_darcy_store(path: str | Path, n_samples: int = 24, n: int = 8, seed: int = 1, chunk: int = 5,
                     missing: tuple[int, ...] = ()) -> Path:
    rng = np.random.default_rng(seed)
    t = (np.arange(n) + 0.5) / n
    x, y = np.meshgrid(t, t)
    log_k = np.empty((n_samples, n, n))
    for i in range(n_samples):
        a, b, c = rng.normal(size=3)
        log_k[i] = a * np.cos(np.pi * x) + b * np.sin(np.pi * y) + 0.3 * c + 0.1 * rng.normal(size=(n, n))
    k = np.exp(log_k)
    # series resistance along x (rows are y): a cheap Q-like functional of k
    Q = (1.0 / (1.0 / k).mean(axis=2)).mean(axis=1)
    p = np.cumsum(1.0 / k, axis=2) / (1.0 / k).sum(axis=2, keepdims=True)
    done = np.ones(n_samples, bool)
    for m in missing:
        done[m] = False
    f32 = np.float32
    return make_store(path, "darcy", {"log_k": log_k.astype(f32), "p": (1 - p).astype(f32), "Q": Q, "Q_in": Q},
                      (x, y), done, seed, chunk)
