"""surrogate evaluate, surrogate.load and the safety of model files."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch

import surrogate
from surrogate import config
from surrogate.cli import main as cli_main
from surrogate.dataset import open_store
from surrogate.evaluate import FLAT_KEYS, METRIC_DEFINITIONS, evaluate
from surrogate.io import ModelFileError
from surrogate.metrics import KEYS, errors
from surrogate.train import QUIET, train
from surrogate_stores import make_darcy_store, make_poisson_store

PARAMS = {
    "data": {"split": {"train": 0.6, "val": 0.2, "test": 0.2}},
    "models": {"poisson": {"mlp": {"hidden": [8, 8]}, "cnn": {"conv": [[4, 3, 2], [4, 3, 1]], "fc": [8]}},
               "darcy": {"mlp": {"hidden": [8, 8]}, "cnn": {"conv": [[4, 3, 2], [4, 3, 1]], "fc": [8]}}},
    "train": {"budget_wu": 16, "batch_size": 6, "eval_every_wu": 4, "eval_train_samples": 0, "device": "cpu",
              "fas": {"levels": 2, "pre": 2, "coarse": 2, "post": 2}},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    out = {}
    for problem, model, target, make in (("poisson", "mlp", "Q", make_poisson_store),
                                         ("darcy", "cnn", "Q+p", make_darcy_store)):
        store = make(d / f"{problem}.zarr", n_samples=30, n=8, chunk=4)
        cfg = config.resolve(PARAMS, problem=problem, model=model, trainer="fas",
                             overrides=[f"data.target.darcy={target}"])
        train(cfg, store, d / problem, reporting=QUIET)
        out[problem] = (d / problem, store)
    return out


def test_evaluate_metrics_and_plots(trained, tmp_path):
    for problem, (model_dir, store) in trained.items():
        res = evaluate(model_dir, store, tmp_path / f"{problem}.json", tmp_path / f"plots-{problem}")
        flat = json.loads((tmp_path / f"{problem}.json").read_text())
        assert set(flat) == {f"test_{k}" for k in FLAT_KEYS} | {"aux_test_mse"}
        saved = json.loads((tmp_path / f"{problem}.meta.json").read_text())
        assert flat["test_mse"] == saved["fine"][saved["targets"][0]]["mse"]
        assert saved["n_test"] == 6 and saved["same_store_as_training"] is True
        targets = ["u"] if problem == "poisson" else ["Q", "p"]
        for key in ("fine", "aux", "fine_final", "aux_final"):
            assert sorted(saved[key]) == sorted(targets)
            for t in targets:
                assert set(saved[key][t]) == set(KEYS) == set(METRIC_DEFINITIONS)
                assert all(np.isfinite(v) for v in saved[key][t].values())
        # metrics are the physical-unit errors of load().predict on the test samples
        st = open_store(store)
        idx = np.arange(24, 30)
        m = surrogate.load(model_dir / "best.pt")
        if problem == "poisson":
            pred = m.predict(st.array("kappa")[24:30])
            ref = errors(pred, st.array("u")[24:30].astype(np.float64))
            assert np.allclose([res["fine"]["u"][k] for k in ref], list(ref.values()), rtol=1e-5)
            assert (tmp_path / "plots-poisson" / "samples.png").stat().st_size > 1000
            assert (tmp_path / "plots-poisson" / "samples_aux.png").exists()
        else:
            pred = m.predict(st.array("log_k")[24:30])
            assert set(pred) == {"Q", "p"} and pred["Q"].shape == (6,) and pred["p"].shape == (6, 8, 8)
            ref = errors(pred["Q"], st.array("Q")[idx])
            assert np.allclose([res["fine"]["Q"][k] for k in ref], list(ref.values()), rtol=1e-5)
            assert (tmp_path / "plots-darcy" / "parity_Q.png").stat().st_size > 1000


def test_cli_evaluate(trained, tmp_path, capsys):
    model_dir, store = trained["darcy"]
    rc = cli_main(["evaluate", "--model-dir", str(model_dir), "--store", str(store),
                   "--out", str(tmp_path / "m.json"), "--params", str(tmp_path / "nope.yaml")])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    rc = cli_main(["evaluate", "--model-dir", str(model_dir), "--store", str(store),
                   "--out", str(tmp_path / "m.json")])
    assert rc == 0 and json.loads((tmp_path / "m.meta.json").read_text())["problem"] == "darcy"
    assert "fine" in capsys.readouterr().out
    rc = cli_main(["evaluate", "--model-dir", str(tmp_path / "none"), "--store", str(store),
                   "--out", str(tmp_path / "m.json")])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    poisson_store = trained["poisson"][1]
    rc = cli_main(["evaluate", "--model-dir", str(model_dir), "--store", str(poisson_store),
                   "--out", str(tmp_path / "m.json")])
    assert rc == 2 and "not 'darcy'" in capsys.readouterr().err


def test_load_predict_physical_units(trained):
    model_dir, store = trained["poisson"]
    m = surrogate.load(model_dir)   # a directory means its best.pt
    assert m.problem == "poisson" and m.meta["selection"] == "best"
    assert m.grid["n"] == 8 and m.normalization["enabled"]
    assert m.model_config == {"kind": "mlp", "hidden": [8, 8]}
    assert m.train_params["trainer"] == "fas" and len(m.store_fingerprint) == 64
    st = open_store(store)
    kappa = st.array("kappa")[0:5].astype(np.float64)
    batch = m.predict(kappa)
    assert batch.shape == (5, 8, 8) and batch.dtype == np.float64
    single = m.predict(kappa[2])
    assert single.shape == (8, 8) and np.allclose(single, batch[2], atol=1e-6)
    # explicit (kappa, x, y) input gives the same
    gx, gy = np.meshgrid(np.linspace(0, 1, 8), np.linspace(0, 1, 8))
    full = np.stack([kappa, np.broadcast_to(gx, kappa.shape), np.broadcast_to(gy, kappa.shape)], axis=1)
    assert np.allclose(m.predict(full), batch, atol=1e-5)
    # physical units: prediction = de-normalised network output of normalised input
    mean_k, std_k = m.normalization["inputs"]["kappa"]
    mean_u, std_u = m.normalization["targets"]["u"]
    z = np.stack([(kappa - mean_k) / std_k,
                  *[(np.broadcast_to(g, kappa.shape) - m.normalization["inputs"][c][0])
                    / m.normalization["inputs"][c][1] for c, g in (("x", gx), ("y", gy))]], axis=1)
    with torch.no_grad():
        raw = m.net(torch.tensor(z.reshape(5, -1), dtype=torch.float32)).numpy().reshape(5, 8, 8)
    assert np.allclose(batch, raw * std_u + mean_u, atol=1e-5)
    aux = surrogate.load(model_dir / "aux_best.pt")
    assert aux.meta["role"] == "aux" and aux.predict(kappa).shape == (5, 8, 8)
    d = surrogate.load(trained["darcy"][0] / "final.pt")
    q = d.predict(np.zeros((8, 8)))
    assert set(q) == {"Q", "p"} and q["Q"].shape == () and q["p"].shape == (8, 8)


def test_wrong_inputs_are_refused(trained):
    m = surrogate.load(trained["poisson"][0])
    with pytest.raises(ValueError, match=r"wrong input shape \(7, 7\); expected kappa of shape \(8, 8\)"):
        m.predict(np.ones((7, 7)))
    with pytest.raises(ValueError, match=r"wrong input shape \(2, 5, 8, 8\)"):
        m.predict(np.ones((2, 5, 8, 8)))
    with pytest.raises(ValueError, match="NaN"):
        m.predict(np.full((8, 8), np.nan))
    with pytest.raises(ValueError, match="numeric"):
        m.predict("kappa")
    d = surrogate.load(trained["darcy"][0])
    with pytest.raises(ValueError, match=r"expected log_k of shape \(8, 8\)"):
        d.predict(np.ones((3, 8)))


def test_bad_files_are_refused(trained, tmp_path):
    good = trained["poisson"][0] / "best.pt"
    # a truncated file
    data = good.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="is truncated or not a surrogate model file"):
        surrogate.load(tmp_path / "trunc.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ModelFileError, match="truncated or not a surrogate"):
        surrogate.load(tmp_path / "empty.pt")
    # another schema
    obj = torch.load(good, weights_only=True)
    obj["schema"] = 99
    torch.save(obj, tmp_path / "schema.pt")
    with pytest.raises(ModelFileError, match="has schema 99; this version of surrogate reads schema 1"):
        surrogate.load(tmp_path / "schema.pt")
    # a checkpoint or any other torch file is not a model
    with pytest.raises(ModelFileError, match="not a surrogate model file"):
        surrogate.load(trained["poisson"][0] / "checkpoint.pt")
    torch.save({"weights": torch.ones(3)}, tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match="not a surrogate model file"):
        surrogate.load(tmp_path / "other.pt")
    # weights that do not fit the metadata
    obj = torch.load(good, weights_only=True)
    obj["meta"]["arch"]["widths"][1] = 5
    torch.save(obj, tmp_path / "mismatch.pt")
    with pytest.raises(ModelFileError, match="weights do not fit"):
        surrogate.load(tmp_path / "mismatch.pt")
    with pytest.raises(ModelFileError, match="does not exist"):
        surrogate.load(tmp_path / "missing.pt")


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvilOpen:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_malicious_pickle_is_not_executed(trained, tmp_path):
    good = torch.load(trained["poisson"][0] / "best.pt", weights_only=True)
    cases = []
    # a raw pickle whose __reduce__ runs a shell command
    m1 = tmp_path / "PWNED1"
    with open(tmp_path / "evil1.pt", "wb") as fh:
        pickle.dump({"format": "pde-surrogate-model", "schema": 1, "payload": _Evil(m1)}, fh)
    cases.append((tmp_path / "evil1.pt", m1))
    # a valid-looking torch zip file with the payload hidden in the metadata
    m2 = tmp_path / "PWNED2"
    good["meta"]["hook"] = _EvilOpen(m2)
    torch.save(good, tmp_path / "evil2.pt")
    cases.append((tmp_path / "evil2.pt", m2))
    for path, marker in cases:
        with pytest.raises(ModelFileError, match="refuses to build.*nothing in it was executed"):
            surrogate.load(path)
        assert not marker.exists()
    with pytest.raises(ModelFileError):
        evaluate(tmp_path, trained["poisson"][1])   # no best.pt
    (tmp_path / "best.pt").write_bytes((tmp_path / "evil1.pt").read_bytes())
    with pytest.raises(ModelFileError, match="refuses"):
        evaluate(tmp_path, trained["poisson"][1])
    assert not m1.exists()


def test_package_import_is_light():
    import subprocess
    import sys

    code = ("import sys, surrogate; light = [m for m in ('torch', 'matplotlib', 'dvclive', 'zarr') "
            "if m in sys.modules]; import surrogate.train, surrogate.evaluate, surrogate.cli; "
            "print(light, [m for m in ('dolfinx', 'matplotlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] []"
