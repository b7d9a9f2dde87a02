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
