"""The outcome of a Monte Carlo run: text report, metrics files and histogram."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from surrogate import runtime
from surrogate.mc.estimators import SUMMARY, Z95

#: What :meth:`MCResult.best` says of the surrogate-only estimate.
SURROGATE_ONLY = "surrogate_only (estimates E[Q_sur]; biased by the surrogate error)"


def _est(st: dict) -> str:
    return f"{st['mean']:.6g} +- {st['se']:.3g}, 95% CI [{st['ci95_low']:.6g}, {st['ci95_high']:.6g}]"


@dataclass
class MCResult:
    """Outcome of :func:`surrogate.mc.estimate`: ``report()`` the text, ``write_json()`` the metrics files."""

    n: int
    fem_n: int
    seed: int | None
    surrogate: dict                         # plain MC of Q_sur over the N fields (estimates E[Q_sur])
    fem: dict | None                        # plain MC of Q_fem over the M fields
    surrogate_error: dict | None            # Q_sur - Q_fem on the M pairs
    control_variate: dict | None            # the multi-fidelity estimate
    cost: dict                              # per-sample times, equal-cost comparison
    field_params: dict
    field_params_trained: dict | None
    field_params_differ: list[str]
    model: str
    device: str
    q_sur: np.ndarray = field(repr=False)
    q_fem: np.ndarray | None = field(default=None, repr=False)
    reuse: dict | None = None               # the reused store pairs (surrogate.mc.reuse), if any

    @property
    def pairs(self) -> int:
        """FEM/surrogate pairs of the control variate: reused store samples + new solves."""
        return self.fem_n + (self.reuse["samples"] if self.reuse else 0)

    def _pairs_text(self) -> str:
        if not self.reuse:
            return f"M = {self.fem_n}"
        return f"M = {self.pairs}: {self.reuse['samples']} reused from the store's test split + {self.fem_n} new"

    @property
    def best(self) -> dict:
        """The estimate of E[Q]: the control variate when FEM solves were made, else the surrogate mean."""
        cv = self.control_variate
        source, method = (cv, "control_variate") if cv is not None else (self.surrogate, SURROGATE_ONLY)
        return {**{k: source[k] for k in SUMMARY}, "method": method}

    def metrics(self) -> dict:
        """Everything of the run as strict JSON (nested): estimates, field params, model, device, cost."""
        out = {"estimate": self.best, "n": self.n, "fem_n": self.fem_n, "seed": self.seed, "model": self.model,
               "device": self.device, "field": self.field_params, "field_trained": self.field_params_trained,
               "field_differs": self.field_params_differ, "surrogate": self.surrogate, "cost": self.cost}
        if self.fem is not None:
            out.update(fem=self.fem, surrogate_error=self.surrogate_error, control_variate=self.control_variate,
                       reuse=self.reuse)
        return runtime.jsonable(out)

    def headline(self) -> dict[str, float]:
        """The few numbers DVC compares, flat and finite only.

        :attr:`best` mean and SE and the variance reduction at equal total cost (with FEM solves; the same three
        columns as ``surrogate uq``'s, so that ``dvc metrics show`` stays narrow); the CI is mean +- Z95 se, n
        and fem_n are params, and everything else (the sampling-only figures, the costs) is in the ``.meta.json``.
        """
        values = {"mean": self.best["mean"], "se": self.best["se"],
                  "variance_reduction_equal_total_cost": self.cost.get("variance_reduction_equal_total_cost")}
        return {k: v for k, v in runtime.jsonable(values).items() if v is not None}

    def write_json(self, path: str | Path) -> Path:
        """:meth:`headline` to ``path`` (DVC metrics), :meth:`metrics` to ``path.with_suffix('.meta.json')``."""
        path = Path(path)
        runtime.write_json(path.with_suffix(".meta.json"), self.metrics())
        return runtime.write_json(path, self.headline())

    def report(self) -> str:
        s = self.surrogate
        lines = [f"Monte Carlo of the Darcy outflow QoI Q with {self.model} on {self.device}"]
        lines += [f"  WARNING: fields differ from training: {d}" for d in self.field_params_differ]
        lines.append(f"surrogate only  (N = {self.n}): E[Q_sur] = {_est(s)}, Var(Q_sur) = {s['var']:.4g}")
        lines.append("  note: this estimates E[Q_sur], biased by the surrogate's mean error, which the SE "
                     "does not include" + ("; see the FEM pairs below" if self.fem is not None else
                                           "; run with FEM solves (--fem-n) for an unbiased estimate"))
        if self.fem is not None:
            lines += self._fem_report()
        return "\n".join(lines)

    def _fem_report(self) -> list[str]:
        f, e, cv, c = self.fem, self.surrogate_error, self.control_variate, self.cost
        lines = [
            f"plain FEM       ({self._pairs_text()}): E[Q] = {_est(f)}, Var(Q_fem) = {f['var']:.4g}",
            (f"surrogate error on the M pairs: mean {e['mean']:.4g} +- {e['se']:.3g}, rmse {e['rmse']:.4g}, "
             f"max |err| {e['max_abs']:.4g}, corr(Q_fem, Q_sur) = {cv['rho']:.4f}"),
            f"control variate (M = {self.pairs}, N = {self.n}, beta = {cv['beta']:.4g}): E[Q] = {_est(cv)}",
            (f"cost per sample: field {c['t_field_s'] * 1e6:.1f} us, surrogate {c['t_surrogate_s'] * 1e6:.2f} us, "
             f"FEM {c['t_fem_s'] * 1e3:.3f} ms (FEM set-up {c['fem_setup_s']:.2f} s not counted); sampling cost "
             f"{c['cost_s']:.3f} s = {c['fem_equal_cost']:.1f} plain FEM samples"),
            (f"variance reduction: x{c['variance_reduction_equal_cost']:.3g} against plain FEM MC of the same "
             f"sampling cost, x{c['variance_reduction_same_fem']:.3g} against plain FEM MC with the same "
             f"{self.pairs} FEM values"),
            *self._total_cost_lines()]
        if c.get("optimal_n_over_m") is not None:
            lines.append(f"allocation hint: N/M = {self.n / self.pairs:.3g} here; N/M ~ {c['optimal_n_over_m']:.3g} "
                         f"would give about x{c['variance_reduction_optimal']:.3g} at equal cost (for the measured "
                         "correlation and costs)")
        return lines

    def _total_cost_lines(self) -> list[str]:
        c = self.cost
        b = c.get("surrogate_build")
        if not b:
            return []
        parts = (f"data {_maybe(b['data_s'])} s ({b['data']['source']}), training {_maybe(b['training_s'])} s"
                 + (f" + {b['selection_s']:.1f} s for the other candidates" if b["selection_s"] else ""))
        lines = [f"total cost {c['cost_total_s']:.1f} s = sampling {c['cost_s']:.1f} s + the surrogate's {parts}",
                 (f"variance reduction at equal total cost: x{c['variance_reduction_equal_total_cost']:.3g} "
                  f"against plain FEM MC of {c['cost_total_s']:.1f} s ({c['fem_equal_total_cost']:.0f} solves)")]
        if b["unknown"]:
            lines.append(f"  not known, counted as 0: {', '.join(b['unknown'])}")
        return lines

    def plot(self, path: str | Path) -> Path:
        """Histogram of Q_sur (and Q_fem) beside the estimates of E[Q] with their 95% CIs."""
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.5), gridspec_kw={"width_ratios": [2.2, 1]})
        self._histogram(ax)
        self._intervals(ax2)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path

    def _histogram(self, ax) -> None:
        q = self.q_sur
        lo, hi = np.quantile(q, [0.0005, 0.9995]) if q.size > 100 else (q.min(), q.max())
        if self.q_fem is not None:
            lo, hi = min(lo, self.q_fem.min()), max(hi, self.q_fem.max())
        if not hi > lo:
            lo, hi = lo - 0.5, hi + 0.5
        ax.hist(q, bins=np.linspace(lo, hi, 61), density=True, alpha=0.45, color="C0",
                label=f"surrogate Q (N = {self.n})")
        if self.q_fem is not None:
            nb = int(np.clip(1.5 * math.sqrt(self.pairs), 5, 60))
            ax.hist(self.q_fem, bins=np.linspace(lo, hi, nb + 1), density=True, histtype="step", lw=1.8,
                    color="C3", label=f"FEM Q (M = {self.pairs})")
        ax.axvline(self.best["mean"], color="k", lw=1.2, ls="--", label=f"estimate of E[Q]: {self.best['mean']:.4g}")
        ax.set_xlabel("Q (mean outflow flux)")
        ax.set_ylabel("density")
        ax.set_title("Darcy outflow QoI: distribution")
        ax.legend(fontsize=8)

    def _intervals(self, ax) -> None:
        rows = [("surrogate only\n(E[Q_sur], biased)", self.surrogate, "C0")]
        if self.control_variate is not None:
            rows += [("control variate", self.control_variate, "C2"),
                     (f"plain FEM\n(M = {self.pairs})", self.fem, "C3")]
        for k, (_, st, color) in enumerate(rows):
            ax.errorbar(st["mean"], k, xerr=Z95 * st["se"], fmt="o", color=color, capsize=5, lw=2)
        ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=8)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.invert_yaxis()
        ax.set_xlabel("E[Q] estimate, 95% CI")
        ax.set_title("estimates")
        ax.grid(axis="x", alpha=0.3)


def _maybe(v) -> str:
    return "?" if v is None else f"{v:.1f}"
