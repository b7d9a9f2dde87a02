"""surrogate.mc: Monte Carlo of the Darcy outflow QoI, surrogate only and as a control variate."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from pde_data.fields import FIELD_PARAMS
from surrogate import config, mc
from surrogate.cli import main as cli_main
from surrogate.train import QUIET, train
from surrogate_stores import make_darcy_store, make_poisson_store

FIELD = {"kernel": "matern", "mean": 0.0, "variance": 0.5, "length": 0.3, "nu": 1.5}
TINY = {"poisson": {"mlp": {"hidden": [8]}, "cnn": {"conv": [[4, 3, 2]], "fc": [8]}},
        "darcy": {"mlp": {"hidden": [8]}, "cnn": {"conv": [[4, 3, 2]], "fc": [8]}}}
TINY_TRAIN = {"budget_wu": 2, "batch_size": 6, "eval_every_wu": 1, "checkpoint_every_wu": 100,
              "eval_train_samples": 0, "device": "cpu"}


def _fem_available() -> bool:
    code = "try:\n import dolfinx_solver\nexcept ImportError:\n pass\nimport dolfinx"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


FEM = _fem_available()
needs_fem = pytest.mark.skipif(not FEM, reason="DOLFINx is not installed")


def _read_metrics(path: Path) -> tuple[dict, dict]:
    """(the flat metrics DVC reads, the full metrics beside them); the flat file holds numbers only."""
    flat = json.loads(path.read_text())
    assert flat and all(type(v) in (int, float) for v in flat.values()), flat
    return flat, json.loads(path.with_suffix(".meta.json").read_text())


def _train_tiny(store, out, problem, target="Q"):
    params = {"data": {"split": {"train": 0.6, "val": 0.2, "test": 0.2}, "target": {"darcy": target}},
              "models": TINY, "train": TINY_TRAIN}
    cfg = config.resolve(params, problem=problem, model="mlp", trainer="adam")
    train(cfg, store, out, reporting=QUIET)
    return out


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Barely trained models on synthetic stores (no DOLFINx): Darcy Q, Darcy p, Poisson."""
    d = tmp_path_factory.mktemp("mc-synthetic")
    darcy = make_darcy_store(d / "d.zarr", n_samples=20, n=4, chunk=5)
    poisson = make_poisson_store(d / "p.zarr", n_samples=20, n=4, chunk=5)
    return {"darcy_Q": _train_tiny(darcy, d / "darcy-Q", "darcy"),
            "darcy_p": _train_tiny(darcy, d / "darcy-p", "darcy", "p"),
            "poisson": _train_tiny(poisson, d / "poisson", "poisson")}


@pytest.fixture(scope="module")
def darcy_model(tmp_path_factory):
    """A small Darcy surrogate of Q trained on a real `pde-data generate darcy` store (8 x 8 cells)."""
    if not FEM:
        pytest.skip("DOLFINx is not installed")
    from pde_data.generate import generate

    d = tmp_path_factory.mktemp("mc-darcy")
    params = d / "params.yaml"
    params.write_text(yaml.safe_dump({
        "darcy": {"n": 8, "samples": 500, "chunk": 100, "seed": 0},
        "data": {"split": {"train": 0.8, "val": 0.1, "test": 0.1}},
        "models": {"darcy": {"mlp": {"hidden": [32, 32]}}},
        "train": {"trainer": "adam", "budget_wu": 250, "batch_size": 32, "lr": 0.003, "eval_every_wu": 50,
                  "checkpoint_every_wu": 1000, "eval_train_samples": 0, "device": "cpu"},
    }))
    store = d / "darcy.zarr"
    generate("darcy", store, params, progress=False)
    cfg = config.resolve(params, problem="darcy", model="mlp", trainer="adam")
    train(cfg, store, d / "model", reporting=QUIET)
    return {"dir": d / "model", "store": store, "params": params}


# --------------------------------------------------------------------------
# the estimator core
# --------------------------------------------------------------------------
def test_control_variate_formulas_and_shift_invariance():
    rng = np.random.default_rng(0)
    s_all = rng.normal(1.0, 0.5, 500)
    m = 40
    f = 2.0 * s_all[:m] + 0.3 + rng.normal(0, 0.2, m)
    cv = mc.control_variate(f, s_all[:m], s_all)
    beta = np.cov(f, s_all[:m])[0, 1] / s_all[:m].var(ddof=1)
    assert cv["beta"] == pytest.approx(beta)
    # the two forms of the estimator
    assert cv["mean"] == pytest.approx((f - beta * s_all[:m]).mean() + beta * s_all.mean())
    assert cv["mean"] == pytest.approx(f.mean() + beta * (s_all.mean() - s_all[:m].mean()))
    var = (f - beta * s_all[:m]).var(ddof=1) / m + beta**2 * s_all.var(ddof=1) / s_all.size
    assert cv["se"] == pytest.approx(math.sqrt(var))
    assert cv["ci95_low"] == pytest.approx(cv["mean"] - 1.959963984540054 * cv["se"])
    # a constant shift of the surrogate changes neither beta nor the estimate
    shifted = mc.control_variate(f, s_all[:m] + 7.5, s_all + 7.5)
    assert shifted["beta"] == pytest.approx(cv["beta"], rel=1e-9)
    assert shifted["mean"] == pytest.approx(cv["mean"], rel=1e-9)
    assert shifted["se"] == pytest.approx(cv["se"], rel=1e-6)
    # a fixed beta: the nested-design covariance term enters the variance
    fixed = mc.control_variate(f, s_all[:m], s_all, beta=1.0)
    cov, vs = np.cov(f, s_all[:m])[0, 1], s_all[:m].var(ddof=1)
    var1 = (f - s_all[:m]).var(ddof=1) / m + s_all.var(ddof=1) / s_all.size + 2 * (cov - vs) / s_all.size
    assert fixed["se"] == pytest.approx(math.sqrt(var1))
    # cost-optimal allocation: the closed form (sqrt(1 - rho^2) + sqrt(rho^2 w_lo / w_hi))^2 of two-model MFMC
    rho, w_lo, w_hi = 0.97, 1e-4, 4e-3
    opt = mc.optimal_allocation(rho, w_lo, w_hi, w_hi)
    assert 1 / opt["variance_reduction_optimal"] == pytest.approx(
        (math.sqrt(1 - rho**2) + math.sqrt(rho**2 * w_lo / w_hi)) ** 2)
    assert opt["optimal_n_over_m"] == pytest.approx(math.sqrt(w_hi * rho**2 / (w_lo * (1 - rho**2))))
    assert mc.optimal_allocation(0.1, w_lo, w_hi, w_hi)["optimal_n_over_m"] == 1.0  # useless surrogate: N = M
    plain = mc.plain_mc(f)
    assert plain["se"] == pytest.approx(f.std(ddof=1) / math.sqrt(m)) and plain["var"] == pytest.approx(f.var(ddof=1))


def test_control_variate_is_unbiased_with_a_shifted_surrogate():
    """Cheap stand-ins: Q_hi = mean(exp(u)) (E = exp(variance / 2) exactly), Q_sur = Q_hi + c + noise.

    Over many independent runs the control-variate estimates average to the truth and their 95% CIs
    cover it about 95% of the time, while the surrogate-only estimates are off by c."""
    c = 0.5
    truth = math.exp(FIELD["mean"] + FIELD["variance"] / 2)

    def hifi(u):
        return float(np.exp(u).mean())

    def shifted_surrogate(x):  # E[0.3 sin(sum u)] = 0: the surrogate's mean error is exactly c
        return np.exp(x).mean(axis=(1, 2)) + c + 0.3 * np.sin(x.sum(axis=(1, 2)))

    reps = 200
    cv, so, se, cover = [], [], [], 0
    for r in range(reps):
        res = mc.estimate(shifted_surrogate, 300, fem_n=20, seed=r, grid=4, field_params=FIELD, hifi=hifi,
                          device="cpu")
        k = res.control_variate
        cv.append(k["mean"])
        se.append(k["se"])
        so.append(res.surrogate["mean"])
        cover += k["ci95_low"] <= truth <= k["ci95_high"]
    cv, so = np.array(cv), np.array(so)
    sd_mean = cv.std(ddof=1) / math.sqrt(reps)
    assert abs(cv.mean() - truth) < 4 * sd_mean, (cv.mean(), truth, sd_mean)
    assert abs(so.mean() - (truth + c)) < 4 * so.std(ddof=1) / math.sqrt(reps)
    assert 0.88 <= cover / reps <= 0.99
    assert np.mean(se) == pytest.approx(cv.std(ddof=1), rel=0.2)  # the standard error is honest
    # bitwise the same fields and FEM values without the shift: the same estimate
    a = mc.estimate(shifted_surrogate, 300, fem_n=20, seed=3, grid=4, field_params=FIELD, hifi=hifi, device="cpu")
    b = mc.estimate(lambda x: shifted_surrogate(x) - c, 300, fem_n=20, seed=3, grid=4, field_params=FIELD,
                    hifi=hifi, device="cpu")
    assert a.control_variate["mean"] == pytest.approx(b.control_variate["mean"], rel=1e-12)
    assert a.surrogate["mean"] - b.surrogate["mean"] == pytest.approx(c)


def test_write_json_splits_the_numbers_from_the_metadata(tmp_path):
    """DVC's metrics file: flat finite numbers; everything else in the .meta.json beside it."""
    def hifi(u):
        return float(np.exp(u).mean())

    res = mc.estimate(lambda x: np.exp(x).mean(axis=(1, 2)) + 0.1, 200, fem_n=10, seed=0, grid=4,
                      field_params=FIELD, hifi=hifi, device="cpu")
    flat, meta = _read_metrics(res.write_json(tmp_path / "m" / "mc.json"))
    assert set(flat) == {"mean", "se", "variance_reduction_equal_total_cost"}
    assert res.cost["cost_total_s"] == res.cost["cost_s"]  # a bare callable costs nothing to build
    assert flat["mean"] == res.control_variate["mean"] and flat["se"] == res.control_variate["se"]
    assert flat["variance_reduction_equal_total_cost"] == res.cost["variance_reduction_equal_total_cost"]
    assert meta == json.loads(json.dumps(res.metrics())) and meta["field"] == {**FIELD, "method": "fft"}
    assert meta["device"] == "cpu"
    assert meta["estimate"]["method"] == "control_variate" and meta["seed"] == 0
    assert meta["n"] == 200 and meta["fem_n"] == 10


def test_fresh_fields_never_reuse_store_samples_and_follow_the_field():
    from pde_data.fields import GaussianRandomField

    sampler = mc.FieldSampler(6, FIELD, seed=0)
    x = sampler.draw(0, 8)
    grf = GaussianRandomField(6, **FIELD)
    for i in range(8):  # the same seed as a store: still other fields
        assert not np.allclose(x[i], grf.sample_index(0, i).astype(np.float32))
    # sample i depends on (seed, i) alone, not on the batch it is drawn in
    assert np.allclose(np.concatenate([sampler.draw(0, 3), sampler.draw(3, 8)]), x, rtol=0, atol=1e-6)
    assert np.allclose(mc.FieldSampler(6, FIELD, seed=0).draw(5, 6)[0], x[5], rtol=0, atol=1e-6)
    assert not np.allclose(mc.FieldSampler(6, FIELD, seed=1).draw(0, 1)[0], x[0])
    assert np.array_equal(x, x.astype(np.float32))  # float32 values, like the stored fields
    # moments: mean and covariance of the Gaussian random field
    big = mc.FieldSampler(6, FIELD, seed=2).draw(0, 4000).reshape(4000, -1)
    assert abs(big.mean()) < 0.05
    assert np.allclose(np.cov(big.T), grf.covariance, atol=0.06)


# --------------------------------------------------------------------------
# against the FEM model
# --------------------------------------------------------------------------
@needs_fem
def test_estimates_cover_a_large_plain_fem_estimate(darcy_model, tmp_path):
    import surrogate
    from pde_data.darcy import DarcyProblem

    model = surrogate.load(darcy_model["dir"])
    store_params = model.meta["store"]["params"]
    assert {k: store_params[k] for k in FIELD_PARAMS} == {"kernel": "matern", "mean": 0.0, "variance": 1.0,
                                                          "length": 0.2, "nu": 1.5, "method": "fft"}
    problem = DarcyProblem(**{k: v for k, v in store_params.items() if v is not None})
    ref_fields = mc.FieldSampler(8, store_params, seed=10_000).draw(0, 8000)
    ref = mc.plain_mc([problem.solve(u)["Q"] for u in ref_fields])

    with warnings.catch_warnings():
        warnings.simplefilter("error", mc.MCWarning)  # same field params as the training store: no warning
        res = mc.estimate(darcy_model["dir"], 1000, fem_n=50, seed=1, device="cpu", sampler="numpy")
    s, k = res.surrogate, res.control_variate
    assert s["ci95_low"] <= ref["mean"] <= s["ci95_high"], (s, ref)
    assert k["ci95_low"] <= ref["mean"] <= k["ci95_high"], (k, ref)
    assert res.best["method"] == "control_variate" and res.best["mean"] == k["mean"]
    assert res.fem["n"] == 50 and res.q_fem.shape == (50,) and res.q_sur.shape == (1000,)
    # the FEM values are those of the first M fields of the surrogate run
    first = mc.FieldSampler(8, store_params, seed=1).draw(0, 2)
    assert res.q_fem[:2] == pytest.approx([problem.solve(u)["Q"] for u in first], rel=1e-9)
    # a good surrogate: strong correlation, variance reduction at equal cost
    assert k["rho"] > 0.9 and k["se"] < res.fem["se"]
    c = res.cost
    assert c["variance_reduction_equal_cost"] > 1 and c["t_fem_s"] > c["t_surrogate_s"]
    assert c["fem_equal_cost"] == pytest.approx(c["cost_s"] / (c["t_field_s"] + c["t_fem_s"]))
    assert c["variance_reduction_equal_cost"] == pytest.approx(
        res.fem["var"] / c["fem_equal_cost"] / k["var_estimator"])
    assert abs(res.surrogate_error["mean"]) < 0.1
    text = res.report()
    assert "biased" in text and "control variate" in text and "variance reduction" in text

    # the same with the surrogate deliberately shifted: CV unchanged, surrogate-only off by the shift
    shifted = mc.estimate(lambda x: model.predict(x) + 0.3, 1000, fem_n=50, seed=1, grid=8,
                          field_params={k: store_params[k] for k in FIELD_PARAMS}, hifi=problem.solve)
    assert shifted.control_variate["mean"] == pytest.approx(k["mean"], rel=1e-6)
    assert shifted.surrogate["mean"] == pytest.approx(s["mean"] + 0.3, rel=1e-6)
    assert shifted.surrogate_error["mean"] == pytest.approx(res.surrogate_error["mean"] + 0.3, rel=1e-6)


@needs_fem
def test_cli_mc_writes_metrics_and_histogram(darcy_model, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"mc": {"n": 400, "fem_n": 10, "seed": 5, "batch_size": 128, "reuse": "none",
                                             "device": "cpu", "field": {"variance": 0.5}}}))
    out, plots = tmp_path / "m" / "mc.json", tmp_path / "plots"
    rc = cli_main(["mc", "--model", str(darcy_model["dir"]), "--fem-n", "20", "--params", str(params),
                   "--out", str(out), "--plots", str(plots), "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "variance: trained on 1.0, MC uses 0.5" in cap.err  # warned: other fields than in training
    assert "E[Q_sur]" in cap.out and "control variate" in cap.out
    flat, m = _read_metrics(out)
    assert flat["mean"] == m["control_variate"]["mean"] and flat["se"] == m["control_variate"]["se"]
    assert flat["variance_reduction_equal_total_cost"] == m["cost"]["variance_reduction_equal_total_cost"]
    assert m["n"] == 400 and m["fem_n"] == 20 and m["seed"] == 5 and m["field"]["variance"] == 0.5
    assert m["field_differs"] and m["estimate"]["method"] == "control_variate"
    for key in ("mean", "se", "ci95_low", "ci95_high", "var"):
        assert type(m["surrogate"][key]) is float
    for key in ("mean", "se", "ci95_low", "ci95_high", "beta", "var_estimator"):
        assert type(m["control_variate"][key]) is float
    for key in ("t_field_s", "t_surrogate_s", "t_fem_s", "variance_reduction_equal_cost"):
        assert type(m["cost"][key]) is float
    assert (plots / "mc_qoi_hist.png").stat().st_size > 10_000


# --------------------------------------------------------------------------
# refusals
# --------------------------------------------------------------------------
def test_bad_inputs_are_refused(tiny_models, tmp_path, capsys):
    darcy, poisson = tiny_models["darcy_Q"], tiny_models["poisson"]
    for n in (0, -5, 1):
        with pytest.raises(config.ConfigError, match=rf"mc.n: {n} is too small; need an integer >= 2"):
            mc.estimate(darcy, n, field_params=FIELD, device="cpu")
    with pytest.raises(config.ConfigError, match="mc.fem_n: 11 is not allowed.*need fem_n <= n = 10"):
        mc.estimate(darcy, 10, fem_n=11, field_params=FIELD, device="cpu")
    with pytest.raises(config.ConfigError, match="mc.fem_n: 2 is not allowed.*at least 3 FEM solves"):
        mc.estimate(darcy, 10, fem_n=2, field_params=FIELD, device="cpu")
    with pytest.raises(mc.MCError, match="'poisson' surrogate.*needs a Darcy surrogate"):
        mc.estimate(poisson, 100, field_params=FIELD, device="cpu")
    with pytest.raises(mc.MCError, match=r"predicts \['p'\], not the outflow QoI Q"):
        mc.estimate(tiny_models["darcy_p"], 100, field_params=FIELD, device="cpu")
    with pytest.raises(mc.MCError, match="random-field parameters .* are unknown"):  # synthetic store: no params
        mc.estimate(darcy, 100, device="cpu")
    with pytest.raises(mc.MCError, match="fields are 5 x 5, the surrogate's grid is 4 x 4"):
        mc.estimate(darcy, np.zeros((10, 5, 5)), device="cpu")
    with pytest.raises(config.ConfigError, match=r"mc.field.variance: -1.0 is not allowed; need a number > 0"):
        mc.estimate(darcy, 100, field_params={**FIELD, "variance": -1}, device="cpu")
    with pytest.raises(config.ConfigError, match="mc.field.sigma: unknown key"):
        mc.estimate(darcy, 100, field_params={"sigma": 1.0}, device="cpu")
    with pytest.raises(config.ConfigError, match="mc.samples: unknown key"):
        config.resolve_mc({"mc": {"samples": 3}})
    with pytest.raises(config.ConfigError, match="mc.device: 'gpu' is not allowed"):
        config.resolve_mc({"mc": {"device": "gpu"}})
    # the CLI: one clear line, exit status 2
    for argv, msg in ((["--n", "0"], "mc.n: 0 is too small; need an integer >= 2"),
                      (["--n", "-3"], "mc.n: -3 is too small; need an integer >= 2"),
                      (["--model", str(poisson)], "needs a Darcy surrogate")):
        model = [] if "--model" in argv else ["--model", str(darcy)]
        rc = cli_main(["mc", *model, *argv, "--out", str(tmp_path / "x.json"), "--plots", str(tmp_path)])
        err = capsys.readouterr().err
        assert rc == 2 and msg in err and "Traceback" not in err
    assert not (tmp_path / "x.json").exists()


def test_params_section_of_the_repository_is_valid():
    cfg = config.resolve_mc(Path(__file__).resolve().parents[1] / "params.yaml")
    assert cfg.n >= 2 and cfg.fem_n >= 0 and cfg.device in ("auto", "cpu", "cuda")
    assert config.resolve_mc({}, n=50, fem_n=0).n == 50


# --------------------------------------------------------------------------
# the surrogate-only path needs no FEM stack
# --------------------------------------------------------------------------
def test_surrogate_only_runs_without_dolfinx(tiny_models, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"mc": {"n": 300, "fem_n": 0, "device": "cpu", "field": FIELD, "reuse": "none"}}))
    out = tmp_path / "mc.json"
    code = f"""
import sys
for name in ("dolfinx", "dolfinx_solver", "basix", "ufl", "petsc4py", "mpi4py", "pde_data.darcy",
             "pde_data.generate"):
    sys.modules[name] = None  # any import of the FEM stack fails
from surrogate.cli import main
args = ["mc", "--model", {str(tiny_models["darcy_Q"])!r}, "--params", {str(params)!r}, "--no-progress",
        "--out", {str(out)!r}, "--plots", {str(tmp_path)!r}]
assert main(args) == 0
assert "pde_data.fields" in sys.modules
assert main(args[:-4] + ["--fem-n", "5", "--out", {str(tmp_path / "fem.json")!r}]) == 2
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "E[Q_sur]" in run.stdout
    assert "need the FEM stack (DOLFINx via pde_data.darcy)" in run.stderr
    assert "training store records no (or incomplete) field parameters" in run.stderr
    flat, m = _read_metrics(out)
    assert set(flat) == {"mean", "se"}   # surrogate only: no variance reduction
    assert m["fem_n"] == 0 and m["estimate"]["method"].startswith("surrogate_only") and "control_variate" not in m
    assert (tmp_path / "mc_qoi_hist.png").exists()


def test_the_torch_sampler_draws_the_same_field_statistically():
    """Fields drawn with torch (on the surrogate's device; the CPU here) have the numpy sampler's statistics."""
    import torch

    from pde_data.fields import GaussianRandomField

    n, count = 8, 4000
    ref = mc.FieldSampler(n, FIELD, seed=3).draw(0, count).reshape(count, -1)
    dev = mc.FieldSampler(n, FIELD, seed=3, device=torch.device("cpu"))
    got = dev.draw(0, count)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    got = got.double().numpy().reshape(count, -1)
    cov = GaussianRandomField(n, **FIELD).covariance
    # the empirical covariance at several lags agrees with the target within Monte Carlo error
    # (sd of a sample covariance ~ variance * sqrt(2 / count) = 0.011 here; 5 sd allowed)
    for lag in (0, 1, 3, 7, n, n + 1):
        target = np.diag(cov, lag).mean()
        for fields in (ref, got):
            sample = np.mean([np.cov(fields[:, i], fields[:, i + lag])[0, 1] for i in range(n * n - lag)])
            assert abs(sample - target) < 0.06, (lag, sample, target)
    assert abs(got.mean()) < 0.03
    # field i depends on (seed, i) alone: not on how the draws are batched
    again = torch.cat([dev.draw(0, 300), dev.draw(300, 700)]).double().numpy().reshape(700, -1)
    np.testing.assert_array_equal(again, got[:700])


@pytest.mark.parametrize("n", [8, 13])
def test_the_torch_samplers_dft_products_equal_its_fft(n, monkeypatch):
    """The DFT matrix products (small tori) compute the same fields as torch.fft (large tori), odd n included."""
    import torch

    from surrogate.mc import fields

    by_products = fields.FieldSampler(n, FIELD, seed=5, device=torch.device("cpu"))
    assert by_products._dft is not None
    monkeypatch.setattr(fields, "DFT_MATMUL_MAX_SIDE", 0)
    by_fft = fields.FieldSampler(n, FIELD, seed=5, device=torch.device("cpu"))
    assert by_fft._dft is None
    a, b = by_products.draw(0, 300), by_fft.draw(0, 300)
    assert a.shape == b.shape == (300, n, n)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=2e-5)
