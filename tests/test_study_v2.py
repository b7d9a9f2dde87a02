"""The second study (study.v2): time to target, search spaces, journal resume, record currency, report."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from study.core import mask_growth, record_is_current, run_key  # noqa: E402
from study.v1 import plan as v1_plan  # noqa: E402
from study.v2 import analysis, calibrate, methods, presets, runs, tuning  # noqa: E402
from study.v2 import plan as v2_plan  # noqa: E402
from study.v2.report import build_report  # noqa: E402
from test_study import record_fingerprints, run_quick  # noqa: E402

PARAMS = str(ROOT / "params.yaml")
STORES = {"poisson": Path("/nonexistent/poisson.zarr"), "darcy": Path("/nonexistent/darcy.zarr")}


# --------------------------------------------------------------------------
# time to target
# --------------------------------------------------------------------------
def _rec(wu, val, status="ok", **extra):
    return {"status": status, "budget_wu": wu[-1], "curve": {"wu_flops": list(wu), "wu_paper": list(wu),
                                                             "val_mse": list(val), "val_linf": list(val)}, **extra}


def test_flops_to_target_first_evaluation_at_or_below_and_inf_otherwise():
    r = _rec([0, 10, 20, 30], [5.0, 2.0, 1.0, 0.5])
    assert analysis.flops_to_target(r, 1.0, 30) == 20.0          # equal counts as reached
    assert analysis.flops_to_target(r, 0.4, 30) == math.inf
    assert analysis.flops_to_target(r, 0.5, 20) == math.inf       # only evaluations up to the budget
    masked = mask_growth({**r["curve"], "growth_level": [1, 1, None, None]}, runs.MASKED)
    assert masked["val_mse"] == [None, None, 1.0, 0.5] and masked["grow_val_mse"] == [5.0, 2.0, None, None]
    assert analysis.flops_to_target({"curve": masked}, 2.0, 30) == 20.0   # a coarse net reaching it does not count


def test_target_is_a_value_that_more_than_half_of_the_baseline_seeds_reach():
    assert analysis.upper_median([3.0, 1.0, 2.0, 5.0, 4.0]) == 3.0
    assert analysis.upper_median([2.0, 1.0]) == 2.0
    assert math.isnan(analysis.upper_median([]))
    assert analysis.median([1.0, 2.0, math.inf]) == 2.0 and analysis.median([1.0, math.inf, math.inf]) == math.inf


# --------------------------------------------------------------------------
# methods and search spaces
# --------------------------------------------------------------------------
def test_every_issue_method_with_its_search_space():
    spec = presets.build_spec("full")
    defs = spec["method_defs"]
    assert spec["methods"] == ["sgd-paper", "sgd", "adamw", "fas-sgd-paper", "fas-sgd", "fas-adamw", "ni-adamw",
                               "ni-fas"]
    assert presets.tuned_methods(spec) == ["sgd", "adamw", "fas-sgd", "fas-adamw", "ni-adamw", "ni-fas"]
    assert defs["sgd-paper"]["space"] == {} and defs["fas-sgd-paper"]["space"] == {}
    assert defs["sgd"]["space"] == {"lr": (1e-3, 0.3, "log")}
    assert defs["adamw"]["space"] == {"lr": (1e-4, 3e-2, "log")}
    for m in ("fas-sgd", "fas-adamw", "ni-fas"):
        assert {"lr", "gamma", "eta", "alpha_m"} <= set(defs[m]["space"])
    assert set(defs["ni-adamw"]["space"]) == {"lr", "share"} and "share" in defs["ni-fas"]["space"]
    assert "share" not in defs["fas-adamw"]["space"]
    for d in defs.values():   # every point of the space is a valid setting
        for low, high, _ in d["space"].values():
            assert 0 <= low < high


def test_a_trial_point_lands_in_the_resolved_config():
    import optuna

    spec = presets.build_spec("quick")
    space = spec["method_defs"]["ni-fas"]["space"]
    hp = methods.suggest(optuna.trial.FixedTrial({"lr": 2e-3, "gamma": 0.3, "eta": 1.5, "alpha_m": 0.4,
                                                  "share": 0.3}), space)
    cfg = v2_plan.config(spec, "darcy_fc", "ni-fas", 1000, hp, device="cpu").to_dict()["train"]
    assert (cfg["trainer"], cfg["fas"]["smoother"], cfg["schedule"]) == ("fas", "adamw", "cosine")
    assert (cfg["lr"], cfg["fas"]["gamma"], cfg["fas"]["eta"], cfg["fas"]["alpha_m"]) == (2e-3, 0.3, 1.5, 0.4)
    assert (cfg["growth"]["levels"], cfg["growth"]["share"], cfg["weight_decay"]) == (2, 0.3, 0.01)
    paper = v2_plan.config(spec, "darcy_fc", "fas-sgd-paper", 0, {}, device="cpu").to_dict()["train"]
    assert (paper["lr"], paper["schedule"], paper["fas"]["gamma"], paper["weight_decay"]) == (0.01, "constant",
                                                                                           0.125, 1e-6)


def test_plan_equal_trials_distinct_seeds_and_equal_budgets():
    spec = presets.build_spec("quick", trials=3, seeds=2)
    trials = v2_plan.trial_tasks(spec, Path("/o"), STORES, device="cpu")
    assert len(trials) == 4 * 6 * 3
    finals, waiting = v2_plan.all_tasks(spec, Path("/o"), STORES, {}, device="cpu")
    assert len(waiting) > 0 and all(t["method"] in ("sgd-paper", "fas-sgd-paper") for t in finals)
    finals, waiting = v2_plan.all_tasks(spec, Path("/o"), STORES, {}, True, device="cpu")
    assert not waiting
    main = [t for t in finals if t["group"] == "main"]
    assert len(main) == 4 * 8 * 2
    assert {t["seed"] for t in trials} == {presets.TUNING_SEED} and {t["seed"] for t in main} == {0, 1}
    for setup in spec["setups"]:
        budgets = {t["config"]["train"]["budget_wu"] for t in trials + main if t["setup"] == setup}
        assert len(budgets) == 1
    reg = [t for t in finals if t["group"] == "regime"]
    full = spec["setups"]["darcy_fc"]["n_train"]
    assert {(t["n_train"], t["method"]) for t in reg if t["n_train"] == full} == {(full, "fas-adamw-l3"),
                                                                                    (full, "ni-adamw-l3")}


def test_estimate_counts_training_evaluations_and_growth_share():
    spec = presets.build_spec("quick")
    cal = {"darcy_fc": {"s_per_wu": {"adamw": 0.01, "grow2-adamw": 0.02}, "eval_s": 0.1, "aux_eval_s": 0.0,
                        "load_s": 1.0, "coarse_share": {}}}
    task = {"setup": "darcy_fc", "method": "ni-adamw", "budget_wu": 20, "n_train": 240, "group": "tuning",
            "hp": {"share": 0.5}}
    # 20 WU at (0.5 * 0.01 + 0.5 * 0.02) s, 7 evaluations of 0.1 s, 1 s load, 0.5 s overhead
    assert calibrate.estimate_task(task, spec, cal) == pytest.approx(20 * 0.015 + 0.7 + 1.5)


# --------------------------------------------------------------------------
# the search: journal, divergence, resume
# --------------------------------------------------------------------------
def _fake_run(calls, fail_at=None):
    """A stand-in for study.core.run_task: the objective is (log10 lr + 2.5)^2; lr > 0.01 diverges."""

    def run(task, threads, keep, fp):
        n = int(task["run_id"].rsplit("trial", 1)[1])
        calls.append(n)
        if fail_at is not None and n == fail_at and calls.count(n) == 1:
            raise RuntimeError("killed")
        lr = task["config"]["train"]["lr"]
        B = task["budget_wu"]
        if lr > 0.01:
            return {**_rec([0, B / 2], [1.0, float("nan")], status="diverged"), "budget_wu": B, "wall_s": 0.1}
        return {**_rec([0, B], [1.0, (math.log10(lr) + 2.5) ** 2]), "wall_s": 0.1}

    return run


def _job(tmp_path, spec):
    return {"spec": spec, "setup": "darcy_fc", "method": "adamw", "out": tmp_path, "stores": STORES,
            "device": "cpu", "threads": 1, "fingerprint": "fp",
            "key": tuning.search_key(spec, "darcy_fc", "adamw", "fp")}


def test_search_resumes_a_killed_trial_and_draws_the_same_trials(tmp_path, monkeypatch):
    spec = presets.build_spec("quick", trials=5)
    spec["tuning"]["startup"] = 2
    calls: list[int] = []
    monkeypatch.setattr(tuning, "run_task", _fake_run(calls))
    whole = tuning.search(_job(tmp_path / "a", spec))
    calls2: list[int] = []
    monkeypatch.setattr(tuning, "run_task", _fake_run(calls2, fail_at=2))
    with pytest.raises(RuntimeError):
        tuning.search(_job(tmp_path / "b", spec))
    journal = tuning.journal_path(tmp_path / "b", "darcy_fc", "adamw")
    summary = tuning.summary(journal, "darcy_fc/adamw", _job(tmp_path / "b", spec)["key"], 5)
    assert journal.exists() and [t["state"] for t in summary["trials"]] == ["COMPLETE", "COMPLETE", "RUNNING"]
    resumed = tuning.search(_job(tmp_path / "b", spec))
    assert calls2 == [0, 1, 2, 2, 3, 4]          # finished trials are not run again; the killed one is
    assert [t["params"] for t in resumed["trials"]] == [t["params"] for t in whole["trials"]]
    assert resumed["complete"] and resumed["params"] == whole["params"]
    again = tuning.search(_job(tmp_path / "b", spec))   # nothing left to do
    assert calls2 == [0, 1, 2, 2, 3, 4] and again["best"] == resumed["best"]


def test_a_diverged_trial_scores_inf_and_is_never_chosen(tmp_path, monkeypatch):
    spec = presets.build_spec("quick", trials=6)
    monkeypatch.setattr(tuning, "run_task", _fake_run([]))
    s = tuning.search(_job(tmp_path, spec))
    values = {t["number"]: t["value"] for t in s["trials"]}
    diverged = [t for t in s["trials"] if t["status"] == "diverged"]
    assert diverged and all(t["value"] == math.inf and t["state"] == "COMPLETE" for t in diverged)
    assert math.isfinite(s["best_value"]) and s["best_value"] == min(values.values())
    assert s["params"]["lr"] <= 0.01


def test_search_key_ignores_keys_at_their_builtin_default():
    cfg = {"train": {"lr": 0.1, "device": "cpu", "growth": {"levels": 1, "share": 0.2}, "fas": {"match": "after"}},
           "data": {"stream_order": "global"}}
    older = {"train": {"lr": 0.1, "device": "cuda"}, "data": {}}
    assert run_key(cfg) == run_key(older)
    assert run_key({"train": {"lr": 0.1, "fas": {"match": "before"}}}) != run_key(older)


# --------------------------------------------------------------------------
# record currency
# --------------------------------------------------------------------------
def test_a_final_record_is_done_only_with_its_test_scores(tmp_path):
    cfg = {"train": {"lr": 0.01}, "data": {}}
    task = {"dir": str(tmp_path), "config": cfg}
    rec = {"config": cfg, "store_fingerprint": "f", "status": "ok"}
    (tmp_path / "record.json").write_text(json.dumps(rec))
    assert record_is_current(task, "f") and not runs.is_done(task, "f")
    (tmp_path / "record.json").write_text(json.dumps({**rec, "test": {"mse": 1.0}}))
    assert runs.is_done(task, "f")
    (tmp_path / "record.json").write_text(json.dumps({**rec, "status": "diverged", "test": None}))
    assert runs.is_done(task, "f")


def test_every_committed_search_and_record_is_current():
    """A resume of ``python -m study.v2`` on the stores the records were trained on finds every search complete
    and reruns nothing."""
    from study.core import RESULTS
    from study.v2 import steps

    out = RESULTS / "v2"
    spec = presets.build_spec("full")
    ctx = steps.Context(spec, out, {p: Path("/nonexistent") for p in ("poisson", "darcy")}, None, "cpu", 1, 1)
    ctx.fps = record_fingerprints(out)
    summaries = steps.summaries(ctx, spec)
    assert len(summaries) == 24 and all(s["complete"] for s in summaries.values())
    tasks, waiting = v2_plan.all_tasks(spec, out, ctx.stores, steps.chosen(ctx, spec), device="cpu")
    stale = [t["run_id"] for t in tasks if not runs.is_done(t, ctx.fp(spec, t["setup"]))]
    assert not waiting and len(tasks) == 196 and not stale, (waiting, stale[:5])


def test_first_study_configs_ignore_new_defaults_in_params(tmp_path, monkeypatch):
    import yaml

    from study.v1.presets import build_spec

    params = yaml.safe_load(Path(PARAMS).read_text())
    params["train"].update(schedule="cosine", growth={"levels": 2, "share": 0.5, "state": "prolong"},
                           by_trainer={"sgd": {"lr": 0.5}})
    changed = tmp_path / "params.yaml"
    changed.write_text(yaml.safe_dump(params))
    spec = build_spec("full")
    a = v1_plan.run_config(spec, "poisson_fc", "sgd", 0, device="cpu").to_dict()
    monkeypatch.chdir(tmp_path)      # the changed params.yaml where a CLI would look for one
    b = v1_plan.run_config(spec, "poisson_fc", "sgd", 0, device="cpu").to_dict()
    assert a == b and a["train"]["schedule"] == "constant" and a["train"]["growth"]["levels"] == 1
    assert a["train"]["lr"] == 0.01
    # the keys the first study set at the values of its time, whatever the defaults now
    assert a["train"]["fas"]["match"] == "before" and a["data"]["stream_order"] == "global"


# --------------------------------------------------------------------------
# the report, on synthetic records
# --------------------------------------------------------------------------
def _curve_record(setup, method, seed, rate, B, group="main", n_train=None, spec=None):
    wu = list(range(0, int(B) + 1))
    val = [1.0 / (1.0 + rate * w * (1.0 + 0.02 * seed)) for w in wu]
    test = {"mse": val[-1] * 1.1, "linf": 3 * val[-1], "rel_l2": 0.1}
    return {"run_id": f"{setup}/{method}/seed{seed}", "setup": setup, "method": method, "seed": seed,
            "group": group, "n_train": n_train or spec["setups"][setup]["n_train"], "budget_wu": B, "status": "ok",
            "wall_s": 1.0, "hp": {"share": 0.25} if method.startswith("ni") else {}, "test": test,
            "curve": {"wu_flops": wu, "wu_paper": wu, "val_mse": val, "val_linf": [3 * v for v in val]}}


def _synthetic(with_runs=True):
    spec = presets.build_spec("quick", seeds=5)
    rates = {"adamw": 1.0, "ni-adamw": 2.5, "fas-adamw": 0.5}
    records = []
    for setup, s in spec["setups"].items():
        s["budget_wu"], s["flops_ratio_level1"] = 100, 0.5
        for m in spec["methods"]:
            rate = rates.get(m, 0.3) * (0.42 if (m == "ni-adamw" and setup == "darcy_cnn") else 1.0)
            records += [_curve_record(setup, m, k, rate, 100, spec=spec) for k in range(5)]
    spec["regime"]["budget_wu"] = 100
    for m in spec["regime"]["methods"]:
        records += [_curve_record("darcy_fc", m, k, rates.get(m, 0.8), 100, "regime", 80, spec) for k in range(2)]
        if m not in spec["methods"]:
            records += [_curve_record("darcy_fc", m, k, 0.8, 100, "regime", None, spec) for k in range(2)]
    cal = {s: {"coarse_share": {"fas2-adamw": 0.25, "fas2-sgd": 0.25}} for s in spec["setups"]}
    return {"spec": spec, "records": records if with_runs else [], "calibration": cal, "threads": 2,
            "command": "python -m study.v2 --quick", "tuning": {}, "planned": 10, "estimate_s": 60.0,
            "estimate_setups": list(spec["setups"])}


def test_report_states_the_moonshot_from_the_numbers(tmp_path):
    info = build_report(_synthetic(), tmp_path)
    md = (tmp_path / "RESULTS.md").read_text()
    moon = info["moonshot"]
    assert moon["met"] == ["ni-adamw"]
    ni = moon["variants"]["ni-adamw"]
    assert ni["hits"] == ["poisson_fc", "poisson_cnn", "darcy_fc"]
    assert ni["rows"]["poisson_fc"]["ratio"] == pytest.approx(0.4, abs=0.02)
    assert 0.9 < ni["rows"]["darcy_cnn"]["ratio"] <= 1.1
    assert moon["variants"]["fas-adamw"]["worst"] == math.inf
    assert "**met** by NI + AdamW (tuned)" in md and "RESULTS_v1.md" in md
    for section in ("## (a)", "## (b)", "## (c)", "## (d)", "## (e)", "## Where the FLOPs go", "## Conclusion"):
        assert section in md
    assert "| NI + AdamW (tuned) | 5/5 |" in md
    for png in info["pngs"]:
        assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_without_runs_is_the_plan(tmp_path):
    build_report(_synthetic(with_runs=False), tmp_path)
    md = (tmp_path / "RESULTS.md").read_text()
    assert "**not assessed**" in md and "## Set-ups, methods and the search" in md and "## (a)" not in md
    assert "**2 trials per set-up**" in md


# --------------------------------------------------------------------------
# --quick end to end
# --------------------------------------------------------------------------
@pytest.mark.slow
def test_quick_v2_end_to_end(tmp_path):
    out = tmp_path / "v2"
    stderr, results = run_quick("study.v2", out, timeout=1200)
    assert "expected wall time" in stderr
    spec = results["spec"]
    assert all(s["complete"] for s in results["tuning"].values()) and len(results["tuning"]) == 4 * 6
    assert sorted(p.name for p in (out / "tuning" / "darcy_fc").iterdir()) == sorted(
        f"{m}.journal" for m in presets.tuned_methods(spec))
    main = [r for r in results["records"] if r["group"] == "main"]
    assert len(main) == 4 * 8 * spec["seeds"]
    assert all(r["test"] is not None for r in main if r["status"] == "ok")
    md = (out / "docs" / "RESULTS.md").read_text()
    assert "**Moonshot**" in md and "## Conclusion" in md
    stderr, _ = run_quick("study.v2", out, "--no-report", timeout=600)   # everything is done: nothing runs
    assert "0 searches to finish" in stderr and "0 to run" in stderr
