"""Shared fixtures of the test suite."""

import pytest
import yaml


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
