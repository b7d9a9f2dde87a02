"""The outcome of ``surrogate uq``: per-level table, costs against plain FEM Monte Carlo, metrics, MLMC plot.

**Plain FEM Monte Carlo for the same RMSE** (computed, not run: hours at fine
n): N = Var(Q_n) / sigma^2 samples of one draw and one solve at the finest
grid n, sigma^2 the multilevel estimate's sampling variance, at the per-sample
seconds measured on the finest level of this run (its draw at n and its fine
solve). Var(Q_n) is telescoped from the level samples: Var(P_0) from level 0
plus, per level l, Var(P_l) - Var(P_{l-1}) = 2 Cov(P_l, Y_l) - Var(Y_l)
estimated on level l's own pairs (small terms; the direct estimate from the
few finest-level samples is reported beside it). Its set-up (one FEM
compilation) is not counted, in plain FEM's favour.

**Total cost** of the multilevel estimate: the sampling seconds (every
recorded batch, resumed ones included), the set-up (fields, FEM compilation,
Sobol' engines) and, with a surrogate, its data and training
(:mod:`surrogate.mc.cost`). The speed-up at equal RMSE is plain cost / total
cost; it is also the variance reduction at equal total cost, since both
variances fall as 1 / cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from surrogate import runtime
from surrogate.mc.adaptive import Outcome


def telescoped_variance(outcome: Outcome) -> tuple[float, float | None]:
    """(Var(P_L) telescoped over the levels, Var(P_L) from the finest level's own samples or None)."""
    var, direct = float("nan"), None
    for lv in outcome.levels:
        c = outcome.stats[lv.key].pooled.cov()
        if lv.kind == "coarsest":
            var = float(c[0, 0])
        elif lv.kind == "difference":
            var += 2.0 * float(c[0, 1]) - float(c[0, 0])
            direct = float(c[1, 1])
    return var, direct


def plain_sample_seconds(outcome: Outcome) -> float:
    """Seconds of one plain FEM sample at the finest grid: the finest level's draw and fine solve per sample."""
    grid = [lv for lv in outcome.levels if lv.kind != "surrogate"]
    st = outcome.stats[grid[-1].key]
    return (st.parts.get("draw", 0.0) + st.parts.get("fem_fine", 0.0)) / st.n


@dataclass
class UQResult:
    """Outcome of :func:`surrogate.mc.uq.estimate_to_tolerance`: ``report()``, ``write_json()``, ``plot()``."""

    outcome: Outcome
    n: int
    grids: list[int]
    tolerance: dict
    setup_s: dict
    surrogate: dict | None
    records: str | None
    settings: dict
    warnings: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ figures
    @property
    def finest(self) -> int:
        return max(lv.n for lv in self.outcome.levels if lv.kind != "surrogate")

    def costs(self) -> dict:
        o = self.outcome
        var_n, var_direct = telescoped_variance(o)
        per_plain = plain_sample_seconds(o)
        sigma2 = o.estimate["se"] ** 2
        plain = var_n * per_plain / sigma2 if sigma2 > 0 else float("inf")
        setup = float(sum(self.setup_s.values()))
        sur = (self.surrogate or {}).get("cost", {}).get("total_s", 0.0)
        total = o.spent_s + setup + sur
        return {"sampling_s": o.spent_s, "setup_s": setup, "surrogate_s": sur, "total_s": total,
                "var_q_finest": var_n, "var_q_finest_direct": var_direct, "plain_sample_s": per_plain,
                "plain_samples": var_n / sigma2 if sigma2 > 0 else float("inf"), "plain_cost_s": plain,
                "speedup_total": plain / total, "speedup_sampling": plain / o.spent_s if o.spent_s else None,
                "needed_sampling_s": o.needed_s}

    def level_table(self) -> list[dict]:
        o = self.outcome
        var_total = float(sum(o.stats[lv.key].var_of_mean(lv.weights(o.beta), o.qmc) for lv in o.levels))
        rows = []
        for lv in o.levels:
            st = o.stats[lv.key]
            a = lv.weights(o.beta)
            fine = None if lv.fine_index is None else lv.fine_index
            cov = st.pooled.cov()
            rows.append({"level": lv.key, "label": lv.label.strip(), "kind": lv.kind, "n": lv.n, "coarse": lv.coarse,
                         "samples": st.n, "mean": st.mean(a), "var": st.var(a),
                         "var_of_mean": st.var_of_mean(a, o.qmc),
                         "share": st.var_of_mean(a, o.qmc) / var_total if var_total > 0 else None,
                         "mean_q": None if fine is None else float(st.pooled.mean[fine]),
                         "var_q": None if fine is None else float(cov[fine, fine]),
                         "cost_per_sample_s": st.cost, "seconds": st.seconds, "parts_s": dict(st.parts)})
        return rows

    # ------------------------------------------------------------------ outputs
    def metrics(self) -> dict:
        o = self.outcome
        return runtime.jsonable({
            "estimate": o.estimate, "target": f"E[Q] at n = {self.n}" if not self.settings.get("adaptive")
            else f"E[Q] (continuum), levels up to n = {self.n}",
            "tolerance": {**self.tolerance, "eps": o.eps}, "status": o.status, "message": o.message,
            "bias_continuum_estimate": o.bias_continuum, "rates": o.rates, "beta": o.beta if self.surrogate else None,
            "levels": self.level_table(), "grids": self.grids, "cost": self.costs(), "setup_s": self.setup_s,
            "surrogate": self.surrogate, "records": self.records, "resumed": o.resumed, "qmc": o.qmc,
            "settings": self.settings, "warnings": self.warnings})

    def headline(self) -> dict:
        """The numbers DVC compares, the same three columns as ``surrogate mc``'s: mean, sampling SE and the
        speed-up at equal total cost (RMSE, bias, status and costs are in the ``.meta.json``)."""
        c, e = self.costs(), self.outcome.estimate
        values = {"mean": e["mean"], "se": e["se"], "variance_reduction_equal_total_cost": c["speedup_total"]}
        return {k: v for k, v in runtime.jsonable(values).items() if v is not None}

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        runtime.write_json(path.with_suffix(".meta.json"), self.metrics())
        return runtime.write_json(path, self.headline())

    def report(self) -> str:
        o, c = self.outcome, self.costs()
        e = o.estimate
        kind = "MLQMC" if o.qmc else "MLMC"
        cv = " + surrogate control variate" if self.surrogate else ""
        lines = [f"E[Q] of the Darcy outflow by {kind}{cv} over grids {self.grids[0]}..{self.finest} "
                 f"({'adaptive, target the continuum' if self.settings.get('adaptive') else f'target E[Q_{self.n}]'})"]
        lines += [f"  WARNING: {w}" for w in self.warnings]
        lines.append(f"E[Q] = {e['mean']:.6g} +- {e['se']:.3g} (sampling SE), 95% CI [{e['ci95_low']:.6g}, "
                     f"{e['ci95_high']:.6g}]")
        lines.append(f"RMSE {e['rmse']:.3g} = sqrt(sampling {e['se']:.3g}^2 + bias {e['bias']:.3g}^2); tolerance "
                     f"eps = {o.eps:.3g} ({self._tol_text()}); status: {o.status}")
        if o.message:
            lines.append(f"  {o.message}")
        lines.append(f"bias of E[Q_{self.finest}] against the continuum, extrapolated (alpha = "
                     f"{o.rates['alpha']:.2f}): {o.bias_continuum:.3g}"
                     + ("" if self.settings.get("adaptive") else " (not in the RMSE: the target is the grid's E[Q])"))
        lines += self._table()
        lines += self._cost_lines(c)
        return "\n".join(lines)

    def _tol_text(self) -> str:
        t = self.tolerance
        return f"rtol {t['rtol']:g}" if t.get("rtol") else f"atol {t['atol']:g}"

    def _table(self) -> list[str]:
        out = [f"{'level':<22s} {'N':>9s} {'mean(Y)':>11s} {'var(Y)':>10s} {'cost/sample':>12s} {'seconds':>9s} "
               f"{'var share':>9s}"]
        if self.surrogate:
            out[0] += f"   (beta = {self.outcome.beta:.4g})"
        for r in self.level_table():
            share = "" if r["share"] is None else f"{100 * r['share']:8.1f}%"
            out.append(f"{r['label']:<22s} {r['samples']:9d} {r['mean']:+11.4e} {r['var']:10.3e} "
                       f"{_seconds(r['cost_per_sample_s']):>12s} {r['seconds']:9.2f} {share:>9s}")
        return out

    def _cost_lines(self, c: dict) -> list[str]:
        lines = [f"cost: sampling {c['sampling_s']:.1f} s + set-up {c['setup_s']:.1f} s"]
        if self.surrogate:
            s = self.surrogate["cost"]
            lines[0] += (f" + surrogate {c['surrogate_s']:.1f} s (data {_maybe(s['data_s'])} s, training "
                         f"{_maybe(s['training_s'])} s, other candidates {_maybe(s['selection_s'])} s)")
        lines[0] += f" = {c['total_s']:.1f} s"
        if self.surrogate and self.surrogate["cost"]["unknown"]:
            lines.append(f"  surrogate costs not known (counted as 0): {', '.join(self.surrogate['cost']['unknown'])}")
        direct = c["var_q_finest_direct"]
        direct = "" if direct is None else f"; {direct:.4g} from the finest level alone"
        lines.append(f"plain FEM MC at n = {self.finest} for the same sampling error: Var(Q_{self.finest}) = "
                     f"{c['var_q_finest']:.4g} (telescoped{direct}), {_seconds(c['plain_sample_s'])} a sample -> "
                     f"{c['plain_samples']:.4g} samples, {c['plain_cost_s']:.4g} s")
        lines.append(f"speed-up at equal RMSE (= variance reduction at equal total cost): x{c['speedup_total']:.4g} "
                     f"counting every cost, x{c['speedup_sampling']:.4g} sampling only")
        return lines

    # ------------------------------------------------------------------ the MLMC plot
    def plot(self, path: str | Path) -> Path:
        """Giles' diagnostic figure: log2 variance and |mean| of P_l and Y_l against n, N_l and cost per sample."""
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt

        rows = [r for r in self.level_table() if r["kind"] != "surrogate"]
        n = np.array([r["n"] for r in rows], dtype=float)
        diff = np.array([r["kind"] == "difference" for r in rows])
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
        (a, b), (c, d) = axes
        a.semilogy(n, [r["var_q"] for r in rows], "o--", label="Var(Q_l)")
        a.semilogy(n[diff], [r["var"] for r, k in zip(rows, diff) if k], "s-", label="Var(Q_l - Q_{l-1})")
        b.semilogy(n, [abs(r["mean_q"]) for r in rows], "o--", label="|E[Q_l]|")
        b.semilogy(n[diff], [abs(r["mean"]) for r, k in zip(rows, diff) if k], "s-", label="|E[Q_l - Q_{l-1}]|")
        if self.surrogate:
            s = [r for r in self.level_table() if r["kind"] != "difference"]
            a.semilogy([s[1]["n"]], [s[1]["var"]], "D", color="C2", label="Var(Q_0 - beta G) (control variate)")
        c.loglog(n, [r["samples"] for r in rows], "o-", label="N_l")
        d.loglog(n, [r["cost_per_sample_s"] for r in rows], "o-", label="seconds per sample")
        for ax, title in zip(axes.ravel(), ("variance", "mean", "samples", "cost")):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("grid n (cells per side)")
            ax.set_title(title)
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=8)
        fig.suptitle(f"MLMC diagnostics: E[Q] = {self.outcome.estimate['mean']:.5g} +- "
                     f"{self.outcome.estimate['se']:.2g}")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def _seconds(s: float) -> str:
    if s is None or not math.isfinite(s):
        return "-"
    return f"{s * 1e3:.3g} ms" if s < 1 else f"{s:.3g} s"


def _maybe(v) -> str:
    return "?" if v is None else f"{v:.1f}"
