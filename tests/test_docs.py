"""The documentation's docstring filter (docs/_ext/plain_math.py); `make docs` builds the site itself."""

import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
sys.path.insert(0, str(DOCS / "_ext"))
plain_math = pytest.importorskip("plain_math")


@pytest.mark.parametrize("line, rendered", [
    ("C(x, x') = variance * rho(|x - x'| / length)", r"C(x, x') = variance * rho(\|x - x'\| / length)"),
    ("normals (B, *noise_shape) of ``(*entropy, 1)``", r"normals (B, \*noise_shape) of ``(*entropy, 1)``"),
    ("samples have *exactly* the **kernel's** covariance", "samples have *exactly* the **kernel's** covariance"),
    (":class:`PseudoNormals` of |a|, `link <http://a|b>`_", r":class:`PseudoNormals` of \|a\|, `link <http://a|b>`_"),
    ("* ``Q`` = (1/|G_out|) int q.n ds", r"* ``Q`` = (1/\|G_out\|) int q.n ds"),
])
def test_plain_text_formulas_are_escaped_and_markup_is_kept(line, rendered):
    lines = [line]
    plain_math.plain_math(lines)
    assert lines == [rendered]


def test_literal_blocks_and_table_rows_are_left_alone():
    lines = ["The digest::", "", "    blake2b( id | a | *k* )", "", "| a line block", "after |x|"]
    plain_math.plain_math(lines)
    assert lines == ["The digest::", "", "    blake2b( id | a | *k* )", "", "| a line block", r"after \|x\|"]


def test_every_example_is_in_the_gallery():
    examples = sorted(p.name for p in (DOCS / "examples").glob("*.py"))
    assert examples and all(name.startswith("plot_") for name in examples)   # filename_pattern of docs/conf.py
    for path in (DOCS / "examples").glob("*.py"):
        title = path.read_text().split('"""')[1].strip().splitlines()
        assert set(title[1]) == {"="} and len(title[1]) == len(title[0]), path.name   # a gallery title
