"""Multilevel Monte Carlo machinery on a toy with a known mean (numpy only): estimators, coverage, records.

The coverage tests run each estimator over at least 400 independent repetitions
(fixed seeds) and check that its 95% interval covers the known mean in
95% +- 3% of them (the binomial standard deviation of the coverage is 1.1%).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mlmc_toy import ToyHierarchy, true_mean
from surrogate.mc.adaptive import MultilevelRun, Plan, check_plan
from surrogate.mc.errors import MCError
from surrogate.mc.estimators import control_variate, cross_fit, plain_mc
from surrogate.mc.levels import level_grids
from surrogate.mc.mlmc import Moments, allocation, bias_estimate, decay_rate, optimal_cost, sampling_variance
from surrogate.mc.records import Records

REPS = 400
COVERAGE = (0.92, 0.98)


def _covers(est: dict, truth: float) -> bool:
    return est["ci95_low"] <= truth <= est["ci95_high"]


def _run(h, plan, records=None):
    return MultilevelRun(h, plan, records or Records(None, {})).execute()


# --------------------------------------------------------------------------
# the formulas
# --------------------------------------------------------------------------
def test_moments_merge_equals_the_pooled_moments():
    z = np.random.default_rng(0).standard_normal((1000, 3)) * [1.0, 1e-4, 3.0] + [5.0, 0.0, -1.0]
    merged = Moments.of(z[:10]).merge(Moments.of(z[10:700])).merge(Moments.empty(3)).merge(Moments.of(z[700:]))
    whole = Moments.of(z)
    assert merged.n == 1000
    np.testing.assert_allclose(merged.mean, whole.mean, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(merged.cov(), np.cov(z.T), rtol=1e-11, atol=1e-18)
    assert Moments.from_dict(json.loads(json.dumps(merged.to_dict()))).n == 1000


def test_giles_allocation_minimises_cost_for_the_variance():
    v, c, eps2 = np.array([0.2, 1e-3, 1e-4, 1e-5]), np.array([1.0, 2.5, 10.0, 45.0]), 1e-6
    n = allocation(v, c, eps2)
    assert sampling_variance(v, n) <= eps2 * (1 + 1e-12)
    cost = float(n @ c)
    assert cost == pytest.approx(optimal_cost(v, c, eps2), rel=1e-3)
    for k in range(4):  # moving 5% of a level's cost to another level only raises the variance
        worse = n.astype(float).copy()
        worse[k] *= 0.95
        worse[(k + 1) % 4] += 0.05 * n[k] * c[k] / c[(k + 1) % 4]
        assert sampling_variance(v, worse) > sampling_variance(v, n)


def test_allocation_and_variance_agree_with_pyapprox():
    """PyApprox's MLMC allocation (Giles' formula with model-pair costs) is the reference."""
    pytest.importorskip("pyapprox")
    from pyapprox.statest import MLMCEstimator, MultiOutputMean
    from pyapprox.statest.acv.allocation import default_allocator_factory
    from pyapprox.util.backends.numpy import NumpyBkd

    x = np.random.default_rng(1).standard_normal((50_000, 3))
    models = np.stack([ToyHierarchy.p(x, l) for l in (2, 1, 0)], axis=1)  # highest fidelity first
    cov, costs, budget = np.cov(models.T), np.array([16e-3, 4e-3, 1e-3]), 100.0
    bkd = NumpyBkd()
    stat = MultiOutputMean(1, bkd)
    stat.set_pilot_quantities(bkd.asarray(cov))
    ref = default_allocator_factory(MLMCEstimator(stat, bkd.asarray(costs))).allocate(budget)

    # ours: level 0 = P_0, level l = P_l - P_{l-1}, a pair costs both models
    v = np.array([cov[2, 2], cov[1, 1] + cov[2, 2] - 2 * cov[1, 2], cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]])
    c = np.array([costs[2], costs[1] + costs[2], costs[0] + costs[1]])
    eps2 = float(np.sum(np.sqrt(v * c))) ** 2 / budget  # the variance that the budget buys
    continuous = np.sqrt(v / c) * np.sum(np.sqrt(v * c)) / eps2
    np.testing.assert_allclose(continuous, np.asarray(ref.continuous_npartition_samples)[::-1], rtol=1e-9)
    assert math.log(sampling_variance(v, continuous)) == pytest.approx(float(ref.objective_value[0]), rel=1e-9)


def test_rates_and_bias_estimate():
    means = [1.0, 0.5, 0.25, 0.125]
    assert decay_rate(means) == pytest.approx(1.0)
    assert bias_estimate(means, 1.0) == pytest.approx(0.125)  # the rest of a geometric series
    assert decay_rate([1.0, 1.0, 1.0]) == 0.5  # the floor
    assert bias_estimate([1.0], 1.0) == math.inf


def test_grids_that_cannot_be_coarsened_are_refused():
    assert level_grids(128, 4) == [4, 8, 16, 32, 64, 128]
    assert level_grids(8, 8) == [8]
    with pytest.raises(MCError, match="33 cannot be coarsened.*odd"):
        level_grids(33, 4)
    with pytest.raises(MCError, match="48 is not 4 times a power of 2"):
        level_grids(48, 4)
    with pytest.raises(MCError, match="need 1 <= coarsest <= finest"):
        level_grids(4, 8)
    for bad in (Plan(rtol=None, atol=None), Plan(rtol=-1.0), Plan(theta=1.0), Plan(replicates=1)):
        with pytest.raises(MCError):
            check_plan(bad)


# --------------------------------------------------------------------------
# coverage of the 95% intervals (>= 400 repetitions each)
# --------------------------------------------------------------------------
def test_plain_monte_carlo_covers_the_known_mean():
    x = np.random.default_rng(2).standard_normal((REPS, 200))
    q = np.exp(0.5 * x)  # E = exp(1/8)
    cover = np.mean([_covers(plain_mc(row), math.exp(0.125)) for row in q])
    assert COVERAGE[0] <= cover <= COVERAGE[1], cover


def test_control_variate_covers_the_known_mean_nested_and_reused():
    """Nested pairs (the M among the N) and reused pairs (independent of the N, shared = 0)."""
    rng = np.random.default_rng(3)
    truth = math.exp(0.08) + 1.0
    m, n = 60, 2000
    nested, reused = [], []
    for _ in range(REPS):
        x = rng.standard_normal((n + m, 3))
        f, g = ToyHierarchy.p(x, 0), ToyHierarchy.g(x) + 0.3  # a biased surrogate: the CV corrects it
        nested.append(_covers(control_variate(f[:m], g[:m], g[:n]), truth))
        reused.append(_covers(control_variate(f[n:], g[n:], g[:n], shared=0), truth))
    assert COVERAGE[0] <= np.mean(nested) <= COVERAGE[1], np.mean(nested)
    assert COVERAGE[0] <= np.mean(reused) <= COVERAGE[1], np.mean(reused)


def test_cross_fitting_covers_the_known_mean():
    """K = 5 least-squares surrogates, each fitted without its fold: every FEM sample is a pair."""
    rng = np.random.default_rng(4)
    truth, m, n, k = math.exp(0.08) + 1.0, 100, 2000, 5
    fold = np.arange(m) % k
    cover = []
    for _ in range(REPS):
        x, fresh = rng.standard_normal((m, 3)), rng.standard_normal((n, 3))
        f = ToyHierarchy.p(x, 0)

        def features(u):
            return np.stack([np.ones(len(u)), u[:, 0], u[:, 0] ** 2, u[:, 1]], axis=1)

        coef = [np.linalg.lstsq(features(x[fold != j]), f[fold != j], rcond=None)[0] for j in range(k)]
        paired = np.array([features(x[i:i + 1]) @ coef[fold[i]] for i in range(m)]).reshape(-1)
        on_fresh = np.stack([features(fresh) @ c for c in coef])
        cover.append(_covers(cross_fit(f, paired, fold, on_fresh), truth))
    assert COVERAGE[0] <= np.mean(cover) <= COVERAGE[1], np.mean(cover)


@pytest.mark.parametrize(("cv", "replicates"), [
    (False, 0), (True, 0), pytest.param(False, 16, marks=pytest.mark.slow)], ids=["mlmc", "mlmc+cv", "mlqmc"])
def test_multilevel_covers_the_known_mean(cv, replicates):
    """The whole adaptive algorithm (pilot, beta, allocation rounds) per repetition, target E[P_3].

    MLQMC (slow, 20 s): R = 16 randomizations cover in 93.0% (R = 8: 89.5%, R = 32: 93.25%): stopping when
    the variance estimate from R means first falls below the target makes the interval a little optimistic.
    """
    plan = Plan(rtol=4e-2, pilot=32, replicates=replicates)
    cover = [_covers(_run(ToyHierarchy(3, seed=r, cv=cv, qmc=replicates > 0), plan).estimate, true_mean(3))
             for r in range(REPS)]
    assert COVERAGE[0] <= np.mean(cover) <= COVERAGE[1], np.mean(cover)


# --------------------------------------------------------------------------
# the algorithm
# --------------------------------------------------------------------------
def test_fixed_grid_run_meets_the_tolerance_with_giles_allocation():
    out = _run(ToyHierarchy(4, seed=7), Plan(rtol=1e-2, pilot=64))
    assert out.status == "converged" and out.estimate["bias"] == 0.0
    assert out.estimate["se"] <= out.eps * 1.01
    n = [out.stats[lv.key].n for lv in out.levels]
    assert n == sorted(n, reverse=True) and n[-1] >= 64  # fewer samples on the costly fine levels
    assert out.rates["alpha"] == pytest.approx(1.0, abs=0.15) and out.rates["beta"] == pytest.approx(2.0, abs=0.4)
    assert out.rates["gamma"] == pytest.approx(2.0, abs=1e-9)
    assert abs(out.bias_continuum - 2.0**-4) < 0.02  # extrapolated E[P_4] - E[P]


def test_the_surrogate_level_takes_the_variance_off_the_fem_levels():
    """Costs growing 2x a level (gamma = 1 < beta = 2): level 0 dominates, and the surrogate takes it."""
    plain = _run(ToyHierarchy(3, seed=8, cost_growth=2.0), Plan(rtol=1e-2, pilot=64))
    cv = _run(ToyHierarchy(3, seed=8, cv=True, cost_growth=2.0), Plan(rtol=1e-2, pilot=64))
    assert cv.beta == pytest.approx(1.0, abs=0.05)  # G ~ P_0
    assert cv.needed_s < plain.needed_s / 2  # the optimal cost for the final variance estimates
    assert cv.spent_s < plain.spent_s  # what the pilot-based rounds spent
    assert abs(cv.estimate["mean"] - plain.estimate["mean"]) < 3 * math.hypot(cv.estimate["se"], plain.estimate["se"])


def test_adaptive_run_adds_levels_until_the_bias_fits():
    out = _run(ToyHierarchy(8, seed=9), Plan(rtol=2e-2, pilot=64, adaptive=True, theta=0.5))
    finest = max(lv.index for lv in out.levels)
    assert out.status == "converged" and 3 <= finest <= 8
    assert out.bias_continuum <= math.sqrt(0.5) * out.eps
    assert out.estimate["rmse"] == pytest.approx(math.hypot(out.estimate["se"], out.estimate["bias"]))
    assert abs(out.estimate["mean"] - (true_mean(finest) - 2.0**-finest)) < 3 * out.estimate["rmse"]


def test_a_grid_too_coarse_for_the_tolerance_ends_with_a_message():
    out = _run(ToyHierarchy(2, seed=10), Plan(rtol=5e-2, pilot=32, adaptive=True))
    assert out.status == "finest" and "finest allowed grid" in out.message and math.isfinite(out.estimate["mean"])


def test_a_budget_too_small_ends_with_the_best_estimate_and_what_it_needs():
    out = _run(ToyHierarchy(3, seed=11), Plan(rtol=1e-4, pilot=32, max_cost_s=1.0))
    assert out.status == "budget" and "uq.max_cost_s = 1 s" in out.message
    assert out.needed_s > 1.0 and math.isfinite(out.estimate["mean"]) and out.estimate["se"] > 0


def test_randomized_qmc_levels_estimate_from_the_spread_of_randomizations():
    out = _run(ToyHierarchy(3, seed=12, qmc=True), Plan(rtol=1e-2, pilot=64, replicates=8))
    assert out.qmc and out.status == "converged" and out.estimate["se"] <= out.eps
    for lv in out.levels:
        counts = {out.stats[lv.key].count(r) for r in range(8)}
        assert len(counts) == 1 and (next(iter(counts)) & (next(iter(counts)) - 1)) == 0  # powers of 2, equal
    assert abs(out.estimate["mean"] - true_mean(3)) < 4 * out.estimate["se"]


def test_a_killed_run_resumes_from_its_records(tmp_path):
    """A torn last line is dropped, every whole batch is kept, the run goes on to the tolerance; a finished
    run has nothing left to sample; a file of other parameters is refused."""
    plan = Plan(rtol=1e-2, pilot=32)
    path = tmp_path / "r.jsonl"
    whole = _run(ToyHierarchy(3, seed=13, cv=True), plan, Records(path, {"toy": 1}))
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["records"] and any("beta" in json.loads(x) for x in lines[1:])
    kept = lines[: len(lines) // 2]
    path.write_text("\n".join(kept) + '\n{"level": "L1n2", "rep": 0, "sta')  # killed mid-write
    resumed = _run(ToyHierarchy(3, seed=13, cv=True), plan, Records(path, {"toy": 1}))
    assert resumed.resumed and resumed.beta == whole.beta and resumed.status == "converged"
    after = path.read_text().splitlines()
    assert after[: len(kept)] == kept and all(json.loads(x) for x in after)
    spans: dict = {}
    for entry in map(json.loads, after[1:]):
        if "level" in entry:  # contiguous batches per level: nothing lost, nothing sampled twice
            assert entry["start"] == spans.get(entry["level"], 0)
            spans[entry["level"]] = entry["stop"]
    assert resumed.estimate["se"] <= resumed.eps * 1.01
    assert abs(resumed.estimate["mean"] - whole.estimate["mean"]) < 3 * whole.estimate["se"]
    again = _run(ToyHierarchy(3, seed=13, cv=True), plan, Records(path, {"toy": 1}))
    assert again.spent_s == pytest.approx(resumed.spent_s)
    assert again.estimate["mean"] == pytest.approx(resumed.estimate["mean"], rel=1e-12)
    with pytest.raises(MCError, match="other parameters"):
        Records(path, {"toy": 2})
