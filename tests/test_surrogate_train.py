"""surrogate.train: every trainer on tiny synthetic stores, resume, divergence, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from surrogate.cli import main as cli_main
from surrogate.io import read_checkpoint, read_model_file
from surrogate.train import QUIET, Reporting, ResumeError, TrainingDiverged, train
from surrogate_stores import PARAMS, cfg_for


def states_equal(a: Path, b: Path) -> bool:
    sa, _ = read_model_file(a)
    sb, _ = read_model_file(b)
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("problem", ["poisson", "darcy"])
@pytest.mark.parametrize("model", ["mlp", "cnn"])
@pytest.mark.parametrize("trainer", ["sgd", "adam", "fas"])
def test_every_trainer_runs(stores, tmp_path, problem, model, trainer):
    out = tmp_path / "m"
    summary = train(cfg_for(problem, model, trainer), stores[problem], out, reporting=QUIET)
    assert summary["work_units"] >= 16
    assert math.isfinite(summary["best"]["mse"]) and math.isfinite(summary["best"]["linf"])
    files = {p.name for p in out.iterdir()}
    assert {"best.pt", "final.pt", "checkpoint.pt", "train_summary.json"} <= files
    assert ({"aux_best.pt", "aux_final.pt"} <= files) == (trainer == "fas")
    _, meta = read_model_file(out / "best.pt")
    assert meta["problem"] == problem and meta["arch"]["kind"] == model and meta["selection"] == "best"
    assert meta["store"]["fingerprint"] and meta["normalization"]["enabled"]
    if trainer == "fas":
        _, aux = read_model_file(out / "aux_best.pt")
        assert aux["role"] == "aux"
        fine_w = meta["arch"].get("widths") or [c[0] for c in meta["arch"]["conv"]]
        aux_w = aux["arch"].get("widths") or [c[0] for c in aux["arch"]["conv"]]
        assert sum(aux_w) < sum(fine_w)   # a coarser network


def test_best_is_the_minimum_and_dvclive_curves(stores, tmp_path):
    out = tmp_path / "m"
    cfg = cfg_for("poisson", overrides=["train.budget_wu=40", "train.eval_every_wu=2"])
    train(cfg, stores["poisson"], out, reporting=Reporting(progress=False, verbose=False))
    ck = read_checkpoint(out / "checkpoint.pt")
    hist = ck["history"]
    best_rec = min(hist, key=lambda r: r["val"]["mse"])
    _, meta = read_model_file(out / "best.pt")
    assert meta["work_units"] == best_rec["work_units"]
    _, aux = read_model_file(out / "aux_best.pt")
    assert aux["work_units"] == min(hist, key=lambda r: r["aux_val"]["mse"])["work_units"]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["best"]["mse"] == best_rec["val"]["mse"]
    # dvclive: one row per evaluation, training and validation losses against work units
    rows = (out / "dvclive" / "plots" / "metrics" / "val" / "mse.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["step", "mse"] and len(rows) == 1 + len(hist)
    wu = (out / "dvclive" / "plots" / "metrics" / "work_units.tsv").read_text().splitlines()[1:]
    assert [float(r.split("\t")[1]) for r in wu] == [r["work_units"] for r in hist]
    assert (out / "dvclive" / "plots" / "metrics" / "train_loss.tsv").exists()
    assert (out / "dvclive" / "plots" / "metrics" / "aux_val" / "linf.tsv").exists()


class Killed(Exception):
    pass


@pytest.mark.parametrize("problem, model, trainer, extra", [
    ("poisson", "mlp", "fas", ["train.fas.levels=3", "train.fas.order=random"]),
    ("darcy", "cnn", "adam", []),
    ("poisson", "mlp", "adamw", ["train.schedule=warmup_cosine", "train.warmup=0.2"]),
    ("darcy", "mlp", "fas", ["train.fas.smoother=adamw", "train.schedule=cosine"]),
    ("poisson", "mlp", "adamw", ["train.growth.levels=2", "train.growth.share=0.3"]),
    ("darcy", "mlp", "fas", ["train.growth.levels=3", "train.growth.state=prolong", "train.fas.smoother=adam"]),
])
def test_resume_equals_uninterrupted(stores, tmp_path, problem, model, trainer, extra):
    over = ["train.budget_wu=40", "train.checkpoint_every_wu=10", "train.eval_every_wu=5", *extra]
    cfg = cfg_for(problem, model, trainer, over)
    full, part = tmp_path / "full", tmp_path / "part"
    train(cfg, stores[problem], full, reporting=QUIET)

    seen = {"ck": 0}

    def kill(state):
        seen["ck"] += state["checkpointed"]
        if seen["ck"] >= 2 and not state["checkpointed"]:
            raise Killed   # dies between checkpoints: work after the checkpoint is lost

    with pytest.raises(Killed):
        train(cfg, stores[problem], part, callback=kill, reporting=Reporting(progress=False, verbose=False))
    assert not (part / "final.pt").exists()
    done_at = read_checkpoint(part / "checkpoint.pt")["loop"]["work_units"]
    assert 0 < done_at < 40
    train(cfg, stores[problem], part, resume=True, reporting=Reporting(progress=False, verbose=False))
    names = ["best.pt", "final.pt"] + (["aux_best.pt", "aux_final.pt"] if trainer == "fas" else [])
    for name in names:
        assert states_equal(full / name, part / name), name
    a, b = read_checkpoint(full / "checkpoint.pt"), read_checkpoint(part / "checkpoint.pt")
    assert a["history"] == b["history"]
    # the dvclive curves were rebuilt without duplicates
    rows = (part / "dvclive" / "plots" / "metrics" / "val" / "mse.tsv").read_text().splitlines()
    assert len(rows) == 1 + len(b["history"])


def test_resume_refuses_other_params_and_extends_budget(stores, tmp_path):
    out = tmp_path / "m"
    cfg = cfg_for("poisson", "mlp", "sgd")
    train(cfg, stores["poisson"], out, reporting=QUIET)
    with pytest.raises(ResumeError, match="train.lr"):
        train(cfg_for("poisson", "mlp", "sgd", ["train.lr=0.5"]), stores["poisson"], out, resume=True, reporting=QUIET)
    more = cfg_for("poisson", "mlp", "sgd", ["train.budget_wu=24"])
    s = train(more, stores["poisson"], out, resume=True, reporting=QUIET)
    ref = train(more, stores["poisson"], tmp_path / "ref", reporting=QUIET)
    assert s["work_units"] == ref["work_units"] == 24
    assert states_equal(out / "final.pt", tmp_path / "ref" / "final.pt")


def test_streamed_training_equals_loaded(stores, tmp_path):
    a = train(cfg_for("darcy", "mlp", "fas"), stores["darcy"], tmp_path / "a", reporting=QUIET)
    b = train(cfg_for("darcy", "mlp", "fas", ["data.memory_budget_mb=0.001"]), stores["darcy"], tmp_path / "b",
              reporting=QUIET)
    assert b["data_streamed"] and not a["data_streamed"]
    assert states_equal(tmp_path / "a" / "final.pt", tmp_path / "b" / "final.pt")


@pytest.mark.parametrize("trainer", ["sgd", "fas"])
def test_divergence_is_caught(stores, tmp_path, trainer):
    out = tmp_path / "m"
    cfg = cfg_for("poisson", "mlp", trainer, ["train.lr=1e6", "train.budget_wu=40"])
    with pytest.raises(TrainingDiverged) as err:
        train(cfg, stores["poisson"], out, reporting=QUIET)
    msg = str(err.value)
    assert "diverged" in msg and "level" in msg and "train.lr" in msg and "No model file" in msg
    assert err.value.history and err.value.history[0]["work_units"] == 0   # the curve up to the divergence
    if trainer == "fas":
        assert "train.fas.gamma" in msg and "train.fas.eta" in msg
    assert not any((out / n).exists() for n in ("best.pt", "final.pt", "aux_best.pt", "aux_final.pt"))


def test_cli_train_and_errors(stores, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    import yaml

    params.write_text(yaml.safe_dump(PARAMS))
    out = tmp_path / "m"
    rc = cli_main(["train", "--problem", "darcy", "--store", str(stores["darcy"]), "--model", "mlp",
                   "--trainer", "sgd", "--out", str(out), "--params", str(params), "--no-progress",
                   "-S", "train.budget_wu=6"])
    assert rc == 0 and (out / "best.pt").exists()
    assert read_model_file(out / "best.pt")[1]["train"]["budget_wu"] == 6
    rc = cli_main(["train", "--problem", "darcy", "--store", str(stores["darcy"]), "--out", str(out),
                   "--params", str(params), "-S", "train.momentum=1.5"])
    assert rc == 2 and "train.momentum: 1.5" in capsys.readouterr().err
    rc = cli_main(["train", "--problem", "poisson", "--store", str(stores["darcy"]), "--out", str(out),
                   "--params", str(params)])
    assert rc == 2 and "holds 'darcy' samples, not 'poisson'" in capsys.readouterr().err
    rc = cli_main(["train", "--problem", "poisson", "--store", str(stores["poisson"]), "--out", str(out),
                   "--params", str(params), "--no-progress", "-S", "train.lr=1e6", "-S", "train.budget_wu=30"])
    assert rc == 3 and "diverged" in capsys.readouterr().err
    rc = cli_main(["train", "--problem", "poisson", "--store", str(stores["poisson"]), "--model", "cnn",
                   "--out", str(out), "--params", str(params), "-S", "models.poisson.cnn.conv=[[4, 11, 2]]"])
    assert rc == 2 and "models.poisson.cnn" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["train", "--help"])
    assert "--resume" in capsys.readouterr().out


def _fem_available() -> bool:
    import subprocess
    import sys

    code = "try:\n import dolfinx_solver\nexcept ImportError:\n pass\nimport dolfinx"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


@pytest.mark.skipif(not _fem_available(), reason="DOLFINx is not installed")
def test_end_to_end_on_generated_stores(tmp_path, capsys):
    """pde-data generate (tiny) -> surrogate train (sgd, adam, fas) -> evaluate -> load -> predict."""
    import shutil
    import subprocess
    import sys

    import numpy as np
    import yaml

    import surrogate
    from surrogate.dataset import open_store

    exe = shutil.which("pde-data") or str(Path(sys.executable).parent / "pde-data")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({
        "poisson": {"n": 8, "samples": 15, "chunk": 5, "seed": 0},
        "darcy": {"n": 8, "samples": 15, "chunk": 5, "seed": 0},
        **PARAMS,
        "train": {**PARAMS["train"], "budget_wu": 8, "checkpoint_every_wu": 4},
    }))
    for problem, model in (("poisson", "mlp"), ("darcy", "cnn")):
        store = tmp_path / f"{problem}.zarr"
        subprocess.run([exe, "generate", problem, "--out", str(store), "--params", str(params)], check=True,
                       capture_output=True)
        for trainer in ("sgd", "adam", "fas"):
            out = tmp_path / f"{problem}-{trainer}"
            rc = cli_main(["train", "--problem", problem, "--store", str(store), "--model", model,
                           "--trainer", trainer, "--out", str(out), "--params", str(params), "--no-progress"])
            assert rc == 0, capsys.readouterr().err
            metrics = tmp_path / f"{problem}-{trainer}.json"
            rc = cli_main(["evaluate", "--model-dir", str(out), "--store", str(store), "--out", str(metrics),
                           "--params", str(params)] + (["--plots", str(tmp_path / "plots")] if trainer == "fas"
                                                       else []))
            assert rc == 0, capsys.readouterr().err
            flat = json.loads(metrics.read_text())
            assert flat and all(isinstance(v, float) for v in flat.values())   # numbers only, for dvc metrics
            res = json.loads(metrics.with_suffix(".meta.json").read_text())
            target = "u" if problem == "poisson" else "Q"
            assert np.isfinite(res["fine"][target]["mse"]) and ("aux" in res) == (trainer == "fas")
        st = open_store(store)
        m = surrogate.load(out / "best.pt")
        x = st.array("kappa" if problem == "poisson" else "log_k")[:3]
        y = m.predict(x)
        assert y.shape == ((3, 8, 8) if problem == "poisson" else (3,))
        assert np.all(np.isfinite(y))
    assert (tmp_path / "plots" / "parity_Q.png").exists()


@pytest.mark.slow
def test_resume_after_sigkill(stores, tmp_path):
    """A real kill (SIGKILL of the CLI process after a checkpoint), then --resume."""
    import signal
    import subprocess
    import sys
    import time

    import yaml

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({**PARAMS, "train": {**PARAMS["train"], "budget_wu": 1200,
                                                          "checkpoint_every_wu": 50, "eval_every_wu": 50}}))
    args = ["train", "--problem", "poisson", "--store", str(stores["poisson"]), "--model", "mlp", "--trainer",
            "fas", "--params", str(params), "--no-progress"]
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "surrogate.cli", *args, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (out / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (out / "final.pt").exists(), "the run finished before it could be killed"
    assert cli_main([*args, "--out", str(out), "--resume"]) == 0
    assert cli_main([*args, "--out", str(tmp_path / "ref")]) == 0
    for name in ("best.pt", "final.pt", "aux_best.pt", "aux_final.pt"):
        assert states_equal(out / name, tmp_path / "ref" / name), name


@pytest.mark.parametrize("trainer, extra", [("adamw", ["train.weight_decay=1e-3"]),
                                            ("sgd", ["train.schedule=cosine", "train.lr=0.05"]),
                                            ("fas", ["train.fas.smoother=adamw", "train.schedule=warmup_cosine"]),
                                            ("adamw", ["train.growth.levels=3", "train.growth.share=0.4"])])
def test_new_methods_train(stores, tmp_path, trainer, extra):
    cfg = cfg_for("poisson", "mlp", trainer, ["train.budget_wu=40", "train.lr=0.003", *extra])  # last lr wins
    s = train(cfg, stores["poisson"], tmp_path / "m", reporting=QUIET)
    first, last = s["history"][0]["val"]["mse"], s["best"]["mse"]
    assert last < 0.9 * first   # the validation loss falls


def test_schedules():
    from surrogate.schedule import lr_factor

    assert lr_factor("constant", 0.7) == 1.0
    assert lr_factor("cosine", 0.0) == 1.0 and lr_factor("cosine", 1.0) == pytest.approx(0.0)
    assert lr_factor("cosine", 0.5) == pytest.approx(0.5)
    assert lr_factor("warmup_cosine", 0.05, 0.1) == pytest.approx(0.5)
    assert lr_factor("warmup_cosine", 0.1, 0.1) == 1.0 and lr_factor("warmup_cosine", 1.0, 0.1) == pytest.approx(0)


def test_nested_iteration_grows_from_the_coarsest_net(stores, tmp_path):
    cfg = cfg_for("poisson", "mlp", "adam", ["train.budget_wu=40", "train.growth.levels=3", "train.growth.share=0.5",
                                            "train.eval_every_wu=2", "train.work_measure=flops"])
    s = train(cfg, stores["poisson"], tmp_path / "m", reporting=QUIET)
    levels = [r.get("growth_level", 0) for r in s["history"]]
    assert levels[0] == 2 and 1 in levels and levels[-1] == 0 and levels == sorted(levels, reverse=True)
    grown = [r for r in s["history"] if r.get("growth_level", 0) == 0]
    assert grown[0]["work_units"] >= 20 - 2   # half of the FLOP budget went to the coarse levels
    assert s["best"]["mse_at_wu"] >= grown[0]["work_units"]   # best.pt is a fine network
    _, meta = read_model_file(tmp_path / "m" / "best.pt")
    assert meta["arch"]["widths"] == [192, 8, 8, 64]


def test_chunk_order_streaming_trains_and_resumes(stores, tmp_path):
    over = ["data.memory_budget_mb=0.001", "data.stream_order=chunks", "train.budget_wu=24",
            "train.checkpoint_every_wu=8"]
    a = train(cfg_for("poisson", "mlp", "adam", over), stores["poisson"], tmp_path / "a", reporting=QUIET)
    assert a["data_streamed"] and a["best"]["mse"] < a["history"][0]["val"]["mse"]
    b = train(cfg_for("poisson", "mlp", "adam", [*over, "train.budget_wu=12"]), stores["poisson"], tmp_path / "b",
              reporting=QUIET)
    train(cfg_for("poisson", "mlp", "adam", over), stores["poisson"], tmp_path / "b", resume=True, reporting=QUIET)
    assert b["work_units"] == 12 and states_equal(tmp_path / "a" / "final.pt", tmp_path / "b" / "final.pt")
