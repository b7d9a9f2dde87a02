"""pipelines.report: the summary's Monte Carlo sections come from the stages' .meta.json files."""

import json

import pytest

pytest.importorskip("matplotlib")

from pipelines.report import mc_section, uq_section

UQ = {"target": "E[Q] at n = 32", "status": "converged", "qmc": True,
      "estimate": {"mean": 1.0915, "se": 0.00109, "ci95_low": 1.0893, "ci95_high": 1.0938},
      "tolerance": {"eps": 0.00109},
      "levels": [{"label": "0   Q4", "samples": 8192, "mean": 1.079, "var": 0.2219, "cost_per_sample_s": 1.7e-4},
                 {"label": "1   Q8 - Q4", "samples": 2048, "mean": 0.0061, "var": 9.2e-4, "cost_per_sample_s": 4.6e-4}],
      "cost": {"total_s": 4.96, "plain_cost_s": 667.9, "speedup_total": 134.6}}
MC = {"model": "models/darcy-selected/best.pt", "n": 30000, "fem_n": 500,
      "fem": {"mean": 1.125, "se": 0.014, "ci95_low": 1.098, "ci95_high": 1.153},
      "cost": {"variance_reduction_equal_cost": 7.142, "variance_reduction_equal_total_cost": 0.568,
               "fixed_s": 135.9, "cost_total_s": 147.6}}


def test_uq_section_shows_every_level_and_the_gain_at_total_cost():
    text = "\n".join(uq_section(json.loads(json.dumps(UQ))))
    assert "| 0 Q4 | 8192 |" in text and "| 1 Q8 - Q4 | 2048 |" in text
    assert "x134.6" in text and "quasi-Monte Carlo" in text and "converged" in text


def test_mc_section_counts_the_surrogates_data_and_training():
    text = "\n".join(mc_section(MC))
    assert "same sampling cost: x7.142" in text
    assert "x0.568 against plain FEM Monte Carlo of the same total cost" in text


def test_missing_stage_outputs_leave_their_sections_out():
    assert uq_section(None) == [] and mc_section(None) == []


@pytest.mark.parametrize("text", ["not json", '{"estimate": 3}', "[]"])
def test_a_damaged_stage_output_is_one_line_naming_the_file(tmp_path, text):
    from pipelines.report import _section

    path = tmp_path / "uq.meta.json"
    path.write_text(text)
    with pytest.raises(SystemExit) as stop:
        _section(uq_section, path)
    assert str(path) in str(stop.value) and "\n" not in str(stop.value)
