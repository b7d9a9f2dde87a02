"""surrogate.config and surrogate.dataset on tiny synthetic stores (no DOLFINx)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from params import ConfigError, replace
from pde_data.store import StoreError, StoreReader
from surrogate import config
from surrogate.config import DataConfig, SplitConfig
from surrogate.dataset import load_dataset, open_store
from surrogate_stores import make_darcy_store, make_poisson_store

ROOT = Path(__file__).resolve().parents[1]
DATA = DataConfig.from_mapping({"split": {"train": 0.5, "val": 0.25, "test": 0.25}, "memory_budget_mb": 64.0,
                                "allow_incomplete": False, "normalize": True, "target": {"darcy": "Q"},
                                "eval_batch_size": 7})


@pytest.fixture(scope="module")
def poisson_store(tmp_path_factory):
    return make_poisson_store(tmp_path_factory.mktemp("s") / "p.zarr", n_samples=20, n=8, chunk=3)


@pytest.fixture(scope="module")
def darcy_store(tmp_path_factory):
    return make_darcy_store(tmp_path_factory.mktemp("s") / "d.zarr", n_samples=20, n=8, chunk=3)


# ----------------------------------------------------------------------------- config
def test_repo_params_validate():
    for problem in ("poisson", "darcy"):
        for model in ("mlp", "cnn"):
            for trainer in ("sgd", "adam", "fas"):
                cfg = config.resolve(ROOT / "params.yaml", problem=problem, model=model, trainer=trainer)
                assert cfg.model.KIND == model
                assert cfg.train.levels == (1 if trainer != "fas" else cfg.train.fas.levels)
    darcy = yaml.safe_load((ROOT / "params.yaml").read_text())["train"]["by_problem"]["darcy"]["weight_decay"]
    assert config.resolve(ROOT / "params.yaml", problem="darcy").train.weight_decay == darcy   # the problem's wins


@pytest.mark.parametrize("override, words", [
    ("train.lr=-1", ["train.lr", "-1", "> 0"]),
    ("train.lrr=1", ["unknown key", "train.lrr", "lr"]),
    ("train.fas.cycle=X", ["train.fas.cycle", "'X'", "V"]),
    ("train.device=gpu", ["train.device", "'gpu'", "cuda"]),
    ("train.trainer=lbfgs", ["train.trainer", "'lbfgs'", "fas"]),
    ("data.split={train: 0.5, val: 0.1, test: 0.1}", ["data.split", "add up to 1"]),
    ("models.poisson.cnn.conv=[[1, 2]]", ["models.poisson.cnn.conv", "[channels, kernel, stride]"]),
    ("models.darcy.mlp.hidden=[]", ["models.darcy.mlp.hidden", "positive integers"]),
    ("train.batch_size=0", ["train.batch_size", "0", ">= 1"]),
    ("train.by_problem.darcy.fas.gammma=1", ["train.by_problem.darcy.fas.gammma", "gamma"]),
    ("train.fas.gamma=2", ["train.fas.gamma", "2", "<= 1"]),
    ("data.allow_incomplete=maybe", ["data.allow_incomplete", "true or false"]),
    ("trainx.lr=1", ["trainx.lr", "data, models, train"]),
    ("data.target.darcy=u", ["data.target.darcy", "'u'", "Q+p"]),
])
def test_bad_values_name_key_value_and_allowed(override, words):
    with pytest.raises(ConfigError) as err:
        config.resolve({}, problem="poisson", overrides=[override])
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_overrides_and_by_problem():
    cfg = config.resolve({"train": {"by_problem": {"darcy": {"fas": {"pre": 2, "rematch_every": 10}}}}},
                         problem="darcy", trainer="fas", overrides=["train.weight_decay=1e-6", "train.fas.levels=3"])
    assert cfg.train.weight_decay == 1e-6  # '1e-6' is a str for PyYAML; accepted as a number
    assert cfg.train.fas.pre == 2 and cfg.train.fas.rematch_every == 10
    assert cfg.train.fas.levels == 3
    raw = {"train": {"lr": 0.01, "by_trainer": {"adam": {"lr": 0.001}}, "by_problem": {"darcy": {"trainer": "adam"}}}}
    assert config.resolve(raw, problem="poisson", trainer="adam").train.lr == 0.001
    assert config.resolve(raw, problem="poisson", trainer="sgd").train.lr == 0.01
    assert config.resolve(raw, problem="darcy").train.lr == 0.001   # the problem's trainer, then its overrides
    with pytest.raises(ConfigError, match="train.by_trainer.adam.lrr: unknown key"):
        config.resolve({"train": {"by_trainer": {"adam": {"lrr": 1}}}}, problem="poisson")
    with pytest.raises(ConfigError, match="fas trainer needs levels >= 2"):
        config.resolve({}, problem="poisson", trainer="fas", overrides=["train.fas.levels=1"])
    with pytest.raises(ConfigError, match="--params: .*params.yaml does not exist"):
        config.resolve("/nonexistent/params.yaml", problem="poisson")


# ----------------------------------------------------------------------------- data
def test_poisson_shapes_split_and_normalisation(poisson_store):
    ds = load_dataset(poisson_store, data=DATA, flat=True, splits=("train", "val", "test"))
    n = 8
    assert ds.layout.in_shape == (3, n, n) and ds.layout.out_dim == n * n
    assert list(ds.split_index["train"]) == list(range(10))
    assert list(ds.split_index["val"]) == list(range(10, 15))
    assert list(ds.split_index["test"]) == list(range(15, 20))
    tr = ds["train"]
    assert isinstance(tr.X, torch.Tensor) and tr.X.shape == (10, 3 * n * n) and tr.Y.shape == (10, n * n)
    assert tr.X.dtype == torch.float32
    # statistics from the training split only
    st = open_store(poisson_store)
    kappa = st.array("kappa")[0:10].astype(np.float64)
    u = st.array("u")[0:10].astype(np.float64)
    norm = ds.codec.norm
    assert np.allclose(norm["inputs"]["kappa"], [kappa.mean(), kappa.std()])
    assert np.allclose(norm["targets"]["u"], [u.mean(), u.std()])
    # encoded training data are standardised; the channels are (kappa, x, y)
    X = tr.X.reshape(10, 3, n, n).double()
    assert abs(X[:, 0].mean().item()) < 1e-5 and abs(X[:, 0].std(unbiased=False).item() - 1) < 1e-5
    assert torch.allclose(X[0, 1] * norm["inputs"]["x"][1] + norm["inputs"]["x"][0],
                          torch.linspace(0, 1, n).double().expand(n, n), atol=1e-6)
    assert torch.allclose(X[0, 2] * norm["inputs"]["y"][1] + norm["inputs"]["y"][0],
                          torch.linspace(0, 1, n).double()[:, None].expand(n, n), atol=1e-6)
    # decoding gives physical units back
    assert np.allclose(ds.codec.decode_vector(ds["test"].Y), st.array("u")[15:20].reshape(5, -1), atol=1e-5)
    cnn = load_dataset(poisson_store, data=DATA, flat=False)
    assert cnn["train"].X.shape == (10, 3, n, n)


def test_streamed_equals_loaded_and_budget(poisson_store):
    loaded = load_dataset(poisson_store, data=DATA, flat=False)
    tiny = replace(DATA, memory_budget_mb=0.001)
    streamed = load_dataset(poisson_store, data=tiny, flat=False)
    assert not loaded.streamed and streamed.streamed
    idx = torch.tensor([7, 0, 3, 3, 9])
    for s in ("train", "val"):
        i = idx[idx < len(loaded[s])]
        assert torch.equal(loaded[s].X[i], streamed[s].X[i])
        assert torch.equal(loaded[s].Y[i], streamed[s].Y[i])
        assert streamed[s].X.shape == loaded[s].X.shape
    assert torch.equal(loaded["val"].X[1:4], streamed["val"].X[1:4])


def test_darcy_targets(darcy_store):
    n = 8
    q = load_dataset(darcy_store, data=DATA, flat=True)
    assert q["train"].X.shape == (10, n * n) and q["train"].Y.shape == (10, 1)
    assert q.layout.in_shape == (1, n, n)
    p = load_dataset(darcy_store, data=replace(DATA, target={"darcy": "p"}), flat=False)
    assert p["train"].X.shape == (10, 1, n, n) and p["train"].Y.shape == (10, n * n)
    both = load_dataset(darcy_store, data=replace(DATA, target={"darcy": "Q+p"}), flat=False)
    assert both["train"].Y.shape == (10, 1 + n * n)
    st = open_store(darcy_store)
    parts = both.codec.split_targets(both.codec.decode_vector(both["train"].Y))
    assert np.allclose(parts["Q"], st.array("Q")[0:10], atol=1e-5)
    assert np.allclose(parts["p"], st.array("p")[0:10], atol=1e-5)


def test_reads_only_the_arrays_it_uses(tmp_path, monkeypatch):
    ps = make_poisson_store(tmp_path / "p.zarr", n_samples=12, n=6, chunk=4)
    ds_ = make_darcy_store(tmp_path / "d.zarr", n_samples=12, n=6, chunk=4)
    seen = []
    orig = StoreReader.array

    def spy(self, name):
        seen.append(name)
        return orig(self, name)

    monkeypatch.setattr(StoreReader, "array", spy)
    load_dataset(ps, data=DATA, flat=True, splits=("train", "val", "test"))
    assert set(seen) <= {"kappa", "u"}
    seen.clear()
    load_dataset(ds_, data=DATA, flat=True, splits=("train", "val", "test"), force_stream=True)["train"].X[
        torch.arange(3)]
    assert set(seen) <= {"log_k", "Q"}
    # an array deleted from disk, even one it does not use, is a corrupt store: refused by name
    shutil.rmtree(ps / "flux")
    monkeypatch.undo()
    with pytest.raises(StoreError, match="corrupt, array 'flux' is missing"):
        load_dataset(ps, data=DATA, flat=True)


def test_incomplete_store(tmp_path):
    path = make_poisson_store(tmp_path / "p.zarr", n_samples=12, n=6, chunk=4, missing=(2, 7))
    with pytest.raises(StoreError, match="2 of 12 samples not marked done.*allow_incomplete"):
        load_dataset(path, data=DATA, flat=True)
    ds = load_dataset(path, data=replace(DATA, allow_incomplete=True), flat=True, splits=("train", "val", "test"))
    assert list(ds.split_index["train"]) == [0, 1, 3, 4, 5]   # 2 missing; split bounds do not move
    assert list(ds.split_index["val"]) == [6, 8]
    assert list(ds.split_index["test"]) == [9, 10, 11]


def test_bad_stores(tmp_path, poisson_store, darcy_store):
    with pytest.raises(StoreError, match="does not exist"):
        open_store(tmp_path / "nope.zarr")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="not a"):
        open_store(tmp_path / "empty")
    with pytest.raises(StoreError, match="holds 'darcy' samples, not 'poisson'"):
        open_store(darcy_store, "poisson")
    with pytest.raises(StoreError, match="the 'val' split has no finished samples"):
        load_dataset(poisson_store, data=replace(DATA, split=SplitConfig(train=0.97, val=0.02, test=0.01)),
                     flat=True)


def test_reads_a_store_written_by_pde_data(tmp_path):
    """The layout written by pde_data.store (no solver needed: a fake family)."""
    store_mod = pytest.importorskip("pde_data.store")
    n, N, chunk = 5, 9, 4

    class Fake:
        name, schema_version = "darcy", 1

        def __init__(self):
            self.params = {"n": n}
            self.mesh = {"cells": [n, n]}
            self.sample_arrays = {"log_k": ((n, n), "float32"), "p": ((n, n), "float32"),
                                  "Q": ((), "float64"), "Q_in": ((), "float64")}

        def store_arrays(self):
            t = (np.arange(n) + 0.5) / n
            x, y = np.meshgrid(t, t)
            return {"x": x.astype(np.float32), "y": y.astype(np.float32)}

    fam = Fake()
    rec = store_mod.record(fam, {"samples": N, "chunk": chunk, "seed": 0}, {"test": "1"})
    path = tmp_path / "d.zarr"
    store_mod.prepare(path, fam, rec)
    import zarr

    from pde_data.chunks import writable, write_chunk

    targets = writable(zarr.open_group(path, mode="r+"), [*fam.sample_arrays, "done"])
    rng = np.random.default_rng(0)
    for k in (0, 1):   # chunk 2 (sample 8) stays unfinished; data, manifest row, then done (the store's protocol)
        a, b = k * chunk, min((k + 1) * chunk, N)
        write_chunk(targets, a, {"log_k": rng.normal(size=(b - a, n, n)), "p": rng.random((b - a, n, n)),
                                 "Q": rng.random(b - a), "Q_in": rng.random(b - a)})
    with pytest.raises(StoreError, match="1 of 9 samples not marked done"):
        load_dataset(path, data=DATA, flat=True)
    ds = load_dataset(path, data=replace(DATA, allow_incomplete=True), flat=True)
    assert ds.store.problem == "darcy" and ds.layout.n == n
    assert len(ds["train"]) == 4 and ds["train"].Y.shape == (4, 1)


def test_mc_reads_only_its_own_section():
    """A bad key elsewhere (here train) does not stop ``surrogate mc``; a bad mc key does."""
    cfg = config.resolve_mc({"train": {"lrr": 1}, "mc": {"n": 50, "fem_n": 10}}, n=60)
    assert cfg.n == 60 and cfg.fem_n == 10
    with pytest.raises(ConfigError, match="mc.nn: unknown key"):
        config.resolve_mc({"mc": {"nn": 5}})
