"""Study v3: methods as typed configs, the figures of its report, and a report from synthetic records."""

from __future__ import annotations

import math

import pytest

from study.v3 import analysis
from study.v3.methods import BASELINES, COARSE_SHARE, METHODS
from study.v3.report import write_report
from study.v3.runs import base_config, tune_config
from study.v3.spec import build_spec


def _record(seed: int, wu: list[float], val: list[float], test: float, wall: float = 10.0) -> dict:
    return {"seed": seed, "status": "ok", "wall_s": wall, "test": {"mse": test, "linf": 1.0, "rel_l2": 0.1},
            "curve": {"step": list(range(len(wu))), "wu_flops": wu, "wu_paper": wu, "val_mse": val,
                      "val_linf": val, "elapsed_s": [w / 10 for w in wu]}}


def test_every_method_is_a_config_of_the_real_classes():
    spec = build_spec("quick")
    for name, method in METHODS.items():
        cfg = base_config(spec, "darcy_fc", name, seed=3, device="cpu")
        assert cfg.train.seed == 3 and cfg.train.schedule == "cosine"
        assert cfg.train.trainer == method.trainer and cfg.train.growth.levels == method.growth
        assert cfg.train.parametrization == method.parametrization
        t = tune_config(spec, name)
        assert t.level == method.tune_level and set(t.space) == set(method.space)
        assert t.budget == pytest.approx(spec["tuning"]["budget"] * (COARSE_SHARE if method.tune_level else 1.0))
    assert METHODS["ni-mup@coarse"].full_width == "ni-mup" and set(BASELINES) <= set(METHODS)
    with pytest.raises(SystemExit, match="unknown method"):
        build_spec("quick", methods=["nope"])


def test_to_target_reads_the_first_evaluation_at_or_below_the_target():
    rec = _record(0, [10, 20, 30, 40], [0.5, None, 0.2, 0.3], 0.1)
    assert analysis.to_target(rec, 0.25) == (30.0, 3.0)
    assert analysis.to_target(rec, 0.5) == (10.0, 1.0)
    assert analysis.to_target(rec, 0.1) == (math.inf, None)


def test_holm_steps_down_and_ratio_tests_pair_by_seed():
    assert analysis.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    t = analysis.ratio_test({0: 1.0, 1: 2.0, 2: 4.0}, {0: 2.0, 1: 4.0, 2: 8.0})
    assert t["gm"] == pytest.approx(0.5) and t["p"] == 0.0 and t["missing"] == 0
    assert analysis.ratio_test({0: math.inf, 1: 1.0}, {0: 1.0, 1: 1.0})["missing"] == 1


def test_the_report_states_every_target_from_synthetic_runs(tmp_path):
    spec = build_spec("quick", setups=["darcy_fc"], methods=["adamw", "sgd", "ni-mup", "ni-mup@coarse"])
    budget = spec["setups"]["darcy_fc"]["budget_wu"]
    wu = [budget * f for f in (0.25, 0.5, 0.75, 1.0)]
    slow, fast = [0.4, 0.3, 0.2, 0.1], [0.2, 0.1, 0.08, 0.05]
    finals = {"adamw": [_record(s, wu, slow, 0.1) for s in range(3)],
              "sgd": [_record(s, wu, [v * 2 for v in slow], 0.2) for s in range(3)],
              "ni-mup": [_record(s, wu, [v * (1 + 0.01 * s) for v in fast], 0.05) for s in range(3)],
              "ni-mup@coarse": [_record(s, wu, fast, 0.051) for s in range(3)]}

    def search(cost):
        return {"space": {"lr": [1e-4, 3e-2]}, "best": {"values": {"lr": 1e-3}},
                "search": {"trials": 4, "cost_runs": cost, "seconds": 40.0}}

    searches = {"adamw": search(8.0), "sgd": search(8.0), "ni-mup": search(8.0), "ni-mup@coarse": search(2.0)}
    results = {"spec": spec, "command": "python -m study.v3", "finals": {"darcy_fc": finals},
               "searches": {"darcy_fc": searches}}
    text = write_report(results, tmp_path).read_text()
    assert "NI + AdamW, muP, tuned on the coarse level: test MSE 1.02x of full-width tuning at 0.25x its " \
           "search cost (met" in text
    assert "Darcy FC, NI + AdamW, muP, tuned on the coarse level: total cost 0.33x tuned AdamW's" in text
    rows = analysis.to_target_table(results, spec)
    ni_b = next(r for r in rows if r["method"] == "ni-mup" and r["fraction"] == 1.0)
    assert ni_b["reference"] == "adamw" and ni_b["flops"]["gm"] == pytest.approx((0.5 * 0.75 * 0.75) ** (1 / 3))
    assert (tmp_path / "study_v3_curves.png").stat().st_size > 0


def test_report_only_without_a_matching_run_writes_nothing(tmp_path, capsys):
    """Stores regenerated since the runs must not turn a finished report into an empty one."""
    from study.v3.cli import main

    out = tmp_path / "v3"
    with pytest.raises(SystemExit) as stop:
        main(["--report-only", "--out", str(out), "--data", str(tmp_path / "data"), "--docs", str(tmp_path / "docs")])
    assert "no finished run matches the stores" in str(stop.value) and "left as they are" in str(stop.value)
    assert not out.exists() and not (tmp_path / "docs").exists()
