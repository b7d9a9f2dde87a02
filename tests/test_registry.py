"""A new PDE family is one registry entry plus its generator: surrogate trains on it with no edit."""

from __future__ import annotations

import numpy as np

from pde_data import problems
from pde_data.problems import Problem
from surrogate import config
from surrogate.train import QUIET, train
from surrogate_stores import make_store


def test_a_registered_family_trains_and_predicts(tmp_path, monkeypatch):
    monkeypatch.setitem(problems.PROBLEMS, "heat", Problem(
        "nowhere:Heat", inputs=("source",), grid_channels=("x", "y"),
        targets={"T": ("T",), "T+mean": ("T", "mean")}))
    rng = np.random.default_rng(0)
    n, count = 6, 20
    source = rng.normal(size=(count, n, n)).astype(np.float32)
    temperature = np.cumsum(source, axis=2).astype(np.float32)
    t = np.linspace(0, 1, n)
    path = make_store(tmp_path / "heat.zarr", "heat",
                      {"source": source, "T": temperature, "mean": temperature.mean(axis=(1, 2)).astype(np.float64)},
                      np.meshgrid(t, t), np.ones(count, bool), seed=0, chunk=4)
    cfg = config.resolve({"data": {"target": {"heat": "T+mean"}}}, problem="heat", model="cnn", trainer="fas",
                         overrides=["train.budget_wu=8", "train.batch_size=4", "train.eval_every_wu=4",
                                    "train.device=cpu", "models.heat.cnn.conv=[[4, 3, 1]]", "models.heat.cnn.fc=[8]"])
    summary = train(cfg, path, tmp_path / "m", reporting=QUIET)
    assert summary["problem"] == "heat" and np.isfinite(summary["best"]["mse"])
    import surrogate

    pred = surrogate.load(tmp_path / "m").predict(source[:2])
    assert pred["T"].shape == (2, n, n) and pred["mean"].shape == (2,)
