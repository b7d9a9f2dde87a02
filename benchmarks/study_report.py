"""Turn the FAS-vs-SGD/Adam study's JSON (``benchmarks/study.py``) into ``RESULTS.md`` + PNG plots.

Everything in the report is computed here from the per-run records in the
results file; no number is typed by hand (the only constants are the
paper's own table values, quoted as such for reference).

    python benchmarks/study_report.py --results study/results.json --docs docs

What is computed
----------------
* **Readout at a budget.**  Every run logs its validation (fine net and, for
  FAS, the first auxiliary net) and training metrics every
  ``eval_every_wu`` work units, with both work counts (``flops`` and
  ``paper``).  A metric "at budget B in measure M" uses the evaluations whose
  M-count is <= B: *best* is their minimum (the paper's tables), *final*
  the last one.  A run that diverged before B counts as failed (inf) at B.
* **Both accountings.**  All runs are budgeted by FLOP work units (the main
  comparison).  Under the paper's 1/4-per-level count a FAS run spends fewer
  "paper" units than FLOP units, so the paper-accounting comparison reads
  every run's curve at B_paper = the largest multiple of ``eval_every_wu``
  that every finished FAS run of the setup reached in paper units: one-level
  runs (where both counts agree) at B_paper work units, FAS runs where their
  paper count equals B_paper (which is more real work than B_paper).
* **Paired statistics** per seed (FAS run minus baseline run with the same
  seed; lower is better, so a negative difference favours FAS): mean and
  standard deviation of the difference, a t-based 95% confidence interval,
  the sign count and an exact two-sided binomial sign-test p-value.
  Verdict: *win* if the CI lies below 0, *loss* if above 0, *tie* if it
  contains 0.  When a pair has exactly one failed (diverged) run the CI is
  undefined; the verdict is then *win*/*loss* only if every seed favours the
  same side, else *tie*.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

# --------------------------------------------------------------------------
# statistics (pure Python: scipy is not a dependency of the project)
# --------------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """CDF of Student's t distribution with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"df = {df!r}: must be > 0")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_ppf(q: float, df: float) -> float:
    """Quantile of Student's t distribution (bisection on :func:`t_cdf`)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"q = {q!r}: must be in (0, 1)")
    if q == 0.5:
        return 0.0
    if q < 0.5:
        return -t_ppf(1.0 - q, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < q:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def sign_test(n_plus: int, n_minus: int) -> float:
    """Exact two-sided binomial sign-test p-value (ties dropped beforehand)."""
    n = n_plus + n_minus
    if n == 0:
        return 1.0
    k = min(n_plus, n_minus)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0 ** n
    return min(1.0, 2.0 * tail)


def paired(fas: Sequence[float], base: Sequence[float], level: float = 0.95) -> dict[str, Any]:
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
    better = worse = even = 0
    diffs: list[float] = []
    undefined = False
    for x, y in zip(a, b):
        fx, fy = math.isfinite(x), math.isfinite(y)
        if fx and fy:
            d = x - y
            diffs.append(d)
            better += d < 0
            worse += d > 0
            even += d == 0
        elif fx:          # baseline failed
            better += 1
            undefined = True
        elif fy:          # FAS failed
            worse += 1
            undefined = True
        else:
            even += 1
            undefined = True
    n = len(a)
    out: dict[str, Any] = {"n": n, "better": better, "worse": worse, "even": even,
                           "sign_p": sign_test(better, worse), "mean": None, "sd": None, "ci": None,
                           "t_p": None, "rel": None, "verdict": "n/a"}
    finite_b = [y for y in b if math.isfinite(y)]
    if n < 2:
        return out
    if undefined:
        out["verdict"] = "win" if better == n else "loss" if worse == n else "tie"
        return out
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    se = sd / math.sqrt(n)
    tq = t_ppf(0.5 + level / 2.0, n - 1)
    lo, hi = mean - tq * se, mean + tq * se
    if se > 0:
        tstat = mean / se
        t_p = 2.0 * (1.0 - t_cdf(abs(tstat), n - 1))
    else:
        t_p = 1.0 if mean == 0 else 0.0
    mb = sum(finite_b) / len(finite_b) if finite_b else float("nan")
    out.update(mean=mean, sd=sd, ci=[lo, hi], t_p=t_p, rel=(mean / mb if mb and math.isfinite(mb) else None))
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


# --------------------------------------------------------------------------
# reading a run's curve at a budget
# --------------------------------------------------------------------------
CURVE_KEYS = ("val_mse", "val_linf", "aux_val_mse", "aux_val_linf", "train_mse", "train_linf")


def cut(record: Mapping, measure: str, budget: float) -> list[int] | None:
    """Indices of the evaluations with ``measure`` count <= budget; None if the run failed before."""
    c = record["curve"]
    wu = c[f"wu_{measure}"]
    idx = [i for i, w in enumerate(wu) if w <= budget * (1 + 1e-9) + 1e-9]
    if record.get("status") != "ok":
        last = wu[-1] if wu else 0.0
        if last < budget * (1 - 1e-9):
            return None
    return idx


def readout(record: Mapping, key: str, measure: str, budget: float, how: str) -> float:
    """``best`` (min) or ``final`` (last) of curve ``key`` up to ``budget`` in ``measure``; inf if failed."""
    idx = cut(record, measure, budget)
    if idx is None:
        return math.inf
    vals = record["curve"].get(key)
    if vals is None:
        return math.nan
    sel = [vals[i] for i in idx if vals[i] is not None and math.isfinite(vals[i])]
    if not sel:
        return math.nan
    if how == "best":
        return min(sel)
    if how == "final":
        v = vals[idx[-1]]
        return v if v is not None and math.isfinite(v) else math.nan
    raise ValueError(f"how = {how!r}: allowed: 'best', 'final'")


# --------------------------------------------------------------------------
# formatting
# --------------------------------------------------------------------------
def fmt(v: float | None, digits: int = 3) -> str:
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


def fmt_ms(m: float, sd: float, bad: int) -> str:
    s = "n/a" if math.isnan(m) else f"{fmt(m)} ± {fmt(sd, 2)}"
    return s + (f" ({bad} div.)" if bad else "")


def fmt_pair(p: Mapping) -> str:
    sign = f"{p['better']}/{p['n']}, p={p['sign_p']:.2g}"
    if p["ci"] is None:
        return f"CI n/a (a run diverged); {sign} **{p['verdict']}**"
    rel = "" if p["rel"] is None else f" ({100 * p['rel']:+.0f}%)"
    return (f"{fmt(p['mean'], 2)}{rel} [{fmt(p['ci'][0], 2)}, {fmt(p['ci'][1], 2)}]; {sign} "
            f"**{p['verdict']}**")


def _regime_cells(reg: Sequence[Mapping], verdict: str) -> str:
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


def _rel_verdict(p: Mapping) -> str:
    rel = "n/a" if p["rel"] is None else f"{100 * p['rel']:+.0f}%"
    return f"{rel} {p['verdict']}"


VERDICT_LETTER = {"win": "W", "tie": "T", "loss": "L", "n/a": "-"}


# --------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------
# The paper's best losses (section 8, Tables 1-3), quoted for reference only.
PAPER_TABLES = {
    ("poisson_fc", "sgd"): (2.94e-3, 0.626, 2.84e-3, 0.814),
    ("poisson_fc", "fas2"): (1.61e-3, 0.496, 1.59e-3, 0.664),
    ("poisson_cnn", "sgd"): (5.79e-3, 0.772, 5.81e-3, 1.022),
    ("poisson_cnn", "fas2"): (5.38e-3, 0.756, 5.37e-3, 0.991),
    ("darcy_fc", "sgd"): (1.49e-3, 0.707, 2.37e-5, 0.0546),
    ("darcy_fc", "fas2"): (1.39e-3, 0.472, 4.75e-5, 0.0540),
    ("darcy_cnn", "sgd"): (6.61e-4, 0.361, 2.92e-5, 0.0469),
    ("darcy_cnn", "fas2"): (4.84e-4, 0.312, 7.47e-5, 0.0696),
}
BASELINES = ("sgd", "adam")
BASE_NAME = {"sgd": "SGD", "adam": "Adam"}
METRIC_NAME = {"mse": "L2", "linf": "L∞"}
METRICS = (("mse", "L2 (MSE)"), ("linf", "L∞"))


class Study:
    """Index of the records of a results file."""

    def __init__(self, results: Mapping):
        self.results = results
        self.spec = results["spec"]
        self.records = [r for r in results["records"]]
        self.setups = [s for s in self.spec["setups"] if any(r["setup"] == s and r["group"] == "main"
                                                              for r in self.records)]
        self.methods = list(self.spec["methods"])

    def runs(self, setup: str, method: str, group: str = "main", n_train: int | None = None) -> dict[int, Mapping]:
        out = {}
        for r in self.records:
            if r["setup"] == setup and r["method"] == method and r["group"] == group and (
                    n_train is None or r.get("n_train") == n_train):
                out[int(r["seed"])] = r
        return out

    def fas_methods(self) -> list[str]:
        return [m for m in self.methods if self.spec["method_defs"][m]["trainer"] == "fas"]

    def budget(self, setup: str) -> float:
        return float(self.spec["setups"][setup]["budget_wu"])

    def paper_budget(self, setup: str) -> float:
        """B_paper: the largest eval multiple every finished FAS run of the setup reached in paper units."""
        ev = float(self.spec["setups"][setup]["eval_every_wu"])
        reach = []
        for m in self.fas_methods():
            for r in self.runs(setup, m).values():
                if r.get("status") == "ok" and r["curve"]["wu_paper"]:
                    reach.append(r["curve"]["wu_paper"][-1])
        if not reach:
            return self.budget(setup)
        return max(ev, math.floor(min(reach) / ev + 1e-9) * ev)

    def accountings(self, setup: str) -> list[tuple[str, str, float]]:
        return [("flops", "FLOP WU", self.budget(setup)), ("paper", "paper WU", self.paper_budget(setup))]

    def values(self, setup: str, method: str, key: str, measure: str, budget: float, how: str,
               seeds: Sequence[int] | None = None, group: str = "main", n_train: int | None = None) -> dict[int, float]:
        runs = self.runs(setup, method, group, n_train)
        seeds = sorted(runs) if seeds is None else seeds
        return {s: readout(runs[s], key, measure, budget, how) for s in seeds if s in runs}

    def overfit(self, setup: str, method: str, budget: float, seeds: Sequence[int] | None = None,
                group: str = "main", n_train: int | None = None) -> tuple[float, float]:
        """Mean over seeds of final/best validation MSE and of final validation/final training MSE at ``budget``."""
        kw = {"seeds": seeds, "group": group, "n_train": n_train}
        best = self.values(setup, method, "val_mse", "flops", budget, "best", **kw)
        fin = self.values(setup, method, "val_mse", "flops", budget, "final", **kw)
        tr = self.values(setup, method, "train_mse", "flops", budget, "final", **kw)
        fb = mean_sd([fin[k] / best[k] for k in fin if 0 < best.get(k, 0) < math.inf])[0]
        vt = mean_sd([fin[k] / tr[k] for k in fin if 0 < tr.get(k, 0) < math.inf])[0]
        return fb, vt

    def compare(self, setup: str, fas: str, base: str, key: str, measure: str, budget: float, how: str,
                base_key: str | None = None, group: str = "main", n_train: int | None = None,
                base_runs: tuple[str, int | None] | None = None) -> dict:
        a = self.values(setup, fas, key, measure, budget, how, group=group, n_train=n_train)
        if base_runs is None:
            b = self.values(setup, base, base_key or key, measure, budget, how, group=group, n_train=n_train)
        else:
            b = self.values(setup, base, base_key or key, measure, budget, how, group=base_runs[0],
                            n_train=base_runs[1])
        seeds = sorted(set(a) & set(b))
        return paired([a[s] for s in seeds], [b[s] for s in seeds])


def _label(study: Study, method: str, aux: bool = False) -> str:
    d = study.spec["method_defs"][method]
    txt = d["label"]
    return txt + (" — aux 1" if aux else "")


def _rows(study: Study) -> list[tuple[str, bool]]:
    rows: list[tuple[str, bool]] = []
    for m in study.methods:
        rows.append((m, False))
        if study.spec["method_defs"][m]["trainer"] == "fas":
            rows.append((m, True))
    return rows


def _key(metric: str, aux: bool, split: str = "val") -> str:
    return f"{'aux_' if aux and split == 'val' else ''}{split}_{metric}"


# ---- plots ---------------------------------------------------------------
COLORS = {"sgd": "k", "adam": "tab:gray", 2: "tab:blue", 3: "tab:orange", 4: "tab:green", 5: "tab:red"}


def _curve_on_grid(records: Sequence[Mapping], key: str, grid: np.ndarray, measure: str = "flops") -> np.ndarray:
    rows = []
    for r in records:
        c = r["curve"]
        wu = np.asarray(c[f"wu_{measure}"], float)
        v = np.asarray([np.nan if x is None else x for x in c.get(key, [])], float)
        if v.size == 0 or wu.size == 0:
            continue
        ok = np.isfinite(v)
        row = np.full(grid.shape, np.nan)
        if ok.sum() >= 1:
            inside = (grid >= wu[ok][0]) & (grid <= wu[ok][-1])
            row[inside] = np.interp(grid[inside], wu[ok], v[ok])
        rows.append(row)
    return np.array(rows) if rows else np.full((1,) + grid.shape, np.nan)


def plot_setup(study: Study, setup: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    B = study.budget(setup)
    grid = np.linspace(0.0, B, 201)
    variants = [("minibatch", "FAS, τ minibatch"), ("none", "FAS, τ none")]
    cols = [("val_mse", "validation MSE"), ("val_linf", "validation L∞"), ("train_mse", "training MSE (subset)")]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5), sharex=True)
    for i, (tau, title) in enumerate(variants):
        for j, (key, ylabel) in enumerate(cols):
            ax = axes[i, j]
            for m in study.methods:
                d = study.spec["method_defs"][m]
                if d["trainer"] == "fas" and d["tau"] != tau:
                    continue
                runs = list(study.runs(setup, m).values())
                if not runs:
                    continue
                color = COLORS.get(d["levels"] if d["trainer"] == "fas" else m, None)
                keys = [(key, "-", d["label"])]
                if d["trainer"] == "fas" and key.startswith("val_"):
                    keys.append(("aux_" + key, ":", d["label"] + " aux 1"))
                for k, ls, lab in keys:
                    Y = _curve_on_grid(runs, k, grid)
                    with np.errstate(all="ignore"):
                        import warnings

                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore", RuntimeWarning)
                            mean = np.nanmean(Y, axis=0)
                            lo, hi = np.nanmin(Y, axis=0), np.nanmax(Y, axis=0)
                    ax.plot(grid, mean, ls, color=color, lw=1.4, label=f"{lab} (n={len(runs)})")
                    if ls == "-":
                        ax.fill_between(grid, lo, hi, color=color, alpha=0.15, lw=0)
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            if i == 1:
                ax.set_xlabel("FLOP work units")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{title}: {ylabel}", fontsize=10)
    handles, labels = [], []
    for ax in axes[:, 0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(f"{study.spec['setups'][setup]['title']}: mean over seeds (line), min–max band; "
                 "dotted: first auxiliary net", fontsize=11)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_regime(cells: Mapping, sizes: Sequence[int], levels: Sequence[str], labels: Sequence[str],
                panels: Sequence[tuple[str, str]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    ncols = min(2, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.0 * ncols, (0.8 * len(sizes) + 2.0) * nrows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (pkey, ptitle) in zip(axes.flat, panels):
        Z = np.full((len(sizes), len(levels)), np.nan)
        for i, n in enumerate(sizes):
            for j, m in enumerate(levels):
                p = cells.get((n, m, pkey))
                if p and p.get("rel") is not None:
                    Z[i, j] = 100.0 * p["rel"]
        lim = np.nanmax(np.abs(Z)) if np.isfinite(Z).any() else 1.0
        lim = max(float(lim), 1.0)
        im = ax.imshow(Z, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -lim, lim), aspect="auto")
        for i, n in enumerate(sizes):
            for j, m in enumerate(levels):
                p = cells.get((n, m, pkey))
                if not p:
                    continue
                txt = "n/a" if p.get("rel") is None else f"{100 * p['rel']:+.0f}%"
                dark = np.isfinite(Z[i, j]) and abs(Z[i, j]) > 0.6 * lim
                ax.text(j, i, f"{txt}\n{p['verdict']}", ha="center", va="center", fontsize=9,
                        color="white" if dark else "black")
        ax.set_xticks(range(len(levels)), labels)
        ax.set_yticks(range(len(sizes)), [str(n) for n in sizes])
        ax.set_xlabel("FAS levels (τ minibatch)")
        ax.set_ylabel("training samples")
        ax.set_title(ptitle, fontsize=10)
        fig.colorbar(im, ax=ax, label="mean FAS − SGD, % of SGD mean")
    fig.suptitle("Regime map: paired change against one-level SGD (blue: FAS better, red: worse)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- markdown ------------------------------------------------------------
def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def build_report(results: Mapping, docs: str | Path, *, command: str | None = None,
                 report_command: str | None = None, prefix: str = "study_") -> dict:
    """Write ``docs/RESULTS.md`` and the PNGs; return the verdicts (for tests and the console)."""
    docs = Path(docs)
    docs.mkdir(parents=True, exist_ok=True)
    study = Study(results)
    spec = study.spec
    L: list[str] = []
    verdicts: dict[str, Any] = {"main": [], "regime": [], "regime_sgd": []}

    L.append("# FAS against SGD and Adam: study results")
    L.append("")
    L.append("*Generated by `benchmarks/study_report.py` from the study's JSON output; do not edit by hand.*")
    L.append("")
    L.append("Regenerate (runs the missing runs, skips finished ones, then rewrites this file and its plots):")
    L.append("")
    L.append("```")
    L.append(command or results.get("command", "python benchmarks/study.py"))
    L.append("```")
    L.append("")
    if report_command:
        L.append(f"Report only, from the existing JSON: `{report_command}`")
        L.append("")
    n_runs = len(study.records)
    n_div = sum(r.get("status") != "ok" for r in study.records)
    wall = sum(float(r.get("wall_s") or 0.0) for r in study.records)
    devices = ", ".join(sorted({str(r.get("device")) for r in study.records}))
    L.append(f"Preset **{spec['preset']}**: {n_runs} runs ({n_div} diverged), {wall / 60:.1f} min of training wall "
             f"time in total (sum over runs; device(s): {devices}; torch threads per run: {results.get('threads')}).")
    if results.get("estimate_s") is not None:
        L.append(f"The calibration before the run estimated {results['estimate_s'] / 60:.1f} min for all runs of "
                 "this preset.")
    L.append("")

    # ---- set-up description
    L.append("## Set-ups")
    L.append("")
    rows = []
    for s in study.setups:
        d = spec["setups"][s]
        arch = d["arch"]
        arch_s = (f"MLP hidden {arch['hidden']}" if d["model"] == "mlp"
                  else f"CNN conv {arch['conv']} fc {arch['fc']}")
        rows.append([d["title"], arch_s, str(d["paper_arch"]), f"{d['n_samples']} ({d['n_train']} train / "
                     f"{d['n_val']} val)", f"{fmt(d['budget_wu'])}", f"{d['batch_size']}", f"{d['smoothing']}",
                     f"{d['rematch_every']}", f"{d['weight_decay']:g}", f"{d['eval_every_wu']:g}",
                     f"{d['flops_ratio_level1']:.3f}", ", ".join(map(str, sorted(
                         {int(r['seed']) for r in study.records if r['setup'] == s and r['group'] == 'main'})))])
    L += _table(["set-up", "network (this study)", "paper's network", "samples", "budget (FLOP WU)", "batch",
                 "pre/coarse/post", "rematch every", "weight decay", "eval every (WU)",
                 "FLOP cost of level 1", "seeds"], rows)
    L.append("")
    L.append(spec["sizes_note"])
    L.append("")
    L.append("Methods (identical for every set-up; no method was tuned — the search budget is **zero runs for "
             "every method**: SGD and FAS use the paper's learning rate 0.01 and momentum 0.9, Adam its PyTorch "
             "default learning rate 1e-3 and betas):")
    L.append("")
    for m in study.methods:
        L.append(f"- `{m}`: {spec['method_defs'][m]['description']}")
    L.append("")
    L.append("A seed sets the network initialisation, the minibatch order and the HEM visiting seed; the data "
             "split (contiguous blocks of sample indices) is the same for every seed and method. Validation "
             "metrics are in physical units on the whole validation split: MSE (the paper's L2 loss) and the "
             "largest absolute error (L∞). Training metrics are the fine network's on the first "
             f"{spec['eval_train_samples']} training samples (the auxiliary net's training loss is not recorded: "
             "n/a below).")
    L.append("")
    L.append("**Two accountings.** All runs are budgeted by FLOP work units (a level's pass costs its forward "
             "FLOPs over the fine net's; column *FLOP cost of level 1* above), the main comparison. The paper "
             "counts a pass at level l as 4^-l. A FAS run therefore has fewer paper units than FLOP units, so "
             "for the paper's accounting every run's curve is read at B_paper, the largest multiple of the "
             "evaluation interval that every finished FAS run of the set-up reached in paper units "
             "(one-level runs: at B_paper work units, where both counts agree; FAS runs: where their paper count "
             "equals B_paper, i.e. after more real work). No run was repeated for this: it is the same set of "
             "runs read at a different point. *Best* = minimum over the evaluations up to the budget, *final* = "
             "the last evaluation at or below the budget; a run that diverged before the budget counts as "
             "failed there.")
    L.append("")

    # ---- paper-shaped tables
    pngs = []
    problems = [("poisson", "Table 1 shape — Poisson"), ("darcy", "Table 2 shape — Darcy")]
    L.append("## Best losses (shape of the paper's Tables 1 and 2)")
    L.append("")
    L.append("Mean ± standard deviation over seeds of the best value up to the FLOP budget. Rows marked *paper* "
             "quote the paper's numbers for reference (different hardware, sizes and data; its runs are single "
             "seeds).")
    L.append("")
    for prob, title in problems:
        setups = [s for s in study.setups if spec["setups"][s]["problem"] == prob]
        if not setups:
            continue
        L.append(f"### {title}")
        L.append("")
        rows = []
        for s in setups:
            B = study.budget(s)
            for m in ("sgd", "adam", "fas2"):
                if m not in study.methods:
                    continue
                cells = []
                for key in ("val_mse", "val_linf", "train_mse", "train_linf"):
                    cells.append(fmt_ms(*mean_sd(study.values(s, m, key, "flops", B, "best").values())))
                rows.append([spec["setups"][s]["title"], _label(study, m)] + cells)
                if (s, m) in PAPER_TABLES:
                    rows.append(["", f"*paper: {'One-Level SGD' if m == 'sgd' else 'Two-Level FAS'}*"]
                                + [f"*{fmt(v)}*" for v in PAPER_TABLES[(s, m)]])
        L += _table(["network", "method", "val L2", "val L∞", "train L2", "train L∞"], rows)
        L.append("")

    # ---- Table 3 shape per setup, both accountings
    L.append("## All methods, both accountings (shape of the paper's Table 3)")
    L.append("")
    L.append("Best values, mean ± sd over seeds; *aux 1* is the first auxiliary (once-coarsened) network of the "
             "same FAS run. Wall time: training-loop seconds per run (evaluations included), median over seeds with "
             "the range in brackets; it is a single measurement per run on a machine that may have been running "
             "other work, so a wide range marks contention rather than a property of the method.")
    L.append("")
    for s in study.setups:
        accs = study.accountings(s)
        L.append(f"### {spec['setups'][s]['title']}")
        L.append("")
        rows = []
        for m, aux in _rows(study):
            cells = []
            for measure, _, B in accs:
                for metric in ("mse", "linf"):
                    cells.append(fmt_ms(*mean_sd(study.values(s, m, _key(metric, aux), measure, B, "best").values())))
                if measure == "flops":
                    for metric in ("mse", "linf"):
                        cells.append("n/a" if aux else fmt_ms(*mean_sd(
                            study.values(s, m, f"train_{metric}", measure, B, "best").values())))
            walls = [float(r["wall_s"]) for r in study.runs(s, m).values() if r.get("wall_s")]
            cells.append("" if aux or not walls else
                         f"{fmt(float(np.median(walls)))} ({fmt(min(walls))}–{fmt(max(walls))})")
            rows.append([_label(study, m, aux)] + cells)
        (_, _, Bf), (_, _, Bp) = accs
        L += _table(["method", f"val L2 @ {fmt(Bf)} FLOP WU", "val L∞", "train L2", "train L∞",
                     f"val L2 @ {fmt(Bp)} paper WU", "val L∞", "wall s"], rows)
        L.append("")

    # ---- Table 4 shape: the tau variants of the deepest hierarchy, fine and aux rows
    deep = max((spec["method_defs"][m]["levels"] for m in study.fas_methods()), default=None)
    fc = [s for s in study.setups if spec["setups"][s]["model"] == "mlp"]
    if deep and fc:
        L.append(f"## {deep}-level FAS variants, fully connected networks (shape of the paper's Table 4)")
        L.append("")
        L.append(f"The paper's Table 4 varies the learning-rate divisor η of the {deep}-level hierarchy. This study "
                 "does not tune η (the paper's 2√2 throughout) and varies the τ correction instead. Best values up "
                 "to the FLOP budget, mean ± sd over seeds.")
        L.append("")
        rows = []
        for s in fc:
            B = study.budget(s)
            for m in study.fas_methods():
                if spec["method_defs"][m]["levels"] != deep:
                    continue
                for aux in (False, True):
                    cells = [fmt_ms(*mean_sd(study.values(s, m, _key(k, aux), "flops", B, "best").values()))
                             for k in ("mse", "linf")]
                    cells += (["n/a", "n/a"] if aux else [fmt_ms(*mean_sd(study.values(
                        s, m, f"train_{k}", "flops", B, "best").values())) for k in ("mse", "linf")])
                    rows.append([spec["setups"][s]["title"], f"τ {spec['method_defs'][m]['tau']}"
                                 + (", Aux1" if aux else "")] + cells)
        L += _table(["network", "variant", "val L2", "val L∞", "train L2", "train L∞"], rows)
        L.append("")

    # ---- paired comparisons (all computed first; rendered below)
    for s in study.setups:
        for measure, _, B in study.accountings(s):
            for how in ("best", "final"):
                for m in study.fas_methods():
                    for aux in (False, True):
                        for metric, _ in METRICS:
                            for base in BASELINES:
                                if base not in study.methods:
                                    continue
                                p = study.compare(s, m, base, _key(metric, aux), measure, B, how,
                                                  base_key=f"val_{metric}")
                                verdicts["main"].append({"setup": s, "fas": m, "aux": aux, "metric": metric,
                                                         "how": how, "measure": measure, "budget": B,
                                                         "baseline": base, **p})
    vindex = {(v["setup"], v["fas"], v["aux"], v["metric"], v["how"], v["measure"], v["baseline"]): v
              for v in verdicts["main"]}

    L.append("## Paired differences against the baselines (FAS − baseline, same seed)")
    L.append("")
    L.append("Best validation values. Each cell: mean difference (in % of the baseline mean) [t-based 95% CI]; "
             "seeds where FAS is better / pairs and the exact two-sided sign-test p-value; verdict (**win**: CI "
             "below 0, **tie**: CI contains 0, **loss**: CI above 0). Lower is better for every metric, so a "
             f"negative difference favours FAS. With {spec['seeds']} seeds the smallest possible two-sided "
             f"sign-test p-value is {2.0 / 2 ** spec['seeds']:.3g}, so the verdicts rest on the t-interval. *aux 1* "
             "rows compare the FAS run's first auxiliary net with the baseline's (only) net.")
    L.append("")
    for s in study.setups:
        accs = study.accountings(s)
        L.append(f"### {spec['setups'][s]['title']}")
        L.append("")
        header = ["FAS run", "metric"] + [f"− {BASE_NAME[b]} @ {fmt(B)} {mname}" for _, mname, B in accs
                                          for b in BASELINES if b in study.methods]
        rows = []
        for m in study.fas_methods():
            for aux in (False, True):
                for metric, mlabel in METRICS:
                    rows.append([_label(study, m, aux), mlabel] + [
                        fmt_pair(vindex[(s, m, aux, metric, "best", measure, b)])
                        for measure, _, _ in accs for b in BASELINES if b in study.methods])
        L += _table(header, rows)
        L.append("")

    # ---- verdict matrix
    L.append("## Verdict matrix")
    L.append("")
    L.append("W / T / L = win / tie / loss of the FAS net against the baseline, *best* and *final* validation "
             "values (final: the net at the end of the budget, no early stopping); `X → Y` where the FLOP "
             "accounting (X) and the paper's accounting (Y) disagree.")
    L.append("")
    header = ["set-up", "FAS run"] + [f"vs {BASE_NAME[b]} {how} {ml}" for b in BASELINES if b in study.methods
                                      for how in ("best", "final") for _, ml in METRICS]
    rows = []
    for s in study.setups:
        for m in study.fas_methods():
            for aux in (False, True):
                row = [spec["setups"][s]["title"], _label(study, m, aux)]
                for b in BASELINES:
                    if b not in study.methods:
                        continue
                    for how in ("best", "final"):
                        for metric, _ in METRICS:
                            vf = VERDICT_LETTER[vindex[(s, m, aux, metric, how, "flops", b)]["verdict"]]
                            vp = VERDICT_LETTER[vindex[(s, m, aux, metric, how, "paper", b)]["verdict"]]
                            row.append(vf if vf == vp else f"{vf} → {vp}")
                rows.append(row)
    L += _table(header, rows)
    L.append("")

    # ---- regime map
    reg = spec.get("regime")
    regime_cells: dict = {}
    if reg and any(r["group"] == "regime" for r in study.records):
        s = reg["setup"]
        full_n = spec["setups"][s]["n_train"]
        sizes = list(reg["n_train"]) + [full_n]
        lv = [m for m in reg["methods"] if m != "sgd"]
        Br = float(reg["budget_wu"])
        L.append(f"## Regime map: training-set size × levels ({spec['setups'][s]['title']})")
        L.append("")
        L.append(f"All runs at {fmt(Br)} FLOP work units, seeds {', '.join(map(str, range(reg['seeds'])))}; "
                 f"the full-set row ({full_n} samples) reads the main runs' curves at {fmt(Br)} WU (the "
                 "runs have no budget-dependent schedule, so this equals a run with that budget). The smaller "
                 "sets are the first n samples of the store; their validation split is the next "
                 f"{spec['setups'][s]['n_val']} samples. Each cell: paired FAS − SGD change of the mean in % of "
                 "the SGD mean, with the verdict; columns *SGD final/best* and *SGD val/train* show how much the "
                 "one-level run overfits (final over best validation MSE; final validation over final training "
                 "MSE).")
        L.append("")
        panels = [("best_mse", "best validation MSE"), ("final_mse", "final validation MSE"),
                  ("best_linf", "best validation L∞"), ("final_linf", "final validation L∞")]
        rows = []
        for n in sizes:
            group, nt = ("main", None) if n == full_n else ("regime", n)
            sg = study.runs(s, "sgd", group, nt)
            seeds = [k for k in range(reg["seeds"]) if k in sg]
            best = [readout(sg[k], "val_mse", "flops", Br, "best") for k in seeds]
            ratio_fb, ratio_vt = study.overfit(s, "sgd", Br, seeds, group, nt)
            verdicts["regime_sgd"].append({"n_train": n, "final_over_best": ratio_fb, "val_over_train": ratio_vt})
            row = [str(n), fmt_ms(*mean_sd(best)), fmt(ratio_fb), fmt(ratio_vt)]
            for m in lv:
                for pkey, _ in panels:
                    how, metric = pkey.split("_")
                    a = study.values(s, m, f"val_{metric}", "flops", Br, how, seeds=seeds, group=group, n_train=nt)
                    b = study.values(s, "sgd", f"val_{metric}", "flops", Br, how, seeds=seeds, group=group,
                                     n_train=nt)
                    ks = sorted(set(a) & set(b))
                    p = paired([a[k] for k in ks], [b[k] for k in ks])
                    regime_cells[(n, m, pkey)] = p
                    verdicts["regime"].append({"n_train": n, "fas": m, "panel": pkey, **p})
                row.append("; ".join(_rel_verdict(regime_cells[(n, m, pk)]) for pk, _ in panels))
            rows.append(row)
        L += _table(["train samples", "SGD best val MSE", "SGD final/best", "SGD val/train"]
                    + [f"{_label(study, m)}: best MSE; final MSE; best L∞; final L∞" for m in lv], rows)
        L.append("")
        png = docs / f"{prefix}regime_map.png"
        plot_regime(regime_cells, sizes, lv, [str(spec["method_defs"][m]["levels"]) for m in lv], panels, png)
        pngs.append(png)
        L.append(f"![regime map]({png.name})")
        L.append("")

    # ---- curves
    L.append("## Validation curves")
    L.append("")
    L.append("Mean over seeds (line) with the min–max band over seeds, against FLOP work units; dotted: the "
             "first auxiliary network (mean only). Top row FAS with the stochastic τ correction, bottom row "
             "without (τ none); SGD and Adam in both. No smoothing.")
    L.append("")
    for s in study.setups:
        png = docs / f"{prefix}curves_{s}.png"
        plot_setup(study, s, png)
        pngs.append(png)
        L.append(f"### {spec['setups'][s]['title']}")
        L.append("")
        L.append(f"![{s} curves]({png.name})")
        L.append("")

    # ---- conclusion (generated from the verdicts)
    L.append("## Conclusion")
    L.append("")
    L += _conclusion(study, verdicts)
    L.append("")
    (docs / "RESULTS.md").write_text("\n".join(L) + "\n")
    return {"verdicts": verdicts, "pngs": [str(p) for p in pngs], "results_md": str(docs / "RESULTS.md")}


def _n(k: int, word: str) -> str:
    return f"{k} {word}{'' if k == 1 else ('es' if word.endswith('s') else 's')}"


def _counts(vs: Sequence[Mapping]) -> str:
    c = {k: sum(v["verdict"] == k for v in vs) for k in ("win", "tie", "loss")}
    return f"{_n(c['win'], 'win')}, {_n(c['tie'], 'tie')}, {_n(c['loss'], 'loss')}"


def _item(v: Mapping) -> str:
    return f"{v['fas']}{' aux' if v['aux'] else ''} {METRIC_NAME[v['metric']]}"


def _compress(sel: Sequence[Mapping], universe: Sequence[Mapping]) -> str:
    """A short description of the comparisons ``sel`` out of ``universe`` (same set-up and baseline)."""
    if not sel:
        return "none"
    if len(sel) == len(universe):
        return f"all {len(sel)}"
    parts, rest = [], list(sel)
    for metric in ("mse", "linf"):
        for aux in (False, True):
            u = [v for v in universe if v["metric"] == metric and v["aux"] == aux]
            s = [v for v in rest if v["metric"] == metric and v["aux"] == aux]
            if u and len(s) == len(u) and len(u) > 1:
                parts.append(f"every {'aux ' if aux else ''}{METRIC_NAME[metric]} comparison")
                rest = [v for v in rest if v not in s]
    parts += [_item(v) for v in rest]
    return ", ".join(parts)


def _conclusion(study: Study, verdicts: Mapping) -> list[str]:
    spec = study.spec
    out: list[str] = []
    main = verdicts["main"]
    bases = [b for b in BASELINES if b in study.methods]
    title = {s: spec["setups"][s]["title"] for s in study.setups}

    def sel(**kw):
        return [v for v in main if all(v[k] == x for k, x in kw.items())]

    out.append("Verdicts below are for the best validation values (the paper's tables), first under FLOP "
               "accounting (the study's budget), then what changes under the paper's accounting. \"fasL\" is the "
               "L-level FAS net, \"aux\" its first auxiliary net; L2 = MSE.")
    out.append("")
    # the paper's headline claim (Tables 1-2): two-level FAS beats one-level SGD in best validation L2 and L-inf
    if "fas2" in study.methods and "sgd" in study.methods:
        parts = []
        for measure, mname in (("flops", "FLOP"), ("paper", "paper")):
            rep, notrep = [], []
            for s in study.setups:
                for metric, _ in METRICS:
                    v = [x for x in sel(setup=s, fas="fas2", aux=False, metric=metric, how="best", measure=measure,
                                        baseline="sgd")]
                    if v:
                        (rep if v[0]["verdict"] == "win" else notrep).append(
                            f"{title[s]} {METRIC_NAME[metric]} ({v[0]['verdict']})")
            parts.append(f"under {mname} accounting it reproduces for {', '.join(rep) if rep else 'none'} and "
                         f"does not for {', '.join(notrep) if notrep else 'none'}")
        out.append("**The paper's claim** (Tables 1–2: two-level FAS reaches a lower best validation L2 and L∞ "
                   "than one-level SGD on every set-up): " + "; ".join(parts) + ".")
        out.append("")
    for measure, mname in (("flops", "FLOP"),):
        for b in bases:
            alls = sel(how="best", measure=measure, baseline=b)
            out.append(f"**Against {BASE_NAME[b]} ({mname} accounting):** {_counts(alls)} in {len(alls)} "
                       "comparisons.")
            out.append("")
            for s in study.setups:
                u = sel(setup=s, how="best", measure=measure, baseline=b)
                w = [v for v in u if v["verdict"] == "win"]
                lo = [v for v in u if v["verdict"] == "loss"]
                t = [v for v in u if v["verdict"] == "tie"]
                if not w and not lo:
                    out.append(f"- {title[s]}: FAS ties {BASE_NAME[b]} in all {len(u)} comparisons.")
                    continue
                if not w:
                    head = f"FAS never beats {BASE_NAME[b]}"
                elif not lo:
                    head = f"FAS beats {BASE_NAME[b]} in {len(w)} of {len(u)} comparisons and never loses"
                else:
                    head = f"mixed: {len(w)} wins and {len(lo)} losses against {BASE_NAME[b]}"
                out.append(f"- {title[s]}: {head}. Wins: {_compress(w, u)}. Losses: {_compress(lo, u)}. "
                           f"Ties: {len(t)}.")
            out.append("")
    both = []
    for s in study.setups:
        for m in study.fas_methods():
            for aux in (False, True):
                for metric, _ in METRICS:
                    vs = [v for v in main if (v["setup"], v["fas"], v["aux"], v["metric"], v["how"], v["measure"])
                          == (s, m, aux, metric, "best", "flops")]
                    if vs and all(v["verdict"] == "win" for v in vs):
                        both.append(f"{title[s]} {_item(vs[0])}")
    out.append(f"**FAS better than both baselines** (FLOP accounting, CI below 0 against each): "
               f"{', '.join(both) if both else 'nowhere'}.")
    out.append("")
    # where the one-level net overfits, and how FAS fares there (the regularisation claim)
    if "sgd" in study.methods:
        gap = {s: study.overfit(s, "sgd", study.budget(s))[1] for s in study.setups}
        gap = {s: g for s, g in gap.items() if math.isfinite(g)}
        if gap:
            worst = max(gap, key=gap.get)
            vs = sel(setup=worst, how="best", measure="flops", baseline="sgd")
            out.append("**Overfitting.** Final validation over final training MSE of one-level SGD at the FLOP "
                       "budget (mean over seeds; well above 1 means the net fits its training set much better "
                       "than unseen data): " + ", ".join(f"{title[s]} {fmt(g)}" for s, g in gap.items())
                       + f". The set-up that overfits most is {title[worst]}; there FAS against SGD (best values, "
                       f"FLOP accounting) has {_counts(vs)} in {len(vs)} comparisons.")
            out.append("")
    # effect of the accounting
    idx = {(v["setup"], v["fas"], v["aux"], v["metric"], v["how"], v["baseline"], v["measure"]): v for v in main}
    rank = {"loss": 0, "tie": 1, "win": 2}
    groups: dict[tuple[str, str, str], list[Mapping]] = {}
    n_up = n_down = 0
    for (s, m, aux, metric, how, b, measure), v in idx.items():
        if measure != "flops" or how != "best":
            continue
        vp = idx.get((s, m, aux, metric, how, b, "paper"))
        if vp is None or vp["verdict"] == v["verdict"] or "n/a" in (v["verdict"], vp["verdict"]):
            continue
        up = rank[vp["verdict"]] > rank[v["verdict"]]
        n_up += up
        n_down += not up
        groups.setdefault((s, b, f"{v['verdict']} → {vp['verdict']}"), []).append(v)
    n_best = len(sel(how="best", measure="flops"))
    ratios = ", ".join(f"{title[s]} {spec['setups'][s]['flops_ratio_level1']:.2f}" for s in study.setups
                       if "flops_ratio_level1" in spec["setups"][s])
    out.append(f"**Effect of the accounting.** The true FLOP cost of a level-1 pass relative to the fine net is "
               f"{ratios} (the paper assumes 0.25). Reading the same runs under the paper's count changes "
               f"{n_up + n_down} of {n_best} best-value verdicts, {n_up} in FAS's favour and {n_down} against it"
               + (":" if groups else "."))
    out.append("")
    order = {s: i for i, s in enumerate(study.setups)}
    for (s, b, change), vs in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], BASELINES.index(kv[0][1]),
                                                                     kv[0][2])):
        u = sel(setup=s, how="best", measure="flops", baseline=b)
        out.append(f"- {title[s]} vs {BASE_NAME[b]}, {change}: {_compress(vs, u)}.")
    if groups:
        out.append("")
    fin = sel(how="final", measure="flops")
    if fin:
        parts = []
        for b in bases:
            f = [v for v in fin if v["baseline"] == b]
            parts.append(f"against {BASE_NAME[b]} {_counts(f)} in {len(f)}")
        out.append("**Final values** (the net at the end of the FLOP budget, no early stopping): "
                   + "; ".join(parts) + " (details in the verdict matrix).")
        out.append("")
    reg = verdicts["regime"]
    if reg:
        n_win = sum(v["verdict"] == "win" for v in reg)
        n_loss = sum(v["verdict"] == "loss" for v in reg)
        out.append(f"**Regime map** (FAS with τ against SGD, {len(reg)} cells): FAS helps at "
                   f"{_regime_cells(reg, 'win')}; it hurts at {_regime_cells(reg, 'loss')}; the other "
                   f"{len(reg) - n_win - n_loss} cells are ties.")
        sgd = verdicts["regime_sgd"]
        if sgd:
            fb = max(sgd, key=lambda r: r["final_over_best"])
            vt = max(sgd, key=lambda r: r["val_over_train"])
            rising = fb["final_over_best"] > 1.0
            out.append(f"Overfitting of the one-level SGD runs in the map: the largest ratio of final to best "
                       f"validation MSE is {fmt(fb['final_over_best'])} ({fb['n_train']} samples), so "
                       + (f"validation loss rises before the end of the budget at {fb['n_train']} samples"
                          if rising else
                          "in no cell does the validation loss rise before the end of the budget")
                       + f"; the largest ratio of validation to training MSE is {fmt(vt['val_over_train'])} "
                       f"({vt['n_train']} samples).")
        out.append("")
    n_cmp = len(main) + len(reg)
    out.append(f"Caveat: this report makes {n_cmp} paired comparisons at the 95% level without correction for "
               "multiple testing; with no true difference about 5% of them would still show as a win or a loss. "
               "Isolated verdicts deserve less weight than patterns that repeat across metrics, seeds and set-ups.")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Write RESULTS.md and the PNG plots from the study's results JSON.")
    p.add_argument("--results", default="study/results.json", help="results file of benchmarks/study.py")
    p.add_argument("--docs", default="docs", help="directory for RESULTS.md and the PNGs")
    args = p.parse_args(argv)
    results = json.loads(Path(args.results).read_text())
    cmd = f"python benchmarks/study_report.py --results {args.results} --docs {args.docs}"
    info = build_report(results, args.docs, report_command=cmd)
    print(f"wrote {info['results_md']} and {len(info['pngs'])} plots", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
