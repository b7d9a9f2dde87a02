"""Darcy stores end to end: layout, reproducibility, resume, refusals, CLI (generate, plot), MPI."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import zarr

from pde_data.generate import generate  # before dolfinx: orders MPI
from pde_data.store import StoreError, open_store_group
from store_samples import assert_same_samples as assert_same
from store_samples import generate_on_ranks, mpiexec, read_samples

FIELDS = ("log_k", "p", "Q", "Q_in")
SMALL = {"n": 8, "samples": 12, "chunk": 4, "seed": 0}


read = partial(read_samples, fields=FIELDS)
assert_same_samples = partial(assert_same, fields=FIELDS)


def test_layout_attributes_and_samples_from_seed_and_index(tmp_path, write_params):
    out = tmp_path / "d.zarr"
    assert generate("darcy", out, write_params("darcy", **SMALL, variance=0.5), progress=False) == "created"
    group, rec = open_store_group(out)
    assert group["done"][:].all()
    assert group["log_k"].shape == (12, 8, 8) and group["log_k"].chunks == (4, 8, 8)
    assert group["p"].shape == (12, 8, 8) and group["p"].dtype == np.float32
    assert group["Q"].shape == (12,) and group["Q_in"].shape == (12,) and group["Q"].dtype == np.float64
    assert group["x"].shape == (8,) and group["x"][0] == np.float32(1 / 16)
    assert group["y"][-1] == np.float32(15 / 16) and group["p"].metadata.dimension_names == ("sample", "y", "x")
    assert rec["problem"] == "darcy"
    assert rec["params"] == {
        "n": 8, "kernel": "matern", "mean": 0.0, "variance": 0.5, "length": 0.2, "nu": 1.5, "method": "fft",
        "inflow": "left", "outflow": "right", "p_in": 1.0, "p_out": 0.0,
    }
    data = read(out)
    np.testing.assert_allclose(data["Q"], data["Q_in"], rtol=1e-11)
    assert np.all(data["Q"] > 0)
    # sample i is the solve of draw(SeedSequence((seed, i))), whatever else is in the store
    from pde_data.darcy import DarcyProblem
    from pde_data.fields import sample_rng

    problem = DarcyProblem(n=8, variance=0.5)
    for i in (0, 7, 11):
        ref = problem.solve(problem.draw(sample_rng(0, i)))
        np.testing.assert_array_equal(data["log_k"][i], ref["log_k"].astype(np.float32))
        np.testing.assert_array_equal(data["p"][i], ref["p"].astype(np.float32))
        assert data["Q"][i] == ref["Q"] and data["Q_in"][i] == ref["Q_in"]


def test_content_independent_of_chunking(tmp_path, write_params):
    generate("darcy", tmp_path / "a.zarr", write_params("darcy", **SMALL), progress=False)
    generate("darcy", tmp_path / "b.zarr", write_params("darcy", **{**SMALL, "chunk": 5}), progress=False)
    generate("darcy", tmp_path / "c.zarr", write_params("darcy", **{**SMALL, "seed": 1}), progress=False)
    a, b, c = (read(tmp_path / f"{k}.zarr") for k in "abc")
    assert_same_samples(a, b)
    assert not np.array_equal(a["log_k"], c["log_k"])


def test_resume_fills_only_missing_chunks(tmp_path, write_params, monkeypatch):
    params = write_params("darcy", **SMALL)
    out = tmp_path / "d.zarr"
    generate("darcy", out, params, progress=False)
    reference = read(out)
    group = zarr.open_group(out, mode="r+")
    group["done"][8:12] = False  # the last chunk "was in flight"
    group["p"][8:12] = 0.0
    group["Q"][8:12] = 0.0

    import pde_data.generate as gen

    solved = []
    original = gen.solve_chunk
    monkeypatch.setattr(gen, "solve_chunk", lambda fam, seed, a, b: solved.append((a, b)) or original(fam, seed, a, b))
    assert generate("darcy", out, params, progress=False) == "resumed"
    assert solved == [(8, 12)]
    assert_same_samples(read(out), reference)


@pytest.mark.parametrize(
    ("change", "diff"),
    [
        ({"variance": 2.0}, "params.variance"),
        ({"kernel": "exponential"}, "params.kernel"),
        ({"p_in": 2.0}, "params.p_in"),
    ],
)
def test_mismatched_parameters_are_refused(tmp_path, write_params, change, diff):
    out = tmp_path / "d.zarr"
    generate("darcy", out, write_params("darcy", **SMALL), progress=False)
    with pytest.raises(StoreError, match=diff.replace(".", r"\.")):
        generate("darcy", out, write_params("darcy", **SMALL, **change), progress=False)
    assert read(out)["done"].all()  # untouched


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"variance": -1.0}, "darcy.variance: -1.0"),
        ({"variance": 0}, "darcy.variance: 0"),
        ({"length": 0.0}, "darcy.length: 0.0"),
        ({"kernel": "gaussian"}, "darcy.kernel: 'gaussian' is not allowed"),
        ({"kernel": "matern", "nu": 0.7}, "darcy.nu: 0.7"),
        ({"mean": 100.0}, "overflow"),
        ({"outflow": "left"}, "darcy.outflow: 'left'"),
        ({"inflow": "north"}, "darcy.inflow: 'north'"),
        ({"tau": 1.0}, "darcy.tau: unknown key"),
    ],
)
def test_cli_reports_bad_values(tmp_path, write_params, capsys, keys, message):
    from pde_data.cli import main

    out = tmp_path / "d.zarr"
    params = write_params("darcy", **SMALL, **keys)
    rc = main(["generate", "darcy", "--out", str(out), "--params", str(params), "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "need" in err or "allowed" in err, err
    assert not out.exists()


def test_cli_generate_and_plot(tmp_path, write_params, capsys):
    from pde_data.cli import main

    out = tmp_path / "d.zarr"
    params = write_params("darcy", **SMALL)
    assert main(["generate", "darcy", "--out", str(out), "--params", str(params), "--no-progress"]) == 0
    assert "darcy" in capsys.readouterr().out
    assert main(["plot", str(out), "--samples", "2"]) == 0
    png = tmp_path / "d_samples.png"
    assert capsys.readouterr().out.strip() == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", str(out), "--index", "3", "--out", str(tmp_path / "one.png")]) == 0
    assert (tmp_path / "one.png").exists()
    assert main(["plot", str(out), "--index", "12"]) == 2
    assert "sample 12 is not in the store" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("")
    assert main(["plot", str(out), "--out", str(tmp_path / "a-file" / "p.png")]) == 2   # nothing drawn, one line
    assert "cannot write there" in capsys.readouterr().err


@pytest.mark.mpi
@pytest.mark.skipif(mpiexec() is None, reason="no mpiexec")
def test_one_and_two_ranks_write_identical_stores(tmp_path, write_params):
    paths = generate_on_ranks("darcy", tmp_path, write_params("darcy", n=16, samples=40, chunk=4, seed=3))
    stores = {ranks: read(out) for ranks, out in paths.items()}
    assert stores[1]["done"].all() and stores[2]["done"].all()
    assert_same_samples(stores[1], stores[2])
