"""Formatting for the report: numbers, mean ± sd, paired comparisons, counts and markdown tables."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

VERDICT_LETTER = {"win": "W", "tie": "T", "loss": "L", "n/a": "-"}


def fmt(v: float | None, digits: int = 3) -> str:
    """A value in a table: ``digits`` significant digits, whole numbers in full, inf as "diverged"."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if math.isinf(v):
        return "diverged" if v > 0 else "-inf"
    if v == 0:
        return "0"
    a = abs(v)
    if float(v).is_integer() and a < 1e6:
        return str(int(v))
    if 1e-2 <= a < 1e3:
        return f"{v:.{digits}g}"
    return f"{v:.{digits - 1}e}"


def count(v: float) -> str:
    """A count or size in prose: thousands separated (``10,000``), fractions to three digits (``62.5``)."""
    return f"{int(v):,}" if float(v).is_integer() else f"{v:,.3g}"


def fmt_ms(m: float, sd: float, bad: int) -> str:
    s = "n/a" if math.isnan(m) else f"{fmt(m)} ± {fmt(sd, 2)}"
    return s + (f" ({bad} div.)" if bad else "")


def fmt_pair(p: Mapping) -> str:
    """A paired comparison: mean difference (% of the baseline) [CI]; better/pairs, sign-test p; verdict."""
    sign = f"{p['better']}/{p['n']}, p={p['sign_p']:.2g}"
    if p["ci"] is None:
        return f"CI n/a (a run diverged); {sign} **{p['verdict']}**"
    rel = "" if p["rel"] is None else f" ({100 * p['rel']:+.0f}%)"
    return (f"{fmt(p['mean'], 2)}{rel} [{fmt(p['ci'][0], 2)}, {fmt(p['ci'][1], 2)}]; {sign} "
            f"**{p['verdict']}**")


def rel_verdict(p: Mapping) -> str:
    rel = "n/a" if p["rel"] is None else f"{100 * p['rel']:+.0f}%"
    return f"{rel} {p['verdict']}"


def plural(k: int, word: str) -> str:
    return f"{k} {word}{'' if k == 1 else ('es' if word.endswith('s') else 's')}"


def verdict_counts(vs: Sequence[Mapping]) -> str:
    """``"3 wins, 1 tie, 0 losses"``."""
    c = {k: sum(v["verdict"] == k for v in vs) for k in ("win", "tie", "loss")}
    return f"{plural(c['win'], 'win')}, {plural(c['tie'], 'tie')}, {plural(c['loss'], 'loss')}"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A markdown table, one line per row."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out
