"""Reproductions of an adversarial pass over the tools, as a careless user and as an attacker would try them.

Each test is one finding: an override that silently lost, a check that a crafted file sidestepped, a second
writer, a traceback. They run the real commands (``main`` of each CLI) on tiny stores.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml
import zarr

import surrogate
from pde_data import integrity
from pde_data.chunks import writable, write_chunk
from pde_data.cli import main as pde_main
from pde_data.store import StoreError, StoreReader
from surrogate import config
from surrogate.cli import main as sur_main
from surrogate.io import ModelFileError, read_model_file
from surrogate.train import Reporting, train
from surrogate_stores import PARAMS, cfg_for, make_poisson_store
from test_store_integrity import CHUNK, build, chunk_files, read_all

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOLD_LOCK = ("import sys, time; from pde_data.lock import writer_lock; writer_lock(sys.argv[1], sys.argv[2]); "
             "print('held', flush=True); time.sleep(60)")


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if not line.startswith("surrogate: note:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture()
def params(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(PARAMS))
    return path


@pytest.fixture()
def trained(stores, tmp_path):
    out = tmp_path / "m"
    train(cfg_for("poisson"), stores["poisson"], out, reporting=Reporting(progress=False, verbose=False))
    return out


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class HeldLock:
    """A writer lock held by another process (as a second ``train`` or ``generate`` would hold it)."""

    def __init__(self, path, what):
        self.proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path), what], stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout.readline() == "held\n"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


# -- 1. a value the user typed wins -----------------------------------------------------------------------
def test_typed_overrides_win_over_the_per_problem_and_per_trainer_sections():
    tree = {"train": {"lr": 0.01, "budget_wu": 200, "by_trainer": {"adamw": {"lr": 0.001}},
                      "by_problem": {"darcy": {"budget_wu": 1000, "fas": {"pre": 2}}}}}
    cfg = config.load(tree, ["train.lr=0.05"]).run("poisson", "mlp", "adamw")
    assert cfg.train.lr == 0.05
    cfg = config.load(tree, ["train.budget_wu=5", "train.fas.post=3"]).run("darcy", "mlp", "fas")
    assert cfg.train.budget_wu == 5 and cfg.train.fas.pre == 2 and cfg.train.fas.post == 3
    plain = config.load(tree).run("darcy", "mlp", "adamw")
    assert plain.train.lr == 0.001 and plain.train.budget_wu == 1000
    assert any("train.budget_wu = 1000 from train.by_problem.darcy" in note for note in plain.notes)
    assert any("train.lr = 0.001 from train.by_trainer.adamw" in note for note in plain.notes)
    with pytest.raises(config.ConfigError, match="--trainer fas and -S train.trainer=sgd disagree"):
        config.load(tree, ["train.trainer=sgd"]).run("darcy", "mlp", "fas")


def test_train_says_which_params_file_keys_a_section_changed(tmp_path, capsys):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"train": {"lr": 0.01, "by_trainer": {"adamw": {"lr": 0.001}}}}))
    sur_main(["train", "--problem", "poisson", "--store", str(tmp_path / "none.zarr"), "--out", str(tmp_path / "m"),
              "--trainer", "adamw", "--params", str(path)])
    assert "note: train.lr = 0.001 from train.by_trainer.adamw (train says 0.01" in capsys.readouterr().err


# -- 2. checksums bound to the chunk's place -----------------------------------------------------------------
def test_swapped_foreign_and_linked_chunks_are_refused(tmp_path, capsys):
    path, other = build(tmp_path / "s.zarr"), build(tmp_path / "t.zarr", zeros=(2,))
    files, theirs = chunk_files(path), chunk_files(other)
    a, b = files["u", 0].read_bytes(), files["u", 1].read_bytes()
    files["u", 0].write_bytes(b)
    files["u", 1].write_bytes(a)                             # a swap: both chunks decode, crc32c intact
    files["Q", 2].write_bytes(theirs["Q", 2].read_bytes())   # a chunk of another store of the same shape
    files["theta", 3].unlink()
    files["theta", 3].symlink_to(theirs["theta", 3])          # a link to another store's chunk
    assert pde_main(["verify", str(path), "--no-progress"]) == 1
    out = capsys.readouterr().out
    for where in ("'u' chunk 0", "'u' chunk 1", "'Q' chunk 2"):
        assert f"array {where}" in out and "does not match its place in the manifest" in out
    assert "array 'theta' chunk 3 (samples 12-15): a symbolic link" in out
    for name, where in (("u", "'u' chunk 0"), ("Q", "'Q' chunk 2"), ("theta", "'theta' chunk 3")):
        with pytest.raises(StoreError, match=f"array {where}"):
            read_all(path, name)
    done = integrity.repair(path)   # what generate does before it resumes: the bad chunks are solved again
    assert np.array_equal(done, np.r_[16:18])
    capsys.readouterr()


def test_a_removed_checksum_codec_or_a_linked_array_is_refused(tmp_path):
    path, other = build(tmp_path / "s.zarr"), build(tmp_path / "t.zarr")
    meta = path / "u" / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["codecs"] = [c for c in doc["codecs"] if c["name"] != "crc32c"]
    meta.write_text(json.dumps(doc))
    with pytest.raises(StoreError, match=r"array 'u' has codecs \[bytes, zstd\]; a format-4 store has "
                                         r"\[bytes, zstd, crc32c\]"):
        StoreReader(path)
    assert pde_main(["verify", str(path)]) == 2
    shutil.rmtree(path / "u")
    (path / "u").symlink_to(other / "u")
    with pytest.raises(StoreError, match="u is a symbolic link"):
        StoreReader(path)


# -- 3. a model file's size bounds what loading it allocates ---------------------------------------------------
def test_a_stride_zero_model_file_is_refused_before_allocating(trained, tmp_path):
    _state, meta = read_model_file(trained / "best.pt")
    widths = [192, 200000, 64, 1024]
    meta["arch"] = {"kind": "mlp", "widths": widths}
    fake = {}
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        fake[f"layers.{i}.weight"] = torch.zeros(1).expand(b, a)
        fake[f"layers.{i}.bias"] = torch.zeros(1).expand(b)
    torch.save({"format": "pde-surrogate-model", "schema": 1, "state_dict": fake, "meta": meta}, tmp_path / "x.pt")
    assert (tmp_path / "x.pt").stat().st_size < 2**20
    t0 = time.perf_counter()
    with pytest.raises(ModelFileError, match="tensor 'layers.0.weight' of shape \\[200000, 192\\] is not stored in "
                                             "full .* a crafted file"):
        surrogate.load(tmp_path / "x.pt")
    assert time.perf_counter() - t0 < 2.0


# -- 4. one writer per training output ---------------------------------------------------------------------------
def test_a_second_training_run_on_the_same_outputs_is_refused(stores, trained, params, tmp_path, capsys):
    before = snapshot(trained)
    alias = tmp_path / "alias"
    alias.symlink_to(trained)
    with HeldLock(trained, "model directory") as held:
        for out in (trained, alias):
            rc = sur_main(["train", "--problem", "poisson", "--store", str(stores["poisson"]), "--out", str(out),
                           "--params", str(params), "-S", "train.lr=0.02"])
            err = one_line(capsys.readouterr().err)
            assert rc == 2 and f"another writer holds it (pid {held.proc.pid}" in err
    assert snapshot(trained) == before


# -- 5. the store lock and --overwrite through a symbolic link ---------------------------------------------------
def test_the_store_lock_and_overwrite_follow_a_symbolic_link(tmp_path, write_params, capsys):
    params = write_params()
    real, alias = tmp_path / "store.zarr", tmp_path / "alias.zarr"
    assert pde_main(["generate", "poisson", "--out", str(real), "--params", str(params), "--no-progress"]) == 0
    alias.symlink_to(real)
    with HeldLock(real, "store"):
        assert pde_main(["generate", "poisson", "--out", str(alias), "--params", str(params), "--no-progress"]) == 2
        assert "another writer holds it" in one_line(capsys.readouterr().err)
    assert pde_main(["generate", "poisson", "--out", str(alias), "--params", str(params), "--seed", "5",
                     "--overwrite", "--no-progress"]) == 0
    assert alias.is_symlink() and StoreReader(real).n_done == 12
    assert StoreReader(real).record["generate"]["seed"] == 5
    capsys.readouterr()


# -- 6. NaN and inf are named where they are ----------------------------------------------------------------------
def test_non_finite_samples_are_named_by_verify_and_refused_before_training(tmp_path, params, capsys):
    path = build(tmp_path / "s.zarr")
    group = zarr.open_group(path, mode="r+")
    u = np.asarray(group["u"][4:8])
    u[2, 1, 1] = np.nan
    theta = np.asarray(group["theta"][4:8])
    write_chunk(writable(group, ["u", "theta", "Q", "done"]), 4,   # through the store's own writer: digest intact
                {"u": u, "theta": theta, "Q": np.asarray(group["Q"][4:8])})
    assert pde_main(["verify", str(path), "--no-progress"]) == 1
    assert "array 'u' chunk 1 (samples 4-7): non-finite values (NaN or inf) in sample 6" in capsys.readouterr().out
    with pytest.raises(StoreError, match="non-finite values .* in sample 6"):
        read_all(path, "u")
    store = make_poisson_store(tmp_path / "p.zarr", n_samples=30, n=8, chunk=4)
    group = zarr.open_group(store, mode="r+")
    group["u"][5] = np.inf   # a training sample of a format-1 store
    rc = sur_main(["train", "--problem", "poisson", "--store", str(store), "--out", str(tmp_path / "m"),
                   "--params", str(params)])
    err = one_line(capsys.readouterr().err)
    assert rc == 2 and "array 'u' chunk 1 (samples 4-7): non-finite values (NaN or inf) in sample 5" in err


def test_a_non_finite_test_sample_is_refused_by_evaluate(trained, tmp_path, params, capsys):
    store = make_poisson_store(tmp_path / "p.zarr", n_samples=30, n=8, chunk=4, seed=3)
    group = zarr.open_group(store, mode="r+")
    group["kappa"][27] = np.nan   # an input of the test split
    rc = sur_main(["evaluate", "--model-dir", str(trained), "--store", str(store), "--out",
                   str(tmp_path / "e.json"), "--params", str(params)])
    err = one_line(capsys.readouterr().err)
    assert rc == 2 and "array 'kappa' chunk 6 (samples 24-27): non-finite values (NaN or inf) in sample 27" in err
    assert not (tmp_path / "e.json").exists()


# -- 7. DVC keeps the resumable outputs; a kept output of other parameters is replaced ---------------------------
def test_dvc_stages_keep_and_resume_their_outputs():
    stages = yaml.safe_load(open(os.path.join(ROOT, "dvc.yaml")))["stages"]
    for name in ("generate_poisson", "generate_darcy"):
        assert "--overwrite-changed" in stages[name]["cmd"]
        assert all(next(iter(out.values())).get("persist") for out in stages[name]["outs"]), name
    train = stages["train"]["do"]
    assert "--resume auto" in train["cmd"]
    for kind in ("outs", "metrics", "plots"):
        assert all(next(iter(out.values())).get("persist") for out in train[kind]), kind


def test_overwrite_changed_resumes_the_same_store_and_replaces_another(tmp_path, write_params, capsys):
    out, params = tmp_path / "p.zarr", write_params()
    base = ["generate", "poisson", "--out", str(out), "--params", str(params), "--no-progress", "--overwrite-changed"]
    assert pde_main(base) == 0 and capsys.readouterr().out.startswith("created")
    assert pde_main(base) == 0 and capsys.readouterr().out.startswith("resumed")
    assert pde_main([*base, "--seed", "3"]) == 0 and capsys.readouterr().out.startswith("replaced")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("not a store")
    assert pde_main(["generate", "poisson", "--out", str(tmp_path / "mine"), "--params", str(params),
                     "--overwrite-changed"]) == 2
    assert (tmp_path / "mine" / "notes.txt").read_text() == "not a store"
    capsys.readouterr()


def test_resume_auto_continues_the_same_run_and_restarts_another(stores, tmp_path, capsys):
    out = tmp_path / "m"
    cfg = cfg_for("poisson", "mlp", "adam")

    def kill(state):
        if state["checkpointed"]:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, stores["poisson"], out, callback=kill, reporting=Reporting(progress=False, live=False))
    train(cfg, stores["poisson"], out, resume="auto", reporting=Reporting(progress=False, live=False))
    assert "resuming from" in capsys.readouterr().err
    other = cfg_for("poisson", "mlp", "adam", ["train.lr=0.02"])
    summary = train(other, stores["poisson"], out, resume="auto", reporting=Reporting(progress=False, live=False))
    err = capsys.readouterr().err
    assert "was written with other parameters (train.lr); starting from scratch" in err
    assert summary["work_units"] >= 16 and read_model_file(out / "best.pt")[1]["train"]["lr"] == 0.02


# -- 8. no traceback from any input -----------------------------------------------------------------------------
def test_a_full_disk_at_the_end_keeps_the_previous_outputs(stores, trained, params, capsys, monkeypatch):
    before = snapshot(trained)
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        if ".best.pt.staged-" in str(f):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    rc = sur_main(["train", "--problem", "poisson", "--store", str(stores["poisson"]), "--out", str(trained),
                   "--params", str(params), "--trainer", "fas", "-S", "train.lr=0.02", "--no-progress"])
    err = one_line(capsys.readouterr().err)
    assert rc == 2 and "best.pt" in err and "cannot write the file" in err
    after = snapshot(trained)
    assert {k: v for k, v in after.items() if k.name != "checkpoint.pt"} == \
        {k: v for k, v in before.items() if k.name != "checkpoint.pt"}
    assert not list(trained.glob(".*staged*")) and not list(trained.parent.glob(".*staged*"))


def test_unreadable_array_metadata_is_one_line_everywhere(tmp_path, write_params, params, capsys):
    store = tmp_path / "p.zarr"
    assert pde_main(["generate", "poisson", "--out", str(store), "--params", str(write_params()),
                     "--no-progress"]) == 0
    (store / "u" / "zarr.json").write_text("")
    commands = [(pde_main, ["verify", str(store)]), (pde_main, ["info", str(store)]),
                (pde_main, ["generate", "poisson", "--out", str(store), "--params", str(write_params())]),
                (sur_main, ["train", "--problem", "poisson", "--store", str(store), "--out", str(tmp_path / "m"),
                            "--params", str(params)])]
    capsys.readouterr()
    for cli, args in commands:
        assert cli(args) == 2, args
        assert "the metadata of array 'u' (u/zarr.json) cannot be read" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "is not a UTF-8 text file"),
    (b"a: &a [1, 1]\nb: &b [*a, *a]\nc: [*b, *b]\n", "alias *a is not allowed"),
    (b"train:\n  lr: 0.1\n  lr: 0.2\n", "key 'lr' is given twice in one mapping"),
])
def test_a_bad_params_file_is_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "params.yaml"
    path.write_bytes(content)
    for cli, args in ((sur_main, ["mc", "--model", str(tmp_path)]),
                      (pde_main, ["generate", "poisson", "--out", str(tmp_path / "p.zarr")])):
        assert cli([*args, "--params", str(path)]) == 2
        assert message in one_line(capsys.readouterr().err)


@pytest.mark.parametrize("override, message", [
    ("train.seed=99999999999999999999999", "train.seed: 99999999999999999999999 is too large"),
    ("models.poisson.mlp.hidden=[100000,100000]", "models.poisson.mlp: 1e+10 parameters need about"),
    ("train..lr=1", "no empty key between dots"),
    (".train.lr=1", "no empty key between dots"),
])
def test_an_impossible_training_value_is_one_line(stores, tmp_path, params, capsys, override, message):
    t0 = time.perf_counter()
    rc = sur_main(["train", "--problem", "poisson", "--store", str(stores["poisson"]), "--out", str(tmp_path / "m"),
                   "--params", str(params), "-S", override])
    assert rc == 2 and message in one_line(capsys.readouterr().err)
    assert time.perf_counter() - t0 < 10   # refused before any large allocation
    assert not (tmp_path / "m" / "best.pt").exists()


def test_a_grid_beyond_the_machines_memory_is_one_line(tmp_path, capsys):
    for problem in ("poisson", "darcy"):
        assert pde_main(["generate", problem, "--out", str(tmp_path / "x.zarr"), "-S", f"{problem}.n=100000"]) == 2
        assert f"{problem}.n: 100000 is too large" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "x.zarr").exists()


@pytest.mark.parametrize("command", [["surrogate", "train", "--problem", "poisson", "--store", "x.zarr",
                                      "--out", "m"], ["pde-data", "generate", "darcy", "--out", "d.zarr"]])
def test_ctrl_c_during_start_up_is_one_line(tmp_path, command):
    exe = os.path.join(os.path.dirname(sys.executable), command[0])
    (tmp_path / "params.yaml").write_text("darcy: {samples: 64}\n")   # read by pde-data: a short job
    for delay in (0.5, 1.0):   # inside the imports of torch / DOLFINx, which take seconds
        proc = subprocess.Popen([exe, *command[1:]], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=60)[1]
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
        # 130: interrupted; 2: the missing store was reported first; 0 or killed by the signal: it fell after the
        # work, in MPI's finalization, where Python no longer handles it (the store is complete either way)
        assert proc.returncode in (130, 2, 0, -signal.SIGINT), (proc.returncode, err)


# -- 9. the curves stay with the model they describe --------------------------------------------------------------
def test_a_diverged_run_keeps_the_previous_runs_curves(stores, trained, params, capsys):
    before = snapshot(trained)
    assert any(p.parts[0] == "dvclive" for p in before)
    rc = sur_main(["train", "--problem", "poisson", "--store", str(stores["poisson"]), "--out", str(trained),
                   "--params", str(params), "--trainer", "adam", "-S", "train.lr=100", "-S", "train.budget_wu=40",
                   "--no-progress"])
    assert rc == 3 and "diverged" in capsys.readouterr().err
    after = snapshot(trained)
    assert {k: v for k, v in after.items() if k.name != "checkpoint.pt"} == \
        {k: v for k, v in before.items() if k.name != "checkpoint.pt"}


# -- 10. small ones -----------------------------------------------------------------------------------------------
def test_a_params_file_is_not_a_model_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(PARAMS))
    with pytest.raises(ModelFileError, match="is truncated or not a surrogate model file: it is not a PyTorch "
                                             "archive"):
        surrogate.load(path)


def test_chunk_digests_bind_content_to_the_index(tmp_path):
    """The digest of chunk k differs from the digest of the same values at chunk k + 1 (the binding itself)."""
    from pde_data.manifest import Manifest

    path = build(tmp_path / "s.zarr")
    seal = Manifest(zarr.open_group(path, mode="r"))
    values = np.asarray(zarr.open_group(path, mode="r")["u"][:CHUNK])
    assert seal.digest("u", 0, values) != seal.digest("u", 1, values) != seal.digest("theta", 0, values)


# -- 7 (end to end). `dvc repro` after an interruption continues where it stopped -------------------------------
def _dvc(repo, target):
    """``dvc repro target`` in ``repo``: its output and the stages' (stdout and stderr together)."""
    from test_pipeline import BIN

    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run([str(BIN / "dvc"), "repro", target], cwd=repo, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout
    return proc.stdout


def _dvc_until(repo, target, ready, timeout=300):
    """Start ``dvc repro target``, send Ctrl-C (SIGINT to its process group) once ``ready()``, wait for it."""
    from test_pipeline import BIN

    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen([str(BIN / "dvc"), "repro", target], cwd=repo, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t0 = time.perf_counter()
    while not ready() and proc.poll() is None and time.perf_counter() - t0 < timeout:
        time.sleep(0.05)
    assert proc.poll() is None, "the stage ended before it could be interrupted:\n" + proc.communicate()[0]
    os.killpg(proc.pid, signal.SIGINT)
    return proc.communicate(timeout=120)[0]


@pytest.mark.slow
def test_dvc_repro_resumes_an_interrupted_generation_and_training(tmp_path):
    from test_pipeline import BIN, _run, _tiny_params

    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("params", "pde_data", "surrogate", "pipelines"):
        shutil.copytree(os.path.join(ROOT, name), repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(os.path.join(ROOT, name), repo / name)
    params = _tiny_params()
    params["darcy"].update(samples=4096, chunk=64)
    params["train"].update(budget_wu=400, eval_every_wu=20, checkpoint_every_wu=20)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q"], [str(BIN / "dvc"), "init", "-q"],
                [str(BIN / "dvc"), "config", "core.analytics", "false"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "tiny"]):
        _run(cmd, repo)
    store = repo / "data" / "darcy.zarr"

    def done_chunks():
        return sorted((store / "done" / "c").glob("*")) if (store / "done" / "c").is_dir() else []

    _dvc_until(repo, "generate_darcy", lambda: len(done_chunks()) >= 4)
    before = {p.name: p.stat().st_mtime_ns for p in done_chunks()}
    assert 4 <= len(before) < 64
    out = _dvc(repo, "generate_darcy")
    assert "resumed data/darcy.zarr" in out and StoreReader(store).n_done == 4096
    assert all((store / "done" / "c" / name).stat().st_mtime_ns == t for name, t in before.items())

    model = repo / "models" / "darcy-mlp-adamw"
    _dvc_until(repo, "train@darcy-mlp-adamw", lambda: (model / "checkpoint.pt").exists())
    out = _dvc(repo, "train@darcy-mlp-adamw")
    assert "resuming from models/darcy-mlp-adamw/checkpoint.pt at" in out
    assert json.loads((model / "train_summary.json").read_text())["work_units"] >= 400

    # kept outputs of other parameters are replaced, not refused
    params["darcy"]["length"] = 0.3
    params["train"]["lr"] = 0.002
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = _dvc(repo, "train@darcy-mlp-adamw")
    assert "replaced data/darcy.zarr" in out and "starting from scratch" in out
