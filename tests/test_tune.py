"""surrogate tune: a search on a narrow proxy of the network that resumes, counts its cost and transfers."""

from __future__ import annotations

import json

import pytest
import yaml

from surrogate import config
from surrogate.cli import main as cli_main
from surrogate.io import read_model_file
from surrogate.tune import proxy_run, tune
from surrogate_stores import make_poisson_store

pytest.importorskip("optuna")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

PARAMS = {
    "data": {"split": {"train": 0.6, "val": 0.2, "test": 0.2}},
    "models": {"poisson": {"mlp": {"hidden": [32, 32]}}},
    "train": {"trainer": "adamw", "parametrization": "mup", "budget_wu": 12, "batch_size": 8, "eval_every_wu": 4,
              "device": "cpu", "eval_train_samples": 0},
    "tune": {"trials": 3, "startup": 2, "seeds": 2, "level": 1},
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_poisson_store(tmp_path_factory.mktemp("tune") / "p.zarr", n_samples=40, n=8, chunk=8)


def _load(*overrides):
    params = config.load(PARAMS, list(overrides))
    return params.run("poisson", "mlp"), params.tune


def test_a_search_resumes_counts_its_cost_and_trains_the_full_width(store, tmp_path, capsys):
    cfg, tune_cfg = _load()
    record = tune(cfg, tune_cfg, store, tmp_path / "t", progress=False)
    assert len(record["trials"]) == 3 and {t["number"] for t in record["trials"]} == {0, 1, 2}
    assert all(0 < t["cost_runs"] < 2 for t in record["trials"])   # two seeds of a proxy cheaper than the full net
    assert record["search"]["cost_runs"] == pytest.approx(sum(t["cost_runs"] for t in record["trials"]))
    best = record["best"]["values"]["lr"]
    assert read_model_file(tmp_path / "t" / "model" / "best.pt")[1]["train"]["lr"] == pytest.approx(best)
    again = tune(cfg, tune_cfg, store, tmp_path / "t", final=False, progress=False)   # nothing left to do
    assert again["trials"] == record["trials"] and again["best"] == record["best"]
    more = tune(cfg, config.TuneConfig(**{**tune_cfg.to_dict(), "trials": 4}), store, tmp_path / "t", final=False,
                progress=False)
    assert [t["number"] for t in more["trials"]] == [0, 1, 2, 3]
    assert "tuned lr = " in capsys.readouterr().err


def test_a_budget_in_full_width_runs_stops_the_search(store, tmp_path):
    cfg, tune_cfg = _load("tune.trials=50", "tune.budget=1.5")
    record = tune(cfg, tune_cfg, store, tmp_path / "t", final=False, progress=False)
    assert 1.5 <= record["search"]["cost_runs"] < 1.5 + record["trials"][0]["cost_runs"] + 1e-9
    assert len(record["trials"]) < 50


def test_the_proxy_is_a_coarse_level_of_the_full_network(store):
    from surrogate.dataset import load_dataset

    cfg, _ = _load()
    data = load_dataset(store, data=cfg.data, flat=True)
    full, proxy = proxy_run(cfg, data, 0, "cpu"), proxy_run(cfg, data, 1, "cpu")
    assert full["cost_runs"] == pytest.approx(1.0)
    assert 0.2 < proxy["cost_runs"] < 0.9


@pytest.mark.parametrize("override, message", [
    ("train.parametrization=standard", "tune.level: 1 needs train.parametrization mup"),
    ("tune.level=9", "tune.level: 9 is not allowed for this network"),
    ("tune.space={trainer: [1, 2]}", "tune.space.trainer: not a numeric train key"),
])
def test_a_search_the_hierarchy_cannot_run_is_one_line(store, tmp_path, capsys, override, message):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(PARAMS))
    rc = cli_main(["tune", "--problem", "poisson", "--store", str(store), "--out", str(tmp_path / "t"),
                   "--params", str(params), "-S", override, "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "t" / "tune.json").exists()
    assert json.dumps(PARAMS)   # the params file was not touched
