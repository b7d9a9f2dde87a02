"""The DVC pipeline (dvc.yaml): stage scoping, and one tiny end-to-end `dvc repro`."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GENERATOR_SECTIONS = {"poisson", "darcy"}


def _stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _param_roots(stage: dict) -> set[str]:
    return {str(p).split(".")[0] for p in stage.get("params", [])}


def test_generators_read_only_their_own_section():
    stages = _stages()
    assert _param_roots(stages["generate_poisson"]) == {"poisson"}
    assert _param_roots(stages["generate_darcy"]) == {"darcy"}


def test_downstream_stages_do_not_read_generator_params():
    for name, stage in _stages().items():
        if not name.startswith("generate_"):
            assert not _param_roots(stage) & GENERATOR_SECTIONS, name


def test_every_params_key_is_in_params_yaml():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, stage in _stages().items():
        for key in stage.get("params", []):
            root = str(key).split(".")[0]
            assert root in params, f"stage {name} reads {key!r}, params.yaml has no section {root!r}"


# -- end to end --------------------------------------------------------------

def _runs() -> dict[str, dict]:
    """The training runs of dvc.yaml (its ``runs`` variable): name -> problem, model, trainer."""
    variables = yaml.safe_load((ROOT / "dvc.yaml").read_text())["vars"]
    return next(v["runs"] for v in variables if "runs" in v)


TINY = {
    "poisson": {"samples": 48, "chunk": 16, "n": 16},
    "darcy": {"samples": 48, "chunk": 16, "n": 16},
    "train": {"budget_wu": 12, "eval_every_wu": 4, "checkpoint_every_wu": 6, "batch_size": 16,
              "eval_train_samples": 16},
    "mc": {"n": 200, "fem_n": 10, "batch_size": 100},
}


def _tiny_params() -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in TINY.items():
        params[section].update(values)
    for overrides in [*params["train"]["by_problem"].values(), *params["train"]["by_trainer"].values()]:
        # the tiny budgets win over the per-problem and per-trainer ones
        for key in set(TINY["train"]) & set(overrides or {}):
            del overrides[key]
    params["models"]["poisson"]["cnn"]["conv"] = [[4, 3, 2], [4, 3, 2]]
    params["models"]["darcy"]["cnn"]["conv"] = [[4, 3, 2], [4, 3, 1], [4, 3, 1]]
    return params


def _run(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _changed_stages(repo: Path) -> set[str]:
    return set(json.loads(_run([str(BIN / "dvc"), "status", "--json"], repo)))


def _set_param(repo: Path, section: str, key: str, value) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params[section][key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def pipeline_repo(tmp_path_factory) -> Path:
    """A copy of the project with tiny params, after one `dvc repro`."""
    repo = tmp_path_factory.mktemp("pipeline")
    for name in ("params", "pde_data", "surrogate", "pipelines"):
        shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, repo / name)
    (repo / "params.yaml").write_text(yaml.safe_dump(_tiny_params(), sort_keys=False))
    _run(["git", "init", "-q"], repo)
    _run([str(BIN / "dvc"), "init", "-q"], repo)
    _run([str(BIN / "dvc"), "config", "core.analytics", "false"], repo)
    _run(["git", "add", "-A"], repo)  # dvclive needs a commit to refer to
    _run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", "tiny"], repo)
    _run([str(BIN / "dvc"), "repro"], repo)
    return repo


def _finite_numbers(obj) -> list[float]:
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in _finite_numbers(v)]
    if isinstance(obj, float):
        return [obj] if math.isfinite(obj) else []
    return []


@pytest.mark.slow
def test_repro_writes_metrics_plots_and_report(pipeline_repo):
    repo = pipeline_repo
    for run in _runs():
        evaluation = json.loads((repo / "metrics" / "eval" / f"{run}.json").read_text())
        assert _finite_numbers(evaluation) and math.isfinite(evaluation["test_mse"]), run
        assert _finite_numbers(json.loads((repo / "metrics" / "train" / f"{run}.json").read_text())), run
        assert (repo / "logs" / run / "plots" / "metrics" / "val" / "mse.tsv").stat().st_size > 0
        assert (repo / "reports" / "predictions" / run / "samples.png").stat().st_size > 0
    mc = json.loads((repo / "metrics" / "mc.meta.json").read_text())
    assert math.isfinite(mc["control_variate"]["mean"]) and mc["control_variate"]["se"] > 0
    # what DVC reads is flat numbers, few enough columns for a terminal
    flat = [json.loads(p.read_text()) for p in (repo / "metrics").rglob("*.json") if not p.name.endswith(".meta.json")]
    assert all(isinstance(v, int | float) for m in flat for v in m.values())
    assert len({k for m in flat for k in m}) <= 10   # dvc metrics show: one row per file, few columns
    summary = (repo / "reports" / "summary.md").read_text()
    assert "| poisson | mlp | fas (2 levels) | first auxiliary |" in summary
    assert "control variate" in summary
    for problem in ("poisson", "darcy"):
        assert (repo / "reports" / f"val_curves_{problem}.png").stat().st_size > 0
    assert "Running stage" not in _run([str(BIN / "dvc"), "repro"], repo)
    metrics_show = _run([str(BIN / "dvc"), "metrics", "show", "--json"], repo)
    assert "mse" in metrics_show


@pytest.mark.slow
def test_param_changes_rerun_only_downstream_stages(pipeline_repo):
    repo = pipeline_repo
    original = (repo / "params.yaml").read_text()
    _set_param(repo, "train", "lr", 0.005)
    changed = _changed_stages(repo)
    assert "train@poisson-mlp-fas" in changed and "train@darcy-unet-adamw" in changed
    assert not {"generate_poisson", "generate_darcy"} & changed

    (repo / "params.yaml").write_text(original)
    _set_param(repo, "poisson", "kx", [0.5, 3.0])
    ran = {line.split("'")[1] for line in _run([str(BIN / "dvc"), "repro"], repo).splitlines()
           if line.startswith("Running stage")}
    poisson_runs = {name for name, run in _runs().items() if run["problem"] == "poisson"}
    assert ran == {"generate_poisson", "report", *(f"train@{r}" for r in poisson_runs),
                   *(f"evaluate@{r}" for r in poisson_runs)}
