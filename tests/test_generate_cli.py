"""The `pde-data` command line: generate, info, bad input, and MPI runs."""

from pathlib import Path

import pytest

from params import ConfigError, read_params
from pde_data import integrity
from pde_data.cli import main
from pde_data.config import problem_config
from pde_data.generate import generate
from pde_data.poisson import PoissonProblem
from store_samples import generate_on_ranks


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_generate_then_info(tmp_path, capsys, write_params):
    out = tmp_path / "p.zarr"
    status, stdout, _ = run(capsys, "generate", "poisson", "--out", out, "--params", write_params(), "--n", 6,
                            "--no-progress")
    assert status == 0 and stdout.startswith(f"created {out}")
    status, stdout, _ = run(capsys, "info", out)
    assert status == 0
    assert "poisson (schema 1" in stdout and "6 / 6 done" in stdout and "kappa" in stdout


def test_yaml_exponent_floats_are_numbers(tmp_path, capsys):
    """YAML 1.1 (PyYAML) reads ``2e-1`` as the string '2e-1'; the parameter is the number 0.2 all the same."""
    params = tmp_path / "params.yaml"
    params.write_text("darcy:\n  length: 2e-1\n  variance: 5e-1\n  n: 8\n  samples: 2\n  chunk: 2\n")
    out = tmp_path / "d.zarr"
    status, stdout, err = run(capsys, "generate", "darcy", "--out", out, "--params", params, "--no-progress")
    assert status == 0, err
    assert "length=0.2" in stdout and "variance=0.5" in stdout


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for command in ("generate", "info", "verify", "plot"):
        assert command in text
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    assert "--overwrite" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"n": 0}, "poisson.n: 0 is too small; need an integer >= 2"),
        ({"kx": [4.0, 0.5]}, "poisson.kx: range [4.0, 0.5] is inverted; need low < high"),
        ({"ax": [0.3, 0.3]}, "poisson.ax: range [0.3, 0.3] is empty; need low < high"),
        ({"alpha": "wide"}, "poisson.alpha: 'wide' is not a range; need a list [low, high] of two numbers"),
        ({"samples": -1}, "poisson.samples: -1 is too small; need an integer >= 1"),
        ({"chunk": 2.5}, "poisson.chunk: 2.5 is not an integer"),
        ({"f_decay": float("nan")}, "poisson.f_decay: nan is not allowed; need a finite number"),
        ({"kappa": 1}, "poisson.kappa: unknown key; allowed keys are n, kx"),
    ],
)
def test_bad_params_file_names_key_value_and_rule(tmp_path, capsys, write_params, keys, message):
    status, _, err = run(capsys, "generate", "poisson", "--out", tmp_path / "p.zarr", "--params", write_params(**keys))
    assert status == 2
    assert message in err
    assert not (tmp_path / "p.zarr").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--n", "0"], "--n: 0 is too small; need an integer >= 1"),
        (["--chunk", "0"], "--chunk: 0 is too small; need an integer >= 1"),
        (["--seed", "-1"], "--seed: -1 is too small; need an integer >= 0"),
        (["--params", "missing.yaml"], "--params: missing.yaml does not exist"),
    ],
)
def test_bad_flags(tmp_path, capsys, flags, message):
    status, _, err = run(capsys, "generate", "poisson", "--out", tmp_path / "p.zarr", *flags)
    assert status == 2 and message in err


def test_unknown_problem(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["generate", "heat", "--out", str(tmp_path / "p.zarr")])
    assert exit_.value.code == 2
    assert "invalid choice: 'heat'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="problem: 'heat' is unknown; need one of poisson"):
        generate("heat", tmp_path / "p.zarr")


def test_info_of_a_foreign_path(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    status, _, err = run(capsys, "info", tmp_path)
    assert status == 2 and "not a pde-data store" in err
    status, _, err = run(capsys, "info", tmp_path / "nothing.zarr")
    assert status == 2 and "does not exist" in err


def test_params_yaml_of_the_repository_is_valid():
    params = read_params(Path(__file__).parents[1] / "params.yaml")
    kwargs, settings = problem_config(params, "poisson", PoissonProblem)
    assert kwargs["n"] == 32 and kwargs["kx"] == [0.5, 4.0] and settings["samples"] >= 100


@pytest.mark.mpi
def test_two_ranks_write_the_same_bytes_as_one(tmp_path, write_params):
    stores = generate_on_ranks("poisson", tmp_path, write_params(samples=22, chunk=4))
    files = {r: sorted(p.relative_to(s) for p in s.rglob("*") if p.is_file()) for r, s in stores.items()}
    assert files[1] == files[2] and len(files[1]) > 20
    # every array's metadata and chunks; not the group's zarr.json (the generation seconds) nor the manifest's
    # digests, which bind each chunk to its store's own random id
    compared = [rel for rel in files[1] if rel.parts[0] != "manifest" and rel != Path("zarr.json")]
    assert len(compared) > 20
    for rel in compared:
        assert (stores[1] / rel).read_bytes() == (stores[2] / rel).read_bytes(), rel
    for path in stores.values():
        assert integrity.verify(path)[0].clean
