"""MLMC over Darcy grids (DOLFINx): coupling, agreement with plain FEM MC, CLI, surrogate CV, reused samples."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import yaml

from pde_data.fields import GaussianRandomField, coarsen
from surrogate import config
from surrogate.cli import main as cli_main
from surrogate.mc.adaptive import MultilevelRun, Plan
from surrogate.mc.errors import MCWarning
from surrogate.mc.levels import DarcyHierarchy
from surrogate.mc.records import Records
from surrogate.mc.uq import estimate_to_tolerance
from surrogate.mc.uqconfig import UQConfig
from surrogate.train import QUIET, train
from test_mc import FEM, needs_fem

PROBLEM = {"kernel": "matern", "mean": 0.0, "variance": 1.0, "length": 0.2, "nu": 1.5, "method": "fft",
           "inflow": "left", "outflow": "right", "p_in": 1.0, "p_out": 0.0}


def _se(values: np.ndarray) -> float:
    return float(values.std(ddof=1) / np.sqrt(len(values)))


def test_cell_averaged_fields_are_exactly_the_block_averages():
    """The field drawn at 4 x 4 with average 4 has the covariance of the 4 x 4 block means of the 16 x 16
    point field, and coarsening a draw at 8 with average 2 gives that same distribution (exact covariances)."""
    fine = GaussianRandomField(16, "matern", 0.0, 1.0, 0.2, 1.5, method="cholesky")
    a = np.zeros((16, 256))
    for i in range(16):
        for j in range(16):
            a[(i // 4) * 4 + j // 4, i * 16 + j] = 1 / 16
    target = a @ fine.covariance @ a.T
    direct = GaussianRandomField(4, "matern", 0.0, 1.0, 0.2, 1.5, method="cholesky", average=4)
    np.testing.assert_allclose(direct.covariance, target, atol=1e-14)
    mid = GaussianRandomField(8, "matern", 0.0, 1.0, 0.2, 1.5, method="cholesky", average=2)
    b = np.zeros((16, 64))
    for i in range(8):
        for j in range(8):
            b[(i // 2) * 4 + j // 2, i * 8 + j] = 1 / 4
    np.testing.assert_allclose(b @ mid.covariance @ b.T, target, atol=1e-14)
    fft = GaussianRandomField(8, "matern", 0.0, 1.0, 0.2, 1.5, average=2)
    np.testing.assert_allclose(fft.embedding.covariance_lags().ravel(), mid.covariance[0], atol=1e-13)
    u = fft.from_normals(np.random.default_rng(0).standard_normal((3, *fft.noise_shape)))
    assert coarsen(u).shape == (3, 4, 4) and coarsen(u)[0, 0, 0] == pytest.approx(u[0, :2, :2].mean())


@needs_fem
def test_coarse_member_of_a_level_has_the_distribution_of_the_next_coarser_fine_member():
    """The telescoping sum is exact: E[Q_8 of level 2's coarsened fields] = E[Q_8 of level 1's own fields]
    and likewise for Q_4 (their means agree within 3 standard errors)."""
    h = DarcyHierarchy(PROBLEM, 16, 4, seed=5)
    levels = {lv.index: lv for lv in h.levels(2)}
    n = 300
    z0, _ = h.sample(levels[0], 0, n)
    z1, _ = h.sample(levels[1], 0, n)
    z2, _ = h.sample(levels[2], 0, n)
    for coarse, fine in ((z2[:, 1] - z2[:, 0], z1[:, 1]), (z1[:, 1] - z1[:, 0], z0[:, 0])):
        assert abs(coarse.mean() - fine.mean()) < 3 * np.hypot(_se(coarse), _se(fine)), (coarse.mean(), fine.mean())
    assert np.var(z2[:, 0]) < np.var(z1[:, 0]) < np.var(z0[:, 0]) / 10  # the differences shrink


@needs_fem
def test_multilevel_and_plain_fem_monte_carlo_agree_on_a_small_darcy_case():
    from pde_data.darcy import DarcyProblem

    out = MultilevelRun(DarcyHierarchy(PROBLEM, 16, 4, seed=6), Plan(rtol=5e-3, pilot=32), Records(None, {})).execute()
    problem = DarcyProblem(n=16, **PROBLEM)
    rng = np.random.default_rng(7)
    q = np.array([problem.solve(problem.draw(rng))["Q"] for _ in range(3000)])
    e = out.estimate
    assert out.status == "converged" and e["se"] <= out.eps * 1.01
    assert abs(e["mean"] - q.mean()) < 3 * np.hypot(e["se"], _se(q)), (e, q.mean(), _se(q))
    cost = {lv.key: out.stats[lv.key].n for lv in out.levels}
    assert cost["L0n4"] > cost["L1n8"] > cost["L2n16"]


@needs_fem
def test_cli_uq_reports_levels_costs_and_resumes(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"darcy": {"n": 8}, "uq": {"pilot": 16, "records": str(tmp_path / "rec")}}))
    args = ["uq", "--params", str(params), "--rtol", "2e-2", "--n-min", "2", "--out", str(tmp_path / "m" / "uq.json"),
            "--plots", str(tmp_path / "plots"), "--no-progress"]
    assert cli_main(args) == 0
    text = capsys.readouterr().out
    for part in ("E[Q] =", "RMSE", "Q8 - Q4", "plain FEM MC at n = 8", "speed-up at equal RMSE", "records ->"):
        assert part in text, part
    flat = json.loads((tmp_path / "m" / "uq.json").read_text())
    meta = json.loads((tmp_path / "m" / "uq.meta.json").read_text())
    assert meta["estimate"]["rmse"] <= 2e-2 * flat["mean"] * 1.01 and meta["status"] == "converged"
    assert [r["n"] for r in meta["levels"]] == [2, 4, 8] and (tmp_path / "plots" / "uq_levels.png").exists()
    records = list((tmp_path / "rec").glob("uq-*.jsonl"))
    assert len(records) == 1
    size = records[0].stat().st_size
    assert cli_main(args) == 0  # resumed: nothing new to sample for the same tolerance
    again = json.loads((tmp_path / "m" / "uq.meta.json").read_text())
    assert records[0].stat().st_size == size and again["resumed"]
    assert meta["cost"]["setup_s"] > 0
    assert again["cost"]["setup_s"] == pytest.approx(meta["cost"]["setup_s"])  # the first run's set-up counts


@needs_fem
@pytest.mark.parametrize(("flags", "message"), [
    (["--n", "12"], "12 is not 4 times a power of 2"),
    (["--rtol", "0"], "uq.rtol: 0 is out of bounds"),
    (["--n", "16", "--max-cost", "0.05", "--rtol", "1e-5"], None),
])
def test_cli_uq_bad_input_gets_one_line(tmp_path, capsys, flags, message):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"darcy": {"n": 8}, "uq": {"pilot": 8, "records": str(tmp_path / "r")}}))
    code = cli_main(["uq", "--params", str(params), "--out", str(tmp_path / "uq.json"), "--plots", str(tmp_path),
                     "--no-progress", *flags])
    out = capsys.readouterr()
    if message is None:  # an unreachable tolerance: the best estimate so far, and what it would need
        assert code == 0 and "status: budget" in out.out and "uq.max_cost_s" in out.out
        return
    assert code == 2 and message in out.err and "Traceback" not in out.err and len(out.err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def coarse_surrogate(tmp_path_factory):
    """A small Darcy surrogate of Q on a real 8 x 8 store (its generation and training are timed and counted)."""
    if not FEM:
        pytest.skip("DOLFINx is not installed")
    from pde_data.generate import generate

    d = tmp_path_factory.mktemp("mlmc-sur")
    params = d / "params.yaml"
    params.write_text(yaml.safe_dump({
        "darcy": {"n": 8, "samples": 600, "chunk": 100, "seed": 0},
        "data": {"split": {"train": 0.8, "val": 0.1, "test": 0.1}},
        "models": {"darcy": {"mlp": {"hidden": [32, 32]}}},
        "train": {"trainer": "adam", "budget_wu": 300, "batch_size": 32, "lr": 0.003, "eval_every_wu": 50,
                  "checkpoint_every_wu": 1000, "eval_train_samples": 0, "device": "cpu"}}))
    generate("darcy", d / "darcy.zarr", params, progress=False)
    train(config.resolve(params, problem="darcy", model="mlp", trainer="adam"), d / "darcy.zarr", d / "model",
          reporting=QUIET)
    return d / "model"


@needs_fem
def test_surrogate_control_variate_agrees_and_counts_the_surrogates_cost(coarse_surrogate):
    cfg = UQConfig(rtol=5e-3, n=16, n_min=4, pilot=32, records=None, device="cpu")
    plain = estimate_to_tolerance(cfg, PROBLEM, records=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MCWarning)  # the darcy section matches the surrogate's store
        cv = estimate_to_tolerance(cfg, PROBLEM, model=coarse_surrogate, records=None)
    o = cv.outcome
    assert [lv.kind for lv in o.levels] == ["surrogate", "coarsest", "difference", "difference"]
    assert 0.5 < o.beta < 1.5 and o.status == "converged"
    v0_plain = plain.outcome.stats["L0n4"].var(np.array([1.0]))
    v0_cv = o.stats["L0n4cv"].var(o.levels[1].weights(o.beta))
    assert v0_cv < v0_plain / 5  # the surrogate takes most of the coarsest level's variance
    a, b = plain.outcome.estimate, o.estimate
    assert abs(a["mean"] - b["mean"]) < 3 * np.hypot(a["se"], b["se"])
    build = cv.surrogate["cost"]
    assert build["training_s"] > 0 and build["data_s"] > 0 and not build["unknown"]
    assert build["data"]["source"].startswith("recorded by pde-data generate")  # the store's generation time
    costs = cv.costs()
    assert costs["total_s"] == pytest.approx(costs["sampling_s"] + costs["setup_s"] + build["total_s"])
    assert "surrogate" in cv.report() and "training" in cv.report()


@needs_fem
def test_mc_reuses_the_test_split_without_new_solves(coarse_surrogate):
    from surrogate import mc

    res = mc.estimate(coarse_surrogate, 3000, fem_n=0, reuse="test", seed=2, device="cpu", sampler="numpy")
    assert res.reuse["samples"] == 60 and res.pairs == 60 and res.control_variate["shared"] == 0
    c = res.cost
    assert c["variance_reduction_equal_total_cost"] < c["variance_reduction_equal_cost"]
    assert c["cost_total_s"] == pytest.approx(c["cost_s"] + c["surrogate_build"]["total_s"])
    ref = mc.estimate(coarse_surrogate, 3000, fem_n=300, seed=3, device="cpu", sampler="numpy")
    a, b = res.control_variate, ref.control_variate
    assert abs(a["mean"] - b["mean"]) < 3 * np.hypot(a["se"], b["se"])
    assert "reused from the store's test split" in res.report() and "equal total cost" in res.report()
    with pytest.raises(mc.MCError, match="reusing them would bias"), warnings.catch_warnings():
        warnings.simplefilter("ignore", MCWarning)  # the override itself is warned about
        mc.estimate(coarse_surrogate, 100, reuse="test", field_params={"length": 0.3}, device="cpu")


@needs_fem
def test_cli_uq_takes_the_problem_from_a_store(coarse_surrogate, tmp_path, capsys):
    """What the DVC stage does: the store's record gives the field, boundary and grid (8); --model adds the CV."""
    store = coarse_surrogate.parent / "darcy.zarr"
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"darcy": {"length": 0.1}}))  # not read: the store's problem is
    args = ["uq", "--store", str(store), "--params", str(params), "--rtol", "3e-2", "--n-min", "4",
            "--model", str(coarse_surrogate),
            "--records", str(tmp_path / "r"), "--out", str(tmp_path / "uq.json"), "--plots", str(tmp_path),
            "--no-progress", "--device", "cpu"]
    assert cli_main(args) == 0
    out = capsys.readouterr()
    assert "over grids 4..8" in out.out and "surrogate control variate" in out.out and "warning" not in out.err
    meta = json.loads((tmp_path / "uq.meta.json").read_text())
    assert meta["surrogate"]["grid"] == 8 and meta["levels"][0]["kind"] == "surrogate"
    assert cli_main([*args[:2], str(tmp_path / "none.zarr"), *args[3:]]) == 2
    assert "does not exist" in capsys.readouterr().err


@needs_fem
def test_a_surrogate_trained_on_another_field_is_warned_about(coarse_surrogate):
    cfg = UQConfig(rtol=5e-2, n=8, n_min=4, pilot=16, records=None, device="cpu")
    with pytest.warns(MCWarning, match="length: trained on 0.2, MC uses 0.3"):
        res = estimate_to_tolerance(cfg, {**PROBLEM, "length": 0.3}, model=coarse_surrogate, records=None)
    assert res.outcome.status == "converged" and res.warnings  # still unbiased, and the report says why
    assert "WARNING" in res.report()
