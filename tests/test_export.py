"""surrogate export: model.safetensors + config.json + model card; loading an export; what is refused."""

from __future__ import annotations

import json
import pickle
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

import surrogate
from surrogate import config
from surrogate.cli import main as cli_main
from surrogate.evaluate import evaluate
from surrogate.export import CARD, CONFIG, WEIGHTS, export
from surrogate.io import ModelFileError
from surrogate.train import QUIET, train
from surrogate_stores import make_darcy_store, make_poisson_store

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PARAMS = {
    "data": {"split": {"train": 0.6, "val": 0.2, "test": 0.2}},
    "models": {"poisson": {"mlp": {"hidden": [8, 8]}},
               "darcy": {"cnn": {"conv": [[4, 3, 2], [4, 3, 1]], "fc": [8]},
                         "unet": {"channels": [4, 6], "head": [3]}, "fno": {"modes": 3, "width": 4, "layers": 2}}},
    "train": {"budget_wu": 8, "batch_size": 6, "eval_every_wu": 4, "eval_train_samples": 0, "device": "cpu",
              "fas": {"levels": 2, "pre": 2, "coarse": 2, "post": 2}},
}
#: (problem, model, trainer, Darcy target): every network kind; Poisson has grid channels, Darcy Q+p two targets.
RUNS = {"poisson-mlp": ("poisson", "mlp", "fas", "p"), "darcy-cnn": ("darcy", "cnn", "adamw", "Q+p"),
        "darcy-unet": ("darcy", "unet", "adamw", "p"), "darcy-fno": ("darcy", "fno", "adamw", "p")}
HOLD_LOCK = ("import sys, time; from pde_data.lock import writer_lock; writer_lock(sys.argv[1], sys.argv[2]); "
             "print('held', flush=True); time.sleep(60)")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """{name: (model directory, store, evaluate --out file)} of tiny trained models."""
    d = tmp_path_factory.mktemp("export-models")
    stores = {"poisson": make_poisson_store(d / "p.zarr", n_samples=30, n=8, chunk=4),
              "darcy": make_darcy_store(d / "d.zarr", n_samples=30, n=8, chunk=4)}
    out = {}
    for name, (problem, model, trainer, target) in RUNS.items():
        cfg = config.resolve(PARAMS, problem=problem, model=model, trainer=trainer,
                             overrides=[f"data.target.darcy={target}"])
        train(cfg, stores[problem], d / name, reporting=QUIET)
        evaluate(d / name, stores[problem], d / f"{name}.json")
        out[name] = (d / name, stores[problem], d / f"{name}.json")
    return out


@pytest.fixture()
def exported(trained, tmp_path):
    model_dir, _, metrics = trained["darcy-cnn"]
    return export(model_dir, tmp_path / "export", metrics=metrics)


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def inputs(model, count=5):
    n, chans = model.layout.n, model.layout.channels
    return np.random.default_rng(0).normal(size=(count, len(chans), n, n) if len(chans) > 1 else (count, n, n))


@pytest.mark.parametrize("name", list(RUNS))
def test_round_trip_gives_identical_predictions(trained, tmp_path, name):
    model_dir, _, metrics = trained[name]
    out = export(model_dir, tmp_path / "e", metrics=metrics)
    assert sorted(p.name for p in out.iterdir()) == sorted([WEIGHTS, CONFIG, CARD])
    torch_model, exported_model = surrogate.load(model_dir), surrogate.load(out)
    for x in (inputs(torch_model), inputs(torch_model, 1)[0]):
        a, b = torch_model.predict(x), exported_model.predict(x)
        for key in a if isinstance(a, dict) else [None]:
            np.testing.assert_array_equal(a[key] if key else a, b[key] if key else b)
    assert exported_model.store_fingerprint == torch_model.store_fingerprint
    assert surrogate.load(out / WEIGHTS).arch == surrogate.load(out / CONFIG).arch == torch_model.arch


def test_config_and_card_hold_what_a_user_needs(trained, exported):
    cfg = json.loads((exported / CONFIG).read_text())
    model_dir, _, metrics = trained["darcy-cnn"]
    assert cfg["format"] == "pde-surrogate-export" and cfg["arch"]["kind"] == "cnn"
    assert cfg["store"]["fingerprint"] == surrogate.load(model_dir).store_fingerprint
    assert cfg["training"]["elapsed_s"] > 0 and cfg["normalization"]["enabled"]
    meta = json.loads(metrics.with_suffix(".meta.json").read_text())
    assert cfg["evaluation"]["fine"] == meta["fine"]
    card = (exported / CARD).read_text()
    assert card.startswith("---\nlibrary_name: pde-surrogate\n")
    for section in ("## Data", "## Training", "## Test metrics", "## Intended use and limits", "## Reproduce"):
        assert section in card
    rel_l2 = meta["fine"]["Q"]["rel_l2"]
    assert re.search(rf"\| Q \| [^\n]*\| {rel_l2:.4g} \|", card)   # the table carries relative L2
    block = re.search(r"```yaml\n(.*?)```", card, re.DOTALL).group(1)   # the card's params.yaml reproduces the run
    params = yaml.safe_load(block)
    run = config.resolve({k: v for k, v in params.items() if k != "darcy"}, problem="darcy", model="cnn",
                         trainer="adamw")
    assert run.to_dict() == cfg["config"]
    assert params["darcy"]["seed"] == cfg["store"]["seed"] and params["darcy"]["samples"] == 30


def test_every_command_that_takes_a_model_reads_an_export(trained, exported, tmp_path, capsys):
    _, store, metrics = trained["darcy-cnn"]
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(PARAMS))
    assert cli_main(["evaluate", "--model-dir", str(exported), "--store", str(store), "--out",
                     str(tmp_path / "ev.json"), "--params", str(params)]) == 0
    again = json.loads((tmp_path / "ev.meta.json").read_text())
    assert again["fine"] == json.loads(metrics.with_suffix(".meta.json").read_text())["fine"]
    capsys.readouterr()
    assert cli_main(["export", str(trained["darcy-cnn"][0]), "--out", str(tmp_path / "cli")]) == 0
    assert "## Test metrics\n\nNot evaluated" in (tmp_path / "cli" / CARD).read_text()


def tamper(folder, change):
    cfg = json.loads((folder / CONFIG).read_text())
    change(cfg)
    (folder / CONFIG).write_text(json.dumps(cfg))


@pytest.mark.parametrize("change, message", [
    (lambda c: c["arch"].update(fc=[9]), r"model.safetensors does not fit the network config.json describes "
                                         r"\(parameter 'layers.2.bias': described \(9,\), stored \(8,\)\)"),
    (lambda c: c["arch"].update(conv=[[4, 3, 2]] * 400, fc=[2**30]), r"does not fit .* layers described"),
    (lambda c: c["weights"].update(sha256="0" * 64), r"its sha256 is not the one config.json records"),
    (lambda c: c.update(format="something"), r"not the config of a pde-surrogate export"),
    (lambda c: c.pop("normalization"), r"is damaged: it has no normalization"),
    (lambda c: c["layout"].update(n="eight"), r"config.json is incomplete or inconsistent"),
])
def test_a_tampered_config_is_refused_in_one_line(exported, tmp_path, capsys, change, message):
    tamper(exported, change)
    with pytest.raises(ModelFileError, match=message):
        surrogate.load(exported)
    assert cli_main(["evaluate", "--model-dir", str(exported), "--store", str(tmp_path / "none.zarr"),
                     "--out", str(tmp_path / "x.json")]) == 2
    assert re.search(message, one_line(capsys.readouterr().err))


class Payload:
    """Pickles to a call that leaves a marker file: proof that something was executed."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("payload", ["pickle", "torch", "truncated"])
def test_weights_that_are_not_safetensors_are_refused_and_never_run(exported, tmp_path, payload):
    marker = tmp_path / "executed"
    weights = exported / WEIGHTS
    if payload == "pickle":
        weights.write_bytes(pickle.dumps({"fc.0.weight": Payload(marker)}, protocol=2))
    elif payload == "torch":
        torch.save({"x": Payload(marker)}, weights)
    else:
        weights.write_bytes(weights.read_bytes()[:40])
    kind = {"pickle": "a pickle one", "torch": "a zip archive", "truncated": "truncated or another format"}[payload]
    with pytest.raises(ModelFileError, match=f"is not a safetensors file \\({kind}") as err:
        surrogate.load(exported)
    assert "\n" not in str(err.value) and not marker.exists()


def test_a_pickle_file_dropped_into_an_export_is_refused(trained, exported):
    shutil.copy(trained["darcy-cnn"][0] / "best.pt", exported / "best.pt")
    with pytest.raises(ModelFileError, match=r"also holds best.pt: pickle-based files, which an export never holds"):
        surrogate.load(exported)
    assert surrogate.load(exported / "best.pt").arch["kind"] == "cnn"   # by its own path it is a model file


def test_export_errors_are_one_line_and_overwrite_nothing(trained, exported, tmp_path, capsys):
    model_dir, _, _ = trained["darcy-cnn"]
    empty = tmp_path / "empty"
    empty.mkdir()
    before = snapshot(exported)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    poisson_metrics = trained["poisson-mlp"][2]
    (tmp_path / "list.meta.json").write_text("[]")
    cases = [([str(empty), "--out", str(tmp_path / "new")], "has no best.pt"),
             ([str(tmp_path / "missing"), "--out", str(tmp_path / "new")], "does not exist"),
             ([str(model_dir), "--out", str(other)], "holds other files"),
             ([str(model_dir), "--out", str(exported)], "holds an earlier export; pass --overwrite"),
             ([str(model_dir), "--out", str(exported), "--overwrite", "--metrics", str(poisson_metrics)],
              "evaluates another model"),
             ([str(model_dir), "--out", str(exported), "--overwrite", "--metrics", str(tmp_path / "no.json")],
              "no.meta.json does not exist"),
             ([str(model_dir), "--out", str(exported), "--overwrite", "--metrics", str(tmp_path / "list.meta.json")],
              "is not the output of `surrogate evaluate`")]
    for args, message in cases:
        assert cli_main(["export", *args]) == 2
        assert message in one_line(capsys.readouterr().err)
        assert not (tmp_path / "new").exists() and snapshot(exported) == before
        assert (other / "notes.txt").read_text() == "mine" and len(list(other.iterdir())) == 1
    assert not list(tmp_path.glob(".*exporting*"))
    assert cli_main(["export", str(model_dir), "--out", str(exported), "--overwrite"]) == 0
    assert "Not evaluated" in (exported / CARD).read_text()


def test_a_model_directory_still_being_written_is_refused(trained, tmp_path, capsys):
    model_dir = trained["darcy-cnn"][0]
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(model_dir), "model directory"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        assert cli_main(["export", str(model_dir), "--out", str(tmp_path / "e")]) == 2
        assert "is still being written (pid" in one_line(capsys.readouterr().err)
        assert not (tmp_path / "e").exists()
    finally:
        holder.kill()
        holder.wait()
    assert cli_main(["export", str(model_dir), "--out", str(tmp_path / "e")]) == 0
