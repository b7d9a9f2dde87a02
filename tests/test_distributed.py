"""torchrun data-parallel training on CPU (gloo, 2 processes): same parameters as one process, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import torch
import yaml

from surrogate.io import read_checkpoint, read_model_file
from surrogate_stores import make_poisson_store

pytestmark = pytest.mark.distributed

PARAMS = {
    "data": {"split": {"train": 0.6, "val": 0.2, "test": 0.2}},
    "models": {"poisson": {"mlp": {"hidden": [16, 16]}}},
    "train": {"budget_wu": 12, "batch_size": 8, "lr": 0.01, "eval_every_wu": 4, "checkpoint_every_wu": 4,
              "eval_train_samples": 8, "device": "cpu",
              "fas": {"levels": 2, "pre": 2, "coarse": 2, "post": 2, "rematch_every": 2}},
}
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("dist")
    store = make_poisson_store(d / "p.zarr", n_samples=40, n=8, chunk=8)
    params = d / "params.yaml"
    params.write_text(yaml.safe_dump(PARAMS))
    return store, params


def _launch(processes: int) -> list[str]:
    """``python -m surrogate`` for one process, ``torchrun ... -m surrogate`` for several."""
    if processes == 1:
        return [sys.executable, "-m", "surrogate"]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
            "-m", "surrogate"]


def _train_cmd(processes: int, store, params, out, trainer: str, *extra: str) -> list[str]:
    return [*_launch(processes), "train", "--problem", "poisson", "--store", str(store), "--out", str(out),
            "--trainer", trainer, "--params", str(params), "--no-progress", *extra]


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _assert_same_weights(a, b, rtol=1e-4, atol=1e-6):
    sa, _ = read_model_file(a)
    sb, _ = read_model_file(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=rtol, atol=atol, msg=k)


@pytest.mark.parametrize("trainer", ["sgd", "adam", "fas"])
def test_two_processes_equal_one_at_the_same_global_batch(setup, tmp_path, trainer):
    store, params = setup
    _run(_train_cmd(1, store, params, tmp_path / "one", trainer))
    two = _run(_train_cmd(2, store, params, tmp_path / "two", trainer))
    assert two.stderr.count("trained poisson mlp") == 1  # rank 0 alone reports (and writes)
    for name in ("final.pt", "best.pt") + (("aux_final.pt",) if trainer == "fas" else ()):
        _assert_same_weights(tmp_path / "one" / name, tmp_path / "two" / name)
    h1, h2 = (read_checkpoint(tmp_path / d / "checkpoint.pt")["history"] for d in ("one", "two"))
    assert [r["work_units"] for r in h1] == [r["work_units"] for r in h2]   # work counted on the global batch


def test_more_processes_than_a_minibatch_is_refused(setup, tmp_path):
    store, params = setup
    proc = subprocess.run(_train_cmd(2, store, params, tmp_path / "m", "sgd", "-S", "train.batch_size=1"),
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "need at most as many processes as samples in a minibatch" in proc.stderr


def test_a_killed_rank_stops_the_job_and_resume_works_on_other_process_counts(setup, tmp_path):
    store, params = setup
    over = ["-S", "train.budget_wu=400", "-S", "train.checkpoint_every_wu=20", "-S", "train.eval_every_wu=20"]
    out = tmp_path / "killed"
    job = subprocess.Popen(_train_cmd(2, store, params, out, "fas", *over), env=ENV, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.2)
    assert (out / "checkpoint.pt").exists(), "no checkpoint before the deadline"
    workers = [p for p in psutil.Process(job.pid).children(recursive=True) if p.environ().get("RANK") == "1"]
    assert workers
    os.kill(workers[0].pid, signal.SIGKILL)
    _, err = job.communicate(timeout=300)
    assert job.returncode != 0 and err.strip()            # torchrun says which worker failed
    assert not (out / "final.pt").exists()
    # resume with one process; the result equals an uninterrupted one-process run
    _run(_train_cmd(1, store, params, out, "fas", *over, "--resume"))
    _run(_train_cmd(1, store, params, tmp_path / "ref", "fas", *over))
    _assert_same_weights(out / "final.pt", tmp_path / "ref" / "final.pt")


def test_monte_carlo_across_processes_equals_one_process(tmp_path):
    from surrogate import config
    from surrogate.train import QUIET, train
    from surrogate_stores import make_darcy_store

    store = make_darcy_store(tmp_path / "d.zarr", n_samples=30, n=8, chunk=8)
    train(config.resolve(PARAMS, problem="darcy", trainer="sgd"), store, tmp_path / "m", reporting=QUIET)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"mc": {"n": 3000, "fem_n": 0, "batch_size": 256, "device": "cpu", "field": {
        "kernel": "matern", "mean": 0.0, "variance": 1.0, "length": 0.2, "nu": 1.5}}}))
    results = []
    for processes in (1, 2):
        out = tmp_path / f"mc{processes}.json"
        _run([*_launch(processes), "mc", "--model", str(tmp_path / "m"), "--params", str(params), "--out", str(out),
              "--plots", str(tmp_path / f"plots{processes}"), "--no-progress"])
        results.append(json.loads(out.with_suffix(".meta.json").read_text()))
    one, two = results
    assert one["surrogate"]["mean"] == pytest.approx(two["surrogate"]["mean"], rel=1e-12)
    assert one["surrogate"]["se"] == pytest.approx(two["surrogate"]["se"], rel=1e-9)
