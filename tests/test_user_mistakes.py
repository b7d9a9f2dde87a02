"""A user's mistake costs nothing: one-line errors, no lost model files, no silent overlap (surrogate side)."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from surrogate.cli import main as cli_main
from surrogate.evaluate import OverlapWarning, evaluate
from surrogate.io import ModelFileError, atomic_save, load, read_model_file
from surrogate.train import QUIET, ResumeError, train
from surrogate_stores import PARAMS, cfg_for, make_poisson_store

MODEL_FILES = ("best.pt", "final.pt", "aux_best.pt", "aux_final.pt")


@pytest.fixture()
def trained_dir(stores, tmp_path):
    out = tmp_path / "m"
    train(cfg_for("poisson"), stores["poisson"], out, reporting=QUIET)
    return out


def _snapshot(out):
    return {name: (out / name).read_bytes() for name in MODEL_FILES}


def _cli(args, params, capsys):
    rc = cli_main([*args, "--params", str(params)])
    return rc, capsys.readouterr().err


@pytest.fixture()
def params(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(PARAMS))
    return path


def test_a_bad_store_or_a_divergence_keeps_the_previous_model(stores, trained_dir, params, tmp_path, capsys):
    before = _snapshot(trained_dir)
    base = ["train", "--problem", "poisson", "--out", str(trained_dir), "--no-progress"]
    rc, err = _cli([*base, "--store", str(tmp_path / "typo.zarr")], params, capsys)
    assert rc == 2 and "does not exist" in err and len(err.strip().splitlines()) == 1
    # finite divergence (the loss explodes without becoming NaN): Adam at lr 100
    rc, err = _cli([*base, "--store", str(stores["poisson"]), "--trainer", "adam", "-S", "train.lr=100",
                    "-S", "train.budget_wu=40"], params, capsys)
    assert rc == 3 and "grew to" in err and "times its value before training" in err
    assert _snapshot(trained_dir) == before


def test_a_new_run_replaces_the_old_files_only_at_its_end(stores, trained_dir):
    train(cfg_for("poisson", trainer="sgd"), stores["poisson"], trained_dir, reporting=QUIET)
    assert (trained_dir / "best.pt").exists() and not (trained_dir / "aux_best.pt").exists()
    assert read_model_file(trained_dir / "best.pt")[1]["train"]["trainer"] == "sgd"


def test_unwritable_outputs_fail_before_the_work(stores, trained_dir, params, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    rc, err = _cli(["train", "--problem", "poisson", "--store", str(stores["poisson"]), "--out",
                    str(blocker / "m")], params, capsys)
    assert rc == 2 and "--out" in err and "cannot write there" in err
    rc, err = _cli(["evaluate", "--model-dir", str(trained_dir), "--store", str(stores["poisson"]), "--out",
                    str(blocker / "m.json")], params, capsys)
    assert rc == 2 and "--out" in err and "cannot write there" in err
    rc, err = _cli(["mc", "--model", str(trained_dir), "--out", str(blocker / "mc.json")], params, capsys)
    assert rc == 2 and "--out" in err and "cannot write there" in err


def test_evaluate_refuses_the_models_own_training_samples(stores, trained_dir, tmp_path):
    # the same generator stream (problem, parameters, seed) with fewer samples: its test block lies
    # inside the model's training block
    same_stream = make_poisson_store(tmp_path / "again.zarr", n_samples=10, n=8, chunk=4)
    with pytest.raises(Exception, match="test samples of store .* are training samples of the model"):
        evaluate(trained_dir, same_stream)
    with pytest.warns(OverlapWarning, match="NOT held-out"):
        evaluate(trained_dir, same_stream, allow_overlap=True)
    other_seed = make_poisson_store(tmp_path / "other.zarr", n_samples=10, n=8, chunk=4, seed=5)
    evaluate(trained_dir, other_seed)  # another stream: fine


def test_physical_parameters_that_differ_are_warned(stores, trained_dir, tmp_path):
    import zarr

    path = make_poisson_store(tmp_path / "other.zarr", n_samples=10, n=8, chunk=4, seed=5)
    group = zarr.open_group(path, mode="r+")
    rec = dict(group.attrs["pde_data"])
    rec["params"] = {**rec["params"], "f_amplitude": 64.0}
    group.attrs["pde_data"] = rec
    with pytest.warns(OverlapWarning, match="other physical parameters.*f_amplitude"):
        evaluate(trained_dir, path)


def test_a_file_claiming_a_huge_network_is_refused_before_allocating(trained_dir, tmp_path):
    state, meta = read_model_file(trained_dir / "best.pt")
    meta["arch"] = {"kind": "mlp", "widths": [192] + [2048] * 2000 + [64]}
    atomic_save({"format": "pde-surrogate-model", "schema": 1, "state_dict": state, "meta": meta},
                tmp_path / "bomb.pt")
    with pytest.raises(ModelFileError, match="2001 layers described, 6 tensors stored"):
        load(tmp_path / "bomb.pt")
    # right layer count, wrong widths: compared on the meta device, still nothing allocated
    meta["arch"] = {"kind": "mlp", "widths": [192, 2048, 2048, 64]}
    atomic_save({"format": "pde-surrogate-model", "schema": 1, "state_dict": state, "meta": meta},
                tmp_path / "bomb2.pt")
    with pytest.raises(ModelFileError, match="parameter 'layers.0.bias'"):
        load(tmp_path / "bomb2.pt")


def test_damaged_metadata_and_checkpoints_get_one_line(stores, trained_dir, tmp_path):
    state, meta = read_model_file(trained_dir / "best.pt")
    meta["normalization"] = {"enabled": True}
    atomic_save({"format": "pde-surrogate-model", "schema": 1, "state_dict": state, "meta": meta},
                tmp_path / "bad.pt")
    with pytest.raises(ModelFileError, match="is damaged"):
        load(tmp_path / "bad.pt")
    ck = torch.load(trained_dir / "checkpoint.pt", weights_only=True)
    ck["trainer"] = {"hierarchy": "garbage"}
    torch.save(ck, trained_dir / "checkpoint.pt")
    (trained_dir / ".checkpoint.pt.tmp-4242").write_bytes(b"left by a kill -9")
    with pytest.raises(ResumeError, match="checkpoint.pt is damaged"):
        train(cfg_for("poisson"), stores["poisson"], trained_dir, resume=True, reporting=QUIET)


def test_leftovers_of_a_killed_run_are_cleaned(stores, trained_dir):
    for name in (".checkpoint.pt.tmp-4242", ".final.pt.tmp-4243"):
        (trained_dir / name).write_bytes(b"left by a kill -9")
    train(cfg_for("poisson", overrides=["train.budget_wu=20"]), stores["poisson"], trained_dir, resume=True,
          reporting=QUIET)
    assert not list(trained_dir.glob(".*.tmp-*"))
    assert json.loads((trained_dir / "train_summary.json").read_text())["work_units"] >= 20


def test_training_refuses_a_missing_chunk_by_name(tmp_path, params, capsys):
    import shutil

    store = make_poisson_store(tmp_path / "p.zarr", n_samples=30, n=8, chunk=4)
    shutil.rmtree(store / "u" / "c" / "1")   # chunk 1 of u (samples 4-7), marked done
    rc, err = _cli(["train", "--problem", "poisson", "--store", str(store), "--out", str(tmp_path / "m")], params,
                   capsys)
    assert rc == 2 and "array 'u'" in err and "chunk 1" in err and "pde-data verify" in err
    assert len(err.strip().splitlines()) == 1
