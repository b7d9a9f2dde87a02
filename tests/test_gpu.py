"""On a CUDA device (``pytest -m gpu``, run by benchmarks/gpu_check.py): the same results as on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from surrogate import config
from surrogate.io import read_model_file
from surrogate.train import QUIET, train
from surrogate_stores import make_darcy_store, make_poisson_store

pytestmark = pytest.mark.gpu

PARAMS = {"data": {"split": {"train": 0.6, "val": 0.2, "test": 0.2}},
          "models": {"poisson": {"mlp": {"hidden": [32, 32]}, "cnn": {"conv": [[8, 3, 2], [8, 3, 1]], "fc": [16]}},
                     "darcy": {"mlp": {"hidden": [32, 32]}}},
          "train": {"budget_wu": 12, "batch_size": 8, "eval_every_wu": 4, "checkpoint_every_wu": 12,
                    "fas": {"levels": 2, "pre": 2, "coarse": 2, "post": 2, "rematch_every": 2}}}


@pytest.fixture(scope="module", autouse=True)
def cuda():
    assert torch.cuda.is_available(), "the gpu tests need a CUDA device (run them on a GPU machine)"


@pytest.mark.parametrize("model, trainer", [("mlp", "sgd"), ("mlp", "fas"), ("cnn", "adamw")])
def test_training_on_cuda_matches_the_cpu(tmp_path, model, trainer):
    store = make_poisson_store(tmp_path / "p.zarr", n_samples=40, n=8, chunk=8)
    for device in ("cpu", "cuda"):
        cfg = config.resolve(PARAMS, problem="poisson", model=model, trainer=trainer,
                             overrides=[f"train.device={device}"])
        summary = train(cfg, store, tmp_path / device, reporting=QUIET)
        assert summary["device"].startswith(device)
    a, _ = read_model_file(tmp_path / "cpu" / "final.pt")
    b, _ = read_model_file(tmp_path / "cuda" / "final.pt")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-3, atol=1e-4, msg=k)


def test_monte_carlo_on_cuda_matches_the_cpu(tmp_path):
    from surrogate import mc

    store = make_darcy_store(tmp_path / "d.zarr", n_samples=30, n=8, chunk=8)
    train(config.resolve(PARAMS, problem="darcy", trainer="sgd", overrides=["train.device=cuda"]), store,
          tmp_path / "m", reporting=QUIET)
    field = {"kernel": "matern", "mean": 0.0, "variance": 1.0, "length": 0.2, "nu": 1.5}
    cpu, gpu = (mc.estimate(tmp_path / "m", 2000, device=d, field_params=field) for d in ("cpu", "cuda"))
    assert gpu.device.startswith("cuda")
    np.testing.assert_allclose(cpu.q_sur, gpu.q_sur, rtol=1e-4, atol=1e-6)
