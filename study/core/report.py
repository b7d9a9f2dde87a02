"""Report helpers every edition uses: the report files, curve sections and how regime-map cells are named."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

#: Each edition's report in ``docs/`` (they link each other).
REPORTS = {"v1": "RESULTS_v1.md", "v2": "RESULTS.md"}


def curve_sections(head: list[str], spec: Mapping, setups: list[str], plot: Callable[[str, Path], None],
                   docs: Path, prefix: str) -> tuple[list[str], list[Path]]:
    """``head``, then per set-up its title and the plot ``plot(setup, png)`` draws; the lines and the PNGs."""
    L, pngs = list(head), []
    for s in setups:
        png = docs / f"{prefix}curves_{s}.png"
        plot(s, png)
        pngs.append(png)
        L += [f"### {spec['setups'][s]['title']}", "", f"![{s} curves]({png.name})", ""]
    return L, pngs


def regime_cells(reg: Sequence[Mapping], verdict: str) -> str:
    """The regime-map cells with ``verdict``, whole training-set sizes or FAS runs named once."""
    hit = [v for v in reg if v["verdict"] == verdict]
    if not hit:
        return "no cell"
    if len(hit) == len(reg):
        return f"all {len(reg)} cells"
    parts = []
    for n in dict.fromkeys(v["n_train"] for v in reg):
        row, row_hit = [v for v in reg if v["n_train"] == n], [v for v in hit if v["n_train"] == n]
        if row_hit and len(row_hit) == len(row):
            parts.append(f"every cell at {n} samples")
            continue
        for v in row_hit:
            parts.append(f"{n} samples / {v['fas']} ({v['panel'].replace('_', ' ').replace('mse', 'MSE')})")
    return ", ".join(parts)
