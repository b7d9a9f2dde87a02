"""Shared fixtures of the test suite."""

import pytest
import yaml

from surrogate_stores import make_darcy_store, make_poisson_store


@pytest.fixture
def write_params(tmp_path):
    """Write a params.yaml with a small Poisson section; keyword arguments override its keys."""

    def write(section: str = "poisson", **keys):
        defaults = {"poisson": {"n": 8, "samples": 12, "chunk": 4, "seed": 0}}.get(section, {})
        path = tmp_path / f"params-{len(list(tmp_path.glob('params-*')))}.yaml"
        path.write_text(yaml.safe_dump({section: {**defaults, **keys}}))
        return path

    return write


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: one thread avoids OpenMP barrier stalls on a shared CPU."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A tiny synthetic Poisson and Darcy store (30 samples, n = 8) per test module."""
    d = tmp_path_factory.mktemp("stores")
    return {"poisson": make_poisson_store(d / "p.zarr", n_samples=30, n=8, chunk=4),
            "darcy": make_darcy_store(d / "d.zarr", n_samples=30, n=8, chunk=4)}
