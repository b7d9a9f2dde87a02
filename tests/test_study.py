"""The study core and the first study: paired statistics, run plan, record curves, report, --quick end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from study.core import (  # noqa: E402
    RESULTS,
    builtin_defaults,
    calibrate,
    curve_from_history,
    readout,
    record_is_current,
    regime_cells,
    run_key,
    stats,
)
from study.v1 import plan, presets, report  # noqa: E402


# --------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------
def _diffs_with_t(n: int, t: float) -> tuple[list[float], float]:
    """Paired samples of n seeds whose differences have sd 1 and t statistic ``t``, and their standard error."""
    e = [i - (n - 1) / 2 for i in range(n)]
    sd = math.sqrt(sum(x * x for x in e) / (n - 1))
    se = 1.0 / math.sqrt(n)
    base = [10.0 + i for i in range(n)]
    return [b + x / sd + t * se for b, x in zip(base, e)], base


@pytest.mark.parametrize("df, q, expected", [(1, 0.975, 12.706204736), (4, 0.975, 2.776445105),
                                             (30, 0.975, 2.042272456), (4, 0.025, -2.776445105),
                                             (10, 0.95, 1.812461123)])
def test_t_quantiles_match_tables(df, q, expected):
    fas, base = _diffs_with_t(df + 1, 0.0)
    p = stats.paired(fas, base, level=2 * abs(q - 0.5))
    se = p["sd"] / math.sqrt(df + 1)
    bound = p["ci"][1] if q > 0.5 else p["ci"][0]
    assert (bound - p["mean"]) / se == pytest.approx(expected, rel=1e-7)
    fas, base = _diffs_with_t(df + 1, expected)     # the t statistic at the quantile: two-sided p = 2 (1 - q)
    assert stats.paired(fas, base)["t_p"] == pytest.approx(2 * min(q, 1 - q), abs=1e-9)


def test_t_cdf_symmetry_and_centre():
    fas, base = _diffs_with_t(6, 0.0)
    assert stats.paired(fas, base)["t_p"] == pytest.approx(1.0)
    fas, base = _diffs_with_t(8, 1.3)
    p, q = stats.paired(fas, base), stats.paired(base, fas)
    assert p["t_p"] == pytest.approx(q["t_p"])
    assert p["ci"] == pytest.approx([-q["ci"][1], -q["ci"][0]])


def test_sign_test_exact_binomial():
    assert stats.sign_test(1, 9) == pytest.approx(22 / 1024)      # 2 * (1 + 10) / 2^10
    assert stats.sign_test(9, 1) == pytest.approx(22 / 1024)
    assert stats.sign_test(5, 0) == pytest.approx(0.0625)         # best possible with 5 seeds
    assert stats.sign_test(3, 3) == 1.0
    assert stats.sign_test(0, 0) == 1.0


def test_paired_clear_shift_is_a_win_and_reverse_a_loss():
    base = [1.00, 1.20, 0.90, 1.10, 1.05]
    fas = [b - 0.5 + e for b, e in zip(base, [0.01, -0.02, 0.015, 0.0, -0.01])]
    p = stats.paired(fas, base)
    assert p["verdict"] == "win"
    assert p["ci"][1] < 0 and p["mean"] == pytest.approx(-0.501, abs=1e-9)
    assert p["better"] == 5 and p["worse"] == 0 and p["sign_p"] == pytest.approx(0.0625)
    assert p["rel"] == pytest.approx(-0.501 / 1.05)
    q = stats.paired(base, fas)
    assert q["verdict"] == "loss" and q["ci"][0] > 0


def test_paired_noise_is_a_tie():
    base = [1.0, 1.1, 0.9, 1.05, 0.95]
    fas = [1.02, 1.05, 0.97, 1.04, 0.99]   # differences +.02 -.05 +.07 -.01 +.04
    p = stats.paired(fas, base)
    assert p["verdict"] == "tie"
    assert p["ci"][0] < 0 < p["ci"][1]
    assert (p["better"], p["worse"]) == (2, 3)


def test_paired_with_a_diverged_run():
    inf = math.inf
    p = stats.paired([1.0, 1.0, inf], [2.0, 2.0, 2.0])
    assert p["ci"] is None and p["verdict"] == "tie" and (p["better"], p["worse"]) == (2, 1)
    p = stats.paired([1.0, 1.0, 1.0], [2.0, inf, 2.0])
    assert p["ci"] is None and p["verdict"] == "win"
    assert stats.paired([1.0], [2.0])["verdict"] == "n/a"


def _record(wu_flops, wu_paper, val, status="ok"):
    return {"status": status, "curve": {"wu_flops": wu_flops, "wu_paper": wu_paper, "val_mse": val}}


def test_readout_cuts_the_curve_at_the_budget_in_either_measure():
    r = _record([0, 10, 20, 30], [0, 8, 16, 24], [5.0, 2.0, 3.0, 1.0])
    assert readout(r, "val_mse", "flops", 20, "best") == 2.0
    assert readout(r, "val_mse", "flops", 20, "final") == 3.0
    assert readout(r, "val_mse", "paper", 24, "final") == 1.0
    assert readout(r, "val_mse", "flops", 29.9, "best") == 2.0
    d = _record([0, 10], [0, 10], [5.0, 2.0], status="diverged")
    assert readout(d, "val_mse", "flops", 10, "best") == 2.0     # before the divergence
    assert readout(d, "val_mse", "flops", 20, "best") == math.inf


# --------------------------------------------------------------------------
# the run plan
# --------------------------------------------------------------------------
def test_full_plan_fixed_split_equal_budgets_and_seeded_runs(tmp_path):
    spec = presets.build_spec("full")
    stores = {"poisson": tmp_path / "p.zarr", "darcy": tmp_path / "d.zarr"}
    tasks = plan.plan(spec, tmp_path, stores, device="cpu")
    main = [t for t in tasks if t["group"] == "main"]
    assert len(main) == 4 * 8 * 5
    for setup in spec["setups"]:
        runs = [t for t in main if t["setup"] == setup]
        assert {t["method"] for t in runs} == set(presets.METHODS)
        assert len({t["config"]["train"]["budget_wu"] for t in runs}) == 1
        assert {t["config"]["train"]["work_measure"] for t in runs} == {"flops"}
        assert len({json.dumps(t["config"]["data"], sort_keys=True) for t in runs}) == 1      # fixed split
        assert {t["config"]["train"]["seed"] for t in runs} == set(range(5))
        for t in runs:
            d = spec["method_defs"][t["method"]]
            tr = t["config"]["train"]
            assert tr["trainer"] == d["trainer"] and tr["fas"]["levels"] == d["levels"]
            assert tr["lr"] == d["lr"] and tr["momentum"] == 0.9
            if d["trainer"] == "fas":
                assert tr["fas"]["tau"] == d["tau"]
                assert (tr["fas"]["alpha_p"], tr["fas"]["alpha_m"], tr["fas"]["gamma"]) == (1.0, 0.2, 0.125)
                assert tr["fas"]["eta"] == pytest.approx(2 * math.sqrt(2))
    pfc = spec["setups"]["poisson_fc"]
    assert (pfc["n_samples"], pfc["budget_wu"], pfc["arch"]["hidden"]) == (10000, 10000, [400, 400])
    regime = [t for t in tasks if t["group"] == "regime"]
    for t in regime:
        assert t["config"]["train"]["budget_wu"] == spec["regime"]["budget_wu"]
        frac = t["config"]["data"]["split"]["train"]
        assert math.floor(frac * pfc["n_samples"] + 1e-9) == t["n_train"]
    assert {t["n_train"] for t in regime} == set(spec["regime"]["n_train"])


def test_level1_flop_cost_of_the_paper_poisson_fc_net():
    spec = presets.build_spec("full")
    assert calibrate.level1_cost(spec, "poisson_fc", str(ROOT / "params.yaml")) == pytest.approx(0.48, abs=0.01)


# --------------------------------------------------------------------------
# a run's record
# --------------------------------------------------------------------------
def _evaluation(wu, val, **extra):
    return {"work_units": wu, "cycles": int(wu), "work_units_flops": wu, "work_units_paper": 0.5 * wu,
            "val": {"mse": val, "linf": 2 * val, "rel_l2": 0.1}, **extra}


def test_curve_from_history_matches_the_dvclive_steps_and_columns():
    history = [_evaluation(0.0, 5.0, train={"mse": 4.0, "linf": 8.0}),
               _evaluation(0.4, 3.0, train_loss=2.0, train={"mse": 2.0, "linf": 4.0}),
               _evaluation(2.5, 1.0, train_loss=float("nan"), train={"mse": 1.0, "linf": 2.0})]
    curve = curve_from_history(history)
    assert curve["step"] == [0, 1, 2]          # round(0.4) = 0 -> one past the previous; round(2.5) = 2
    assert curve["wu_flops"] == [0.0, 0.4, 2.5] and curve["wu_paper"] == [0.0, 0.2, 1.25]
    assert curve["val_mse"] == [5.0, 3.0, 1.0] and curve["val_linf"] == [10.0, 6.0, 2.0]
    assert curve["train_mse"] == [4.0, 2.0, 1.0] and curve["train_loss"] == [None, 2.0, None]
    assert "aux_val_mse" not in curve


def test_a_record_stays_current_across_device_and_the_darcy_target_table(tmp_path):
    cfg = {"problem": "darcy", "data": {"split": {"train": 0.8}, "target": {"darcy": "Q"}},
           "train": {"device": "cpu", "lr": 0.01}}
    (tmp_path / "record.json").write_text(json.dumps({"config": cfg, "store_fingerprint": "abc"}))
    now = {"problem": "darcy", "data": {"split": {"train": 0.8}, "target": {}}, "train": {"device": "cuda", "lr": 0.01}}
    task = {"dir": str(tmp_path), "config": now}
    assert record_is_current(task, "abc")
    assert not record_is_current(task, "other store")
    assert not record_is_current({**task, "config": {**now, "train": {"device": "cpu", "lr": 0.1}}}, "abc")


# --------------------------------------------------------------------------
# the report, on synthetic records (fast; no training)
# --------------------------------------------------------------------------
def _synthetic_results():
    spec = presets.build_spec("quick", setups=["poisson_fc", "darcy_fc"])
    for s in spec["setups"].values():
        s["flops_ratio_level1"] = 0.5
    records = []
    for setup in ("poisson_fc", "darcy_fc"):
        B, ev = spec["setups"][setup]["budget_wu"], spec["setups"][setup]["eval_every_wu"]
        for m in spec["methods"]:
            d = spec["method_defs"][m]
            for seed in range(spec["seeds"]):
                wu = [ev * i for i in range(int(B / ev) + 1)]
                ratio = 0.85 if d["trainer"] == "fas" else 1.0
                # FAS clearly better on poisson_fc, the same as SGD (up to noise) on darcy_fc
                gain = 0.5 if (d["trainer"] == "fas" and setup == "poisson_fc") else 1.0
                # seed noise shared by all methods + a small per-method part that flips sign with the seed
                noise = 1.0 + 0.05 * (seed - 1) + 1e-3 * (-1) ** seed * (1 + spec["methods"].index(m))
                val = [gain * noise * (1.0 + 10.0 / (1.0 + w)) for w in wu]
                fit = 0.9 if setup == "poisson_fc" else 0.01  # darcy_fc overfits: training MSE far below validation
                curve = {"wu_flops": wu, "wu_paper": [w * ratio for w in wu], "val_mse": val,
                         "val_linf": [10 * v for v in val], "train_mse": [fit * v for v in val],
                         "train_linf": [9 * v for v in val], "step": [round(w) for w in wu]}
                if d["trainer"] == "fas":
                    curve["aux_val_mse"] = list(val)
                    curve["aux_val_linf"] = [10 * v for v in val]
                records.append({"run_id": f"{setup}/{m}/seed{seed}", "setup": setup, "method": m, "seed": seed,
                                "group": "main", "n_train": spec["setups"][setup]["n_train"], "budget_wu": B,
                                "status": "ok", "device": "cpu", "wall_s": 1.0, "curve": curve})
    return {"spec": spec, "records": records, "threads": 2, "command": "python -m study.runner --quick"}


def test_report_from_synthetic_results(tmp_path):
    info = report.build_report(_synthetic_results(), tmp_path, command="python -m study.runner --quick")
    md = (tmp_path / "RESULTS_v1.md").read_text()
    assert "python -m study.runner --quick" in md
    assert "## Conclusion" in md and "Table 1 shape" in md and "Table 2 shape" in md
    assert "Poisson FC: FAS beats SGD in 24 of 24 comparisons and never loses" in md
    assert "Darcy FC: FAS ties SGD in all 24 comparisons" in md
    assert "Poisson FC 1.11, Darcy FC 100. The set-up that overfits most is Darcy FC; there FAS against SGD" in md
    for png in info["pngs"]:
        assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    wins = [v for v in info["verdicts"]["main"] if v["setup"] == "poisson_fc" and v["how"] == "best"
            and v["measure"] == "flops"]
    assert wins and all(v["verdict"] == "win" for v in wins)


def test_regime_cells_name_whole_rows_and_single_cells():
    reg = [{"n_train": n, "fas": f, "panel": "best_mse", "verdict": v}
           for n, f, v in [(100, "fas2", "loss"), (100, "fas3", "loss"), (500, "fas2", "win"), (500, "fas3", "tie")]]
    assert regime_cells(reg, "loss") == "every cell at 100 samples"
    assert regime_cells(reg, "win") == "500 samples / fas2 (best MSE)"
    assert regime_cells(reg[:2], "loss") == "all 2 cells"
    assert regime_cells(reg, "n/a") == "no cell"


# --------------------------------------------------------------------------
# --quick end to end (generates tiny stores with DOLFINx and trains ~100 tiny runs)
# --------------------------------------------------------------------------
def run_quick(module: str, out: Path, *extra: str, timeout: int = 900) -> tuple[str, dict]:
    """``python -m MODULE --quick --out OUT [extra]`` must succeed: its stderr and results.json."""
    cmd = [sys.executable, "-m", module, "--quick", "--out", str(out), *extra]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-4000:]
    return res.stderr, json.loads((out / "results.json").read_text())


@pytest.mark.slow
def test_quick_study_end_to_end(tmp_path):
    out = tmp_path / "study"
    stderr, results = run_quick("study.runner", out)
    assert "expected wall time" in stderr
    spec = results["spec"]
    n_main = len(spec["setups"]) * len(spec["methods"]) * spec["seeds"]
    n_reg = len(spec["regime"]["n_train"]) * len(spec["regime"]["methods"]) * spec["regime"]["seeds"]
    assert len(results["records"]) == n_main + n_reg
    for r in results["records"]:
        assert r["curve"]["wu_flops"][-1] >= r["budget_wu"] or r["status"] != "ok"
        assert len(r["curve"]["val_mse"]) == len(r["curve"]["wu_paper"]) >= 2
    md = (out / "docs" / "RESULTS_v1.md").read_text()
    assert "python -m study.runner --quick --out" in md
    assert "| One-level SGD |" in md and any(ch.isdigit() for ch in md.split("| One-level SGD |")[1][:40])
    pngs = sorted((out / "docs").glob("*.png"))
    assert len(pngs) == len(spec["setups"]) + 1
    assert all(p.stat().st_size > 10_000 for p in pngs)
    assert json.loads((out / "summary.json").read_text())["verdicts"]["main"]
    # a second call skips every finished run
    stderr, _ = run_quick("study.runner", out, "--no-report", timeout=600)
    assert f"{n_main + n_reg} of {n_main + n_reg} runs already done; 0 to run" in stderr


def test_records_from_before_a_key_existed_stay_current_only_at_its_legacy_value(tmp_path):
    old = {"train": {"lr": 0.01, "fas": {"levels": 2}}, "data": {}}
    (tmp_path / "record.json").write_text(json.dumps({"config": old, "store_fingerprint": "f"}))
    task = {"dir": str(tmp_path), "config": {"train": {"lr": 0.01, "schedule": "constant", "warmup": 0.05,
                                                      "fas": {"levels": 2}}, "data": {}}}
    assert record_is_current(task, "f")
    task["config"]["train"]["schedule"] = "cosine"
    assert not record_is_current(task, "f")


# --------------------------------------------------------------------------
# the cache key of a run (study.core.runkey) and the committed records
# --------------------------------------------------------------------------
def _task_with_record(tmp_path, recorded: dict, now: dict, fingerprint: str = "f") -> dict:
    (tmp_path / "record.json").write_text(json.dumps({"config": recorded, "store_fingerprint": fingerprint}))
    return {"dir": str(tmp_path), "config": now}


def _run(problem: str = "darcy", **train) -> dict:
    return {"problem": problem, "model": {"kind": "mlp", "hidden": [32, 32]}, "data": {"split": {"train": 0.8}},
            "train": {"lr": 0.01, **train}}


def _other_value(key: str):
    """A valid value of ``key`` that is not its built-in default."""
    from surrogate.config import SCHEDULES, TRAINERS

    default = builtin_defaults("darcy", "mlp")[key]
    pool = {"train.schedule": SCHEDULES, "train.trainer": TRAINERS, "train.growth.share": (0.3, 0.4),
            "train.fas.eta": (1.5, 2.0)}[key]
    return next(v for v in pool if v != default)


@pytest.mark.parametrize("section, key", [("train", "schedule"), ("growth", "share"), ("fas", "eta")])
def test_a_key_a_record_lacks_counts_at_its_builtin_default(tmp_path, section, key):
    dotted = f"train.{key}" if section == "train" else f"train.{section}.{key}"
    default, other = builtin_defaults("darcy", "mlp")[dotted], _other_value(dotted)
    setting = {key: default} if section == "train" else {section: {key: default}}
    task = _task_with_record(tmp_path, _run(), _run(**setting))    # the key added since, at its default
    assert record_is_current(task, "f")
    changed = {key: other} if section == "train" else {section: {key: other}}
    assert not record_is_current({**task, "config": _run(**changed)}, "f")     # never silently another run


def test_a_record_keeps_the_value_it_holds_when_a_default_changes(tmp_path, monkeypatch):
    from study.core import runkey

    default = builtin_defaults("darcy", "mlp")["train.schedule"]
    other = _other_value("train.schedule")
    task = _task_with_record(tmp_path, _run(schedule=default), _run(schedule=default))
    assert record_is_current(task, "f")
    moved = {**builtin_defaults("darcy", "mlp"), "train.schedule": other}     # the default changes ...
    monkeypatch.setattr(runkey, "builtin_defaults", lambda problem, kind: moved)
    assert record_is_current(task, "f")                      # ... a task that spells the old value still matches
    assert not record_is_current({**task, "config": _run()}, "f")      # one at the new default does not
    assert not record_is_current({**task, "config": _run(schedule=other)}, "f")


def test_a_key_the_config_no_longer_knows_makes_a_record_stale(tmp_path):
    old = _run()
    old["data"]["darcy_target"] = "Q"          # the key's former name
    assert not record_is_current(_task_with_record(tmp_path, old, _run()), "f")


def test_the_key_holds_the_effective_target_and_not_where_the_run_went():
    darcy = _run()
    assert run_key({**darcy, "data": {"target": {"darcy": "Q"}}}) == run_key({**darcy, "data": {"target": {}}})
    assert run_key({**darcy, "data": {"target": {"darcy": "p"}}}) != run_key({**darcy, "data": {}})
    poisson = _run("poisson")
    assert run_key({**poisson, "data": {"target": {"darcy": "p"}}}) == run_key({**poisson, "data": {}})
    assert run_key(_run(device="cuda")) == run_key(_run(device="cpu")) == run_key(_run())


def record_fingerprints(out: Path) -> dict[str, str]:
    """The store fingerprint of each problem, the one that every committed record of ``out`` shares."""
    seen: dict[str, set] = {}
    for path in (out / "runs").glob("*/*/*/record.json"):
        rec = json.loads(path.read_text())
        seen.setdefault(rec["config"]["problem"], set()).add(rec["store_fingerprint"])
    assert seen and all(len(fps) == 1 for fps in seen.values()), seen
    return {problem: fps.pop() for problem, fps in seen.items()}


def test_every_committed_first_study_record_is_current_for_its_run():
    """A resume of ``python -m study.v1`` on the stores the records were trained on reruns nothing."""
    out = RESULTS / "v1"
    fps = record_fingerprints(out)
    spec = presets.build_spec("full")
    tasks = plan.plan(spec, out, {p: Path("/nonexistent") for p in fps}, device="cpu")
    stale = [t["run_id"] for t in tasks if not record_is_current(t, fps[spec["setups"][t["setup"]]["problem"]])]
    assert len(tasks) == 196 and not stale, stale[:5]


# --------------------------------------------------------------------------
# the package's shape: one core, editions through its public API, no results inside
# --------------------------------------------------------------------------
def _imports(path: Path):
    """``(module, names)`` of every import of a file (``names`` empty for ``import module``)."""
    import ast

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            yield node.module or "", [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            yield from ((a.name, []) for a in node.names)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_module_imports_a_private_name_of_another():
    import ast

    bad = []
    for path in sorted((ROOT / "study").rglob("*.py")):
        bad += [f"{path.relative_to(ROOT)}: from {mod} import {n}" for mod, names in _imports(path)
                for n in names if _private(n)]
        tree = ast.parse(path.read_text())
        modules = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                   for a in node.names}
        bad += [f"{path.relative_to(ROOT)}: {node.value.id}.{node.attr}" for node in ast.walk(tree)
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in modules and _private(node.attr)]
    assert not bad, bad


def test_editions_stand_on_the_core_public_api_only():
    import study.core

    bad = []
    for path in sorted((ROOT / "study").rglob("*.py")):
        part = path.relative_to(ROOT / "study").parts
        edition = part[0] if len(part) > 1 and part[0] != "core" else None
        for mod, names in _imports(path):
            if not mod.startswith("study"):
                continue
            if part[0] == "core" and not mod.startswith("study.core"):
                bad.append(f"{path.relative_to(ROOT)}: the core imports {mod}")
            elif edition and mod == "study.core":
                bad += [f"{path.relative_to(ROOT)}: {n} is not in study.core.__all__" for n in names
                        if n not in study.core.__all__]
            elif edition and not mod.startswith(f"study.{edition}"):
                bad.append(f"{path.relative_to(ROOT)}: imports {mod} (another edition, or the core past its API)")
    assert not bad, bad


def test_no_results_inside_the_package():
    files = [p for p in (ROOT / "study").rglob("*") if p.is_file() and p.suffix != ".py"
             and "__pycache__" not in p.parts]
    assert not files, files[:5]
