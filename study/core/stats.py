"""Paired statistics of the study: per-seed differences, t-interval, t-test and exact sign test (scipy)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from scipy import stats

LEVEL = 0.95   # confidence level of every interval in the report


def sign_test(n_plus: int, n_minus: int) -> float:
    """Exact two-sided binomial sign-test p-value (ties dropped beforehand); 1 without pairs."""
    n = n_plus + n_minus
    return 1.0 if n == 0 else float(stats.binomtest(n_plus, n, 0.5).pvalue)


def _counts(a: Sequence[float], b: Sequence[float]) -> tuple[int, int, int, list[float], bool]:
    """Seeds where ``a`` is lower / higher / equal, the finite differences, and whether a run failed (inf)."""
    better = worse = even = 0
    diffs: list[float] = []
    failed = False
    for x, y in zip(a, b):
        fx, fy = math.isfinite(x), math.isfinite(y)
        if fx and fy:
            d = x - y
            diffs.append(d)
            better += d < 0
            worse += d > 0
            even += d == 0
        else:
            failed = True
            better += fx and not fy       # baseline failed
            worse += fy and not fx        # FAS failed
            even += not (fx or fy)
    return better, worse, even, diffs, failed


def paired(fas: Sequence[float], base: Sequence[float], level: float = LEVEL) -> dict[str, Any]:
    """Paired comparison of two per-seed samples of a lower-is-better metric.

    Differences are ``fas - base``.  Returns n, mean/sd of the difference,
    the t-based ``level`` CI (``ci``, None when undefined), the t-test
    p-value, ``better``/``worse``/``even`` (seeds where FAS is lower /
    higher / equal), the exact sign-test p-value and the verdict
    (``win`` / ``tie`` / ``loss`` from FAS's point of view; ``n/a`` with
    fewer than two pairs).
    """
    if len(fas) != len(base):
        raise ValueError(f"paired samples differ in length ({len(fas)} vs {len(base)})")
    a = [float(x) for x in fas]
    b = [float(x) for x in base]
    better, worse, even, diffs, failed = _counts(a, b)
    n = len(a)
    out: dict[str, Any] = {"n": n, "better": better, "worse": worse, "even": even,
                           "sign_p": sign_test(better, worse), "mean": None, "sd": None, "ci": None,
                           "t_p": None, "rel": None, "verdict": "n/a"}
    if n < 2:
        return out
    if failed:
        out["verdict"] = "win" if better == n else "loss" if worse == n else "tie"
        return out
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    se = sd / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + level / 2.0, n - 1)) * se
    lo, hi = mean - half, mean + half
    if se > 0:
        t_p = float(2.0 * stats.t.sf(abs(mean / se), n - 1))
    else:
        t_p = 1.0 if mean == 0 else 0.0
    mb = sum(b) / n
    out.update(mean=mean, sd=sd, ci=[lo, hi], t_p=t_p, rel=(mean / mb if mb else None))
    out["verdict"] = "win" if hi < 0 else "loss" if lo > 0 else "tie"
    return out


def mean_sd(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean and sample sd of the finite values, and how many were not finite."""
    vals = [float(v) for v in values]
    fin = [v for v in vals if math.isfinite(v)]
    bad = len(vals) - len(fin)
    if not fin:
        return float("nan"), float("nan"), bad
    m = sum(fin) / len(fin)
    sd = math.sqrt(sum((v - m) ** 2 for v in fin) / (len(fin) - 1)) if len(fin) > 1 else 0.0
    return m, sd, bad
