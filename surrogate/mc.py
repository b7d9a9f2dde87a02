"""Monte Carlo estimation of the Darcy outflow QoI with a trained surrogate (``surrogate mc``).

Two estimators of E[Q], Q the mean outflow flux of the Darcy problem
(paper section 8.2, eq. (43)), for log-permeability fields drawn from the
Gaussian random field the surrogate was trained on:

**Surrogate only.**  N fresh fields u_1..u_N, ``Q_sur = surrogate(u)``::

    mu_sur = mean_N(Q_sur),   SE = sd_N(Q_sur) / sqrt(N),   95% CI = mu_sur +- 1.96 SE

This estimates E[Q_sur], *not* E[Q]: it is biased by the surrogate's mean
error E[Q_sur - Q], which the SE does not contain.  With M FEM solves the
report also gives the mean surrogate error on the M pairs (with its SE).

**Multi-fidelity (control variate).**  FEM solves Q_fem on the *first M of
the same N fields* (nested design; the M fields are part of the N)::

    beta   = cov_M(Q_fem, Q_sur) / var_M(Q_sur)                 (from the M pairs)
    mu_cv  = mean_M(Q_fem - beta Q_sur) + beta mean_N(Q_sur)
           = mean_M(Q_fem) + beta (mean_N(Q_sur) - mean_M(Q_sur))
    Var    = var_M(Q_fem - beta Q_sur) / M + beta^2 var_N(Q_sur) / N
             + 2 beta (cov_M(Q_fem, Q_sur) - beta var_M(Q_sur)) / N

(sample variances with ddof = 1; the last term is the covariance of the two
means that the nested design creates; it vanishes identically for the
estimated beta and is kept for a fixed ``beta``).  For any fixed beta the
estimator is exactly unbiased, whatever the surrogate's bias; shifting all
surrogate predictions by a constant changes neither beta nor mu_cv.  With
beta estimated from the same M pairs, the bias is O(1/M) (zero when Q_fem is
linear in Q_sur plus independent noise), far below the SE for usual M.
The 95% intervals use the normal quantile 1.96 (for M below ~30 they are
somewhat optimistic).

**Cost.**  Per-sample wall times, measured in the run: t_field (draw one
field), t_sur (one surrogate prediction, batched on the chosen device),
t_fem (one FEM solve; the one-off FEM set-up and JIT compilation, and the
field factorisation, are reported separately and not counted).  The
multi-fidelity run costs ``T = N (t_field + t_sur) + M t_fem``; plain FEM
Monte Carlo with the same T affords ``M_eq = T / (t_field + t_fem)`` solves,
so its variance is ``var(Q_fem) / M_eq`` (var from the M pairs) and the
variance reduction at equal cost is ``var(Q_fem) / M_eq / Var``.  The report
adds the cost-optimal N/M for the measured correlation and costs
(:func:`optimal_allocation`) as a hint for the next run.

**Fresh fields.**  Field i of an MC run is drawn from
``default_rng(SeedSequence((seed, i, MC_STREAM)))``: a stream that no store
(``SeedSequence((seed, i))``) ever uses, whatever the seeds, so an MC run
never reuses a training sample.  A field is ``mean + L xi`` with the exact
Cholesky factor L of :class:`pde_data.fields.GaussianRandomField`, evaluated
for a batch at once (BLAS; equal to the per-sample sampler up to round-off),
and rounded to float32 like the stored fields.

This is the only module of ``surrogate`` that imports ``pde_data``, lazily:
the numpy-only :mod:`pde_data.fields` for the fields, :mod:`pde_data.darcy`
(DOLFINx) only when FEM solves are asked for.  The surrogate-only estimate
needs no FEM stack.

Parameters (``mc:`` section of params.yaml, see :data:`DEFAULTS`): ``n``,
``fem_n``, ``seed``, ``batch_size``, ``device`` and ``field`` (overrides of
the training store's field parameters ``kernel``, ``mean``, ``variance``,
``length``, ``nu``; a difference from the training values gives a warning).
"""

from __future__ import annotations

import copy
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from surrogate.config import ConfigError, choice, integer, num, read_params

#: Third word of the SeedSequence entropy of MC fields ("mc"); stores use (seed, i) only.
MC_STREAM = 0x6D63
#: Two-sided 95% normal quantile.
Z95 = 1.959963984540054
#: Random-field parameters that ``mc.field`` may override.
FIELD_KEYS = ("kernel", "mean", "variance", "length", "nu")

DEFAULTS: dict[str, Any] = {
    "n": 20000,          # surrogate samples N (fresh fields)
    "fem_n": 500,        # FEM solves M on the first M of the N fields (0: surrogate only)
    "seed": 1,           # field i <- SeedSequence((seed, i, MC_STREAM))
    "batch_size": 4096,  # fields drawn and predicted per batch
    "device": "auto",    # auto | cpu | cuda: device of the surrogate's forward passes
    "field": {},         # overrides of the training store's field params (kernel, mean, variance, length, nu)
}

SPEC: dict[str, Callable[[str, Any], Any]] = {
    "n": integer(2),
    "fem_n": integer(0),
    "seed": integer(0),
    "batch_size": integer(1),
    "device": choice("auto", "cpu", "cuda"),
}
FIELD_SPEC: dict[str, Callable[[str, Any], Any]] = {
    "kernel": choice("exponential", "matern", "squared_exponential"),
    "mean": num(),
    "variance": num(0.0, lo_open=True),
    "length": num(0.0, lo_open=True),
    "nu": num(),
}


class MCError(ConfigError):
    """An input that a Monte Carlo estimate cannot use (bad size, wrong model, missing FEM stack ...)."""


class MCWarning(UserWarning):
    """The MC fields differ from those the surrogate was trained on (or their parameters are unknown)."""


# --------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------
def resolve(params: Mapping | str | Path | None = None, **overrides: Any) -> dict:
    """The validated ``mc`` section: defaults <- ``params['mc']`` <- ``overrides`` (None values ignored)."""
    if params is None or isinstance(params, (str, Path)):
        params = read_params(params)
    raw = params.get("mc") or {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"mc = {raw!r}: must be a mapping with keys {', '.join(DEFAULTS)}")
    cfg = copy.deepcopy(DEFAULTS)
    for key, value in raw.items():
        if key not in DEFAULTS:
            raise ConfigError(f"unknown key 'mc.{key}' (allowed here: {', '.join(DEFAULTS)})")
        cfg[key] = value
    for key, value in overrides.items():
        if key not in DEFAULTS:
            raise TypeError(f"unknown mc parameter {key!r}")
        if value is not None:
            cfg[key] = value
    out = {key: check(f"mc.{key}", cfg[key]) for key, check in SPEC.items()}
    out["field"] = check_field_overrides(cfg["field"])
    if out["fem_n"] > out["n"]:
        raise ConfigError(f"mc.fem_n = {out['fem_n']}: the FEM solves use a subset of the N fields; "
                          f"need fem_n <= n = {out['n']}")
    if out["fem_n"] in (1, 2):
        raise ConfigError(f"mc.fem_n = {out['fem_n']}: the control variate needs at least 3 FEM solves "
                          "(to estimate beta and the residual variance); use 0 for a surrogate-only estimate")
    return out


def check_field_overrides(raw: Any, prefix: str = "mc.field") -> dict:
    """Validated overrides of the random-field parameters (a subset of :data:`FIELD_KEYS`)."""
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{prefix} = {raw!r}: must be a mapping with keys among {', '.join(FIELD_KEYS)}")
    out = {}
    for key, value in raw.items():
        if key not in FIELD_SPEC:
            raise ConfigError(f"unknown key '{prefix}.{key}' (allowed here: {', '.join(FIELD_KEYS)})")
        out[key] = FIELD_SPEC[key](f"{prefix}.{key}", value)
    return out


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("mc.device = 'cuda': no CUDA device is available (use 'auto' or 'cpu')")
    return torch.device(name)


# --------------------------------------------------------------------------
# the estimator core (pure numpy)
# --------------------------------------------------------------------------
def _summary(mean: float, var_est: float) -> dict:
    se = math.sqrt(max(var_est, 0.0))
    return {"mean": float(mean), "se": se, "ci95_low": float(mean - Z95 * se), "ci95_high": float(mean + Z95 * se)}


def plain_mc(q: np.ndarray) -> dict:
    """Plain Monte Carlo: mean, standard error, 95% CI, variance and sd of the samples ``q``."""
    q = np.asarray(q, dtype=np.float64).reshape(-1)
    if q.size < 2:
        raise MCError(f"plain Monte Carlo needs at least 2 samples, got {q.size}")
    var = float(q.var(ddof=1))
    return {**_summary(q.mean(), var / q.size), "var": var, "std": math.sqrt(var), "n": int(q.size)}


def control_variate(q_fem: np.ndarray, q_sur_pairs: np.ndarray, q_sur_all: np.ndarray,
                    beta: float | None = None) -> dict:
    """Control-variate estimate of E[Q_fem] (see the module docstring for the formulas).

    ``q_fem``, ``q_sur_pairs``: the M high-/low-fidelity pairs (same fields);
    ``q_sur_all``: the N low-fidelity values (the nested design: the M pair
    fields are among the N).  ``beta``: None estimates cov/var from the pairs.
    """
    f = np.asarray(q_fem, dtype=np.float64).reshape(-1)
    s = np.asarray(q_sur_pairs, dtype=np.float64).reshape(-1)
    s_all = np.asarray(q_sur_all, dtype=np.float64).reshape(-1)
    m, n = f.size, s_all.size
    if s.size != m:
        raise MCError(f"control variate: {m} FEM values but {s.size} paired surrogate values")
    if m < 3:
        raise MCError(f"control variate: need at least 3 FEM/surrogate pairs, got {m}")
    if n < m:
        raise MCError(f"control variate: the {n} surrogate samples must include the {m} paired ones (N >= M)")
    var_s = float(s.var(ddof=1))
    cov_fs = float(np.cov(f, s, ddof=1)[0, 1])
    var_f = float(f.var(ddof=1))
    degenerate = var_s <= 0.0
    if beta is None:
        beta = 0.0 if degenerate else cov_fs / var_s
    beta = float(beta)
    d = f - beta * s
    var_est = (float(d.var(ddof=1)) / m + beta * beta * float(s_all.var(ddof=1)) / n
               + 2.0 * beta * (cov_fs - beta * var_s) / n)
    mean = float(d.mean() + beta * s_all.mean())
    rho = cov_fs / math.sqrt(var_f * var_s) if var_f > 0 and var_s > 0 else float("nan")
    return {**_summary(mean, var_est), "var_estimator": max(var_est, 0.0), "beta": beta,
            "beta_estimated": not degenerate, "rho": rho, "m": m, "n": n}


def optimal_allocation(rho: float, w_lo: float, w_hi: float, w_plain: float) -> dict:
    """The cost-optimal ratio r = N/M of the two-model control variate and its variance reduction.

    ``w_lo``: cost of one extra surrogate sample (field + prediction), ``w_hi``: of one FEM solve on a field
    already drawn, ``w_plain``: of one plain FEM MC sample.  With the optimal beta the estimator's variance
    is var(Q_fem) / M * (1 - rho^2 (1 - 1/r)) at cost M (w_hi + r w_lo), minimised by
    r = sqrt(w_hi rho^2 / (w_lo (1 - rho^2))) (at least 1); against plain FEM MC of the same cost the
    variance shrinks by w_plain / ((w_hi + r w_lo) (1 - rho^2 (1 - 1/r))).  An a-priori figure: rho is
    estimated from the M pairs.
    """
    if not (math.isfinite(rho) and w_lo > 0 and w_hi > 0):
        return {"optimal_n_over_m": None, "variance_reduction_optimal": None}
    r2 = min(rho * rho, 1.0 - 1e-12)
    r = max(1.0, math.sqrt(w_hi * r2 / (w_lo * (1.0 - r2))))
    return {"optimal_n_over_m": r, "variance_reduction_optimal": w_plain / ((w_hi + r * w_lo) * (1 - r2 * (1 - 1 / r)))}


# --------------------------------------------------------------------------
# fields
# --------------------------------------------------------------------------
def mc_rng(seed: int, i: int) -> np.random.Generator:
    """Generator of MC field ``i``: SeedSequence((seed, i, MC_STREAM)), disjoint from every store's."""
    return np.random.default_rng(np.random.SeedSequence((int(seed), int(i), MC_STREAM)))


class FieldSampler:
    """Fresh log-permeability fields (n, n) of a :class:`pde_data.fields.GaussianRandomField`."""

    def __init__(self, n: int, params: Mapping, seed: int):
        from pde_data.config import ConfigError as PdeConfigError
        from pde_data.fields import GaussianRandomField

        try:
            self.field = GaussianRandomField(int(n), params["kernel"], params["mean"], params["variance"],
                                             params["length"], params.get("nu"))
        except PdeConfigError as exc:
            raise MCError(f"mc.field: {exc}") from None
        self.n = int(n)
        self.seed = int(seed)
        self._lt = np.ascontiguousarray(self.field.factor.T)

    def draw(self, start: int, stop: int) -> np.ndarray:
        """Fields ``start..stop-1`` as a (stop - start, n, n) float64 array (float32-rounded values)."""
        k = self.n * self.n
        xi = np.empty((stop - start, k))
        for j, i in enumerate(range(start, stop)):
            xi[j] = mc_rng(self.seed, i).standard_normal(k)
        u = self.field.mean + xi @ self._lt
        return u.astype(np.float32).astype(np.float64).reshape(-1, self.n, self.n)


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------
def _as_model(model: Any, device: Any):
    """(predict callable fields -> Q, Surrogate or None, description)."""
    import torch

    from surrogate.io import Surrogate, load

    if isinstance(model, (str, Path)):
        model = load(model, device)
    if isinstance(model, Surrogate):
        if model.problem != "darcy":
            raise MCError(f"model {model.path or ''!s}: it is a {model.problem!r} surrogate; the Monte Carlo "
                          "estimate of the Darcy outflow QoI needs a Darcy surrogate trained with target Q "
                          "(data.darcy_target Q or Q+p)")
        if "Q" not in model.targets:
            raise MCError(f"model {model.path or ''!s}: this Darcy surrogate predicts {list(model.targets)}, "
                          "not the outflow QoI Q; train it with data.darcy_target Q or Q+p")
        if device is not None and model.device != torch.device(device):  # a copy on the asked device
            model = Surrogate(copy.deepcopy(model.net), model.meta, device, model.path)

        def predict(x: np.ndarray, batch_size: int) -> np.ndarray:
            y = model.predict(x, batch_size=batch_size)
            return np.asarray(y["Q"] if isinstance(y, dict) else y, dtype=np.float64).reshape(-1)

        return predict, model, str(model.path)
    if hasattr(model, "predict") and callable(model.predict):
        return (lambda x, b: np.asarray(model.predict(x), dtype=np.float64).reshape(-1)), None, repr(model)
    if callable(model):
        return (lambda x, b: np.asarray(model(x), dtype=np.float64).reshape(-1)), None, repr(model)
    raise MCError(f"model: expected a model path, a Surrogate or a callable fields -> Q; got {type(model).__name__}")


def trained_store_params(sur) -> dict | None:
    """The generator params of the store ``sur`` was trained on (model metadata, else the store itself)."""
    if sur is None:
        return None
    info = sur.meta.get("store") or {}
    if isinstance(info.get("params"), Mapping):
        return dict(info["params"])
    path = info.get("path")
    if path and Path(path).exists():  # older model files: read the store, if it is still the same one
        try:
            from surrogate.data import open_store

            st = open_store(path)
            if st.fingerprint() == info.get("fingerprint") and isinstance(st.record.get("params"), Mapping):
                return dict(st.record["params"])
        except Exception:  # noqa: BLE001 - then the params are unknown
            return None
    return None


def _field_params(trained: Mapping | None, overrides: Mapping, surrogate: bool = True) -> tuple[dict, list[str]]:
    """(field params to draw from, human-readable differences from the training ones).

    ``surrogate``: the model is a trained surrogate (not a bare callable), so
    unknown training parameters are worth a warning."""
    trained_field = {k: trained.get(k) for k in FIELD_KEYS if k in trained} if trained else {}
    params = {**trained_field, **overrides}
    missing = [k for k in FIELD_KEYS if k not in params and not (k == "nu" and params.get("kernel") != "matern")]
    if missing:
        raise MCError("the random-field parameters of the model's training store are unknown "
                      f"(missing {', '.join(missing)}); give them in mc.field (keys {', '.join(FIELD_KEYS)})")
    if params.get("kernel") != "matern":
        params["nu"] = None
    diffs = []
    needed = [k for k in FIELD_KEYS if k != "nu" or trained_field.get("kernel") == "matern"]
    if surrogate and not all(trained_field.get(k) is not None for k in needed):
        diffs.append("the training store records no (or incomplete) field parameters; MC uses "
                     + ", ".join(f"{k}={params[k]!r}" for k in FIELD_KEYS))
    for k in FIELD_KEYS:
        if k in trained_field and k in overrides and _differs(trained_field[k], params[k]):
            diffs.append(f"{k}: trained on {trained_field[k]!r}, MC uses {params[k]!r}")
    return params, diffs


def _plain(obj: Any) -> Any:
    """JSON-able copy with plain Python floats; NaN and inf become None (strict JSON)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return not math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    return a != b


def darcy_fem(trained: Mapping | None, field_params: Mapping, n: int) -> tuple[Callable, float]:
    """(log_k -> Q callable with pde_data.darcy, set-up seconds); needs DOLFINx."""
    t0 = time.perf_counter()
    try:
        from pde_data.darcy import DarcyProblem
    except ImportError as exc:
        raise MCError(f"FEM solves (mc.fem_n > 0) need the FEM stack (DOLFINx via pde_data.darcy), "
                      f"which cannot be imported here ({exc}); install it or set mc.fem_n: 0 for a "
                      "surrogate-only estimate") from None
    kwargs = {k: v for k, v in dict(trained or {}).items() if k in DarcyProblem.PARAMS and v is not None}
    if trained is None or not all(k in (trained or {}) for k in ("inflow", "outflow", "p_in", "p_out")):
        warnings.warn("the training store records no boundary data; the FEM solves use DarcyProblem's defaults",
                      MCWarning, stacklevel=3)
    kwargs.update({k: v for k, v in field_params.items() if v is not None})
    kwargs["n"] = int(n)
    problem = DarcyProblem(**kwargs)
    return (lambda log_k: problem.solve(log_k)["Q"]), time.perf_counter() - t0


# --------------------------------------------------------------------------
# the result
# --------------------------------------------------------------------------
@dataclass
class MCResult:
    """Outcome of :func:`estimate`; ``metrics()`` is the JSON for DVC, ``report()`` the text summary."""

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

    @property
    def best(self) -> dict:
        """The headline estimate: the control variate when FEM solves were made, else the surrogate mean."""
        if self.control_variate is not None:
            return {**{k: self.control_variate[k] for k in ("mean", "se", "ci95_low", "ci95_high")},
                    "method": "control_variate"}
        return {**{k: self.surrogate[k] for k in ("mean", "se", "ci95_low", "ci95_high")},
                "method": "surrogate_only (estimates E[Q_sur]; biased by the surrogate error)"}

    def metrics(self) -> dict:
        out = {
            "estimate": self.best,
            "n": self.n, "fem_n": self.fem_n, "seed": self.seed, "model": self.model, "device": self.device,
            "field": self.field_params, "field_trained": self.field_params_trained,
            "field_differs": self.field_params_differ,
            "surrogate": self.surrogate,
            "cost": self.cost,
        }
        if self.fem is not None:
            out.update(fem=self.fem, surrogate_error=self.surrogate_error, control_variate=self.control_variate)
        return _plain(out)

    def report(self) -> str:
        s = self.surrogate
        lines = [f"Monte Carlo of the Darcy outflow QoI Q with {self.model} on {self.device}"]
        for d in self.field_params_differ:
            lines.append(f"  WARNING: fields differ from training: {d}")
        lines.append(f"surrogate only  (N = {self.n}): E[Q_sur] = {s['mean']:.6g} +- {s['se']:.3g} (SE), "
                     f"95% CI [{s['ci95_low']:.6g}, {s['ci95_high']:.6g}], Var(Q_sur) = {s['var']:.4g}")
        lines.append("  note: this estimates E[Q_sur], biased by the surrogate's mean error, which the SE "
                     "does not include" + ("; see the FEM pairs below" if self.fem is not None else
                                           "; run with FEM solves (--fem-n) for an unbiased estimate"))
        if self.fem is not None:
            f, e, cv, c = self.fem, self.surrogate_error, self.control_variate, self.cost
            lines.append(f"plain FEM       (M = {self.fem_n}): E[Q] = {f['mean']:.6g} +- {f['se']:.3g}, "
                         f"95% CI [{f['ci95_low']:.6g}, {f['ci95_high']:.6g}], Var(Q_fem) = {f['var']:.4g}")
            lines.append(f"surrogate error on the M pairs: mean {e['mean']:.4g} +- {e['se']:.3g}, rmse "
                         f"{e['rmse']:.4g}, max |err| {e['max_abs']:.4g}, corr(Q_fem, Q_sur) = {cv['rho']:.4f}")
            lines.append(f"control variate (M = {self.fem_n}, N = {self.n}, beta = {cv['beta']:.4g}): "
                         f"E[Q] = {cv['mean']:.6g} +- {cv['se']:.3g}, "
                         f"95% CI [{cv['ci95_low']:.6g}, {cv['ci95_high']:.6g}]")
            lines.append(f"cost per sample: field {c['t_field_s'] * 1e6:.1f} us, surrogate "
                         f"{c['t_surrogate_s'] * 1e6:.2f} us, FEM {c['t_fem_s'] * 1e3:.3f} ms "
                         f"(FEM set-up {c['fem_setup_s']:.2f} s not counted); run cost {c['cost_s']:.3f} s "
                         f"= {c['fem_equal_cost']:.1f} plain FEM samples")
            lines.append(f"variance reduction: x{c['variance_reduction_equal_cost']:.3g} against plain FEM MC "
                         f"of the same cost, x{c['variance_reduction_same_fem']:.3g} against plain FEM MC with "
                         f"the same {self.fem_n} solves")
            if c.get("optimal_n_over_m") is not None:
                lines.append(f"allocation hint: N/M = {self.n / self.fem_n:.3g} here; N/M ~ "
                             f"{c['optimal_n_over_m']:.3g} would give about x{c['variance_reduction_optimal']:.3g} "
                             "at equal cost (for the measured correlation and costs)")
        return "\n".join(lines)

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.metrics(), indent=2, allow_nan=False) + "\n")
        return path

    def plot(self, path: str | Path) -> Path:
        """Histogram of Q_sur (and Q_fem) beside the estimates of E[Q] with their 95% CIs."""
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.5), gridspec_kw={"width_ratios": [2.2, 1]})
        q = self.q_sur
        lo, hi = np.quantile(q, [0.0005, 0.9995]) if q.size > 100 else (q.min(), q.max())
        if self.q_fem is not None:
            lo, hi = min(lo, self.q_fem.min()), max(hi, self.q_fem.max())
        if not hi > lo:
            lo, hi = lo - 0.5, hi + 0.5
        ax.hist(q, bins=np.linspace(lo, hi, 61), density=True, alpha=0.45, color="C0",
                label=f"surrogate Q (N = {self.n})")
        if self.q_fem is not None:
            nb = int(np.clip(1.5 * math.sqrt(self.fem_n), 5, 60))
            ax.hist(self.q_fem, bins=np.linspace(lo, hi, nb + 1), density=True, histtype="step", lw=1.8,
                    color="C3", label=f"FEM Q (M = {self.fem_n})")
        ax.axvline(self.best["mean"], color="k", lw=1.2, ls="--", label=f"estimate of E[Q]: {self.best['mean']:.4g}")
        ax.set_xlabel("Q (mean outflow flux)")
        ax.set_ylabel("density")
        ax.set_title("Darcy outflow QoI: distribution")
        ax.legend(fontsize=8)

        rows = [("surrogate only\n(E[Q_sur], biased)", self.surrogate, "C0")]
        if self.control_variate is not None:
            rows += [("control variate", self.control_variate, "C2"),
                     (f"plain FEM\n(M = {self.fem_n})", self.fem, "C3")]
        for k, (_, st, color) in enumerate(rows):
            ax2.errorbar(st["mean"], k, xerr=Z95 * st["se"], fmt="o", color=color, capsize=5, lw=2)
        ax2.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=8)
        ax2.set_ylim(-0.7, len(rows) - 0.3)
        ax2.invert_yaxis()
        ax2.set_xlabel("E[Q] estimate, 95% CI")
        ax2.set_title("estimates")
        ax2.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


# --------------------------------------------------------------------------
# the driver
# --------------------------------------------------------------------------
def estimate(model: Any, fields: np.ndarray | int | None = None, *, n: int | None = None, fem_n: int = 0,
             seed: int = DEFAULTS["seed"], batch_size: int = DEFAULTS["batch_size"], device: Any = "auto",
             field_params: Mapping | None = None, hifi: Callable[[np.ndarray], Any] | None = None,
             beta: float | None = None, grid: int | None = None, progress: bool = False) -> MCResult:
    """Monte Carlo estimate of E[Q] with a surrogate, alone or as a control variate beside FEM solves.

    ``model``: a model path (file or directory), a :class:`surrogate.io.Surrogate`
    (must be a Darcy surrogate of Q), or any callable / object with ``predict``
    mapping fields (B, n, n) to Q (B,) (then ``field_params`` or ``fields``
    must be given).  ``fields``: an array (N, n, n) of log-permeability fields,
    or the number N of fresh fields to draw (also ``n=``).  ``fem_n``: M
    high-fidelity solves on the first M fields (0: surrogate only).
    ``hifi``: the high-fidelity model, a callable log_k (n, n) -> Q (a float
    or a dict with ``"Q"``); default: :class:`pde_data.darcy.DarcyProblem` with
    the training store's parameters (needs DOLFINx).  ``field_params``:
    overrides of the training field parameters (warns when they differ).
    ``beta``: a fixed control-variate coefficient (default: estimated).
    ``grid``: cells per side of the fields to draw for a bare callable model.
    ``device``: where the surrogate runs (a Surrogate on another device is
    copied there; the caller's object is left as it is).  Warns
    (:class:`MCWarning`) when the fields differ from the training fields.
    """
    import torch

    # 1. sizes and inputs
    given = None
    if isinstance(fields, (int, np.integer)) and not isinstance(fields, bool):
        if n is not None and n != fields:
            raise MCError(f"estimate: n given twice ({fields} and {n})")
        n = int(fields)
    elif fields is not None:
        given = np.asarray(fields, dtype=np.float64)
        if given.ndim != 3 or given.shape[1] != given.shape[2]:
            raise MCError(f"estimate: fields must have shape (N, n, n), got {given.shape}")
        if n is not None and n != given.shape[0]:
            raise MCError(f"estimate: n = {n} but {given.shape[0]} fields were given")
        n = given.shape[0]
    if n is None:
        raise MCError("estimate: give the fields or their number N")
    n = integer(2)("mc.n", n)
    fem_n = integer(0)("mc.fem_n", fem_n)
    batch_size = integer(1)("mc.batch_size", batch_size)
    seed = integer(0)("mc.seed", seed)
    if fem_n > n:
        raise MCError(f"mc.fem_n = {fem_n}: the FEM solves use a subset of the N fields; need fem_n <= n = {n}")
    if fem_n in (1, 2):
        raise MCError(f"mc.fem_n = {fem_n}: the control variate needs at least 3 FEM solves; use 0 or >= 3")
    overrides = check_field_overrides(field_params)
    dev = _device(device) if isinstance(device, str) else torch.device(device)

    # 2. the surrogate and the field parameters
    predict, sur, name = _as_model(model, dev)
    trained = trained_store_params(sur)
    grid_n = sur.layout.n if sur is not None else (given.shape[1] if given is not None else None)
    if given is not None and grid_n is not None and given.shape[1] != grid_n:
        raise MCError(f"estimate: fields are {given.shape[1]} x {given.shape[1]}, the surrogate's grid is "
                      f"{grid_n} x {grid_n}")
    sampler = None
    if given is None:
        params, diffs = _field_params(trained, overrides, sur is not None)
        grid_n = grid_n or grid
        if grid_n is None:
            raise MCError("estimate: the grid size is unknown; pass fields, a Surrogate or grid=n")
        sampler = FieldSampler(grid_n, params, seed)
    else:
        # the caller's fields are drawn as the caller chose; the params only configure the FEM problem
        params = {**({k: trained.get(k) for k in FIELD_KEYS if k in trained} if trained else {}), **overrides}
        diffs = []
    for d in diffs:
        warnings.warn(f"Monte Carlo fields differ from the surrogate's training fields: {d}", MCWarning,
                      stacklevel=2)

    # 3. the FEM model first (fail before the surrogate pass when the FEM stack is missing)
    setup = 0.0
    if fem_n > 0 and hifi is None:
        hifi, setup = darcy_fem(trained, params, grid_n)

    # 4. surrogate predictions (and the first M fields, kept for the FEM solves)
    from tqdm import tqdm

    q_sur = np.empty(n)
    keep = np.empty((fem_n, grid_n, grid_n))
    t_field = t_sur = 0.0
    bar = tqdm(total=n, unit="field", desc="surrogate", disable=not progress or n <= batch_size)
    for a in range(0, n, batch_size):
        b = min(a + batch_size, n)
        t0 = time.perf_counter()
        x = sampler.draw(a, b) if sampler is not None else given[a:b]
        t1 = time.perf_counter()
        q_sur[a:b] = predict(x, batch_size)
        t2 = time.perf_counter()
        t_field, t_sur = t_field + (t1 - t0), t_sur + (t2 - t1)
        if a < fem_n:
            keep[a:min(b, fem_n)] = x[:min(b, fem_n) - a]
        bar.update(b - a)
    bar.close()
    if not np.all(np.isfinite(q_sur)):
        raise MCError(f"the surrogate predicted {int((~np.isfinite(q_sur)).sum())} non-finite Q values")
    t_field = t_field / n if sampler is not None else 0.0
    t_sur /= n
    sur_stats = {**plain_mc(q_sur),
                 "note": "estimates E[Q_sur]: biased by the surrogate's mean error (not in the SE)"}

    # 5. FEM solves on the first M fields, the control variate and the cost comparison
    q_fem = fem_stats = err = cv = None
    cost = {"t_field_s": t_field, "t_surrogate_s": t_sur, "surrogate_per_s": 1.0 / t_sur if t_sur > 0 else None,
            "cost_s": n * (t_field + t_sur)}
    if fem_n > 0:
        q_fem = np.empty(fem_n)
        t0 = time.perf_counter()
        for i in tqdm(range(fem_n), unit="solve", desc="FEM", disable=not progress):
            out = hifi(keep[i])
            q_fem[i] = float(out["Q"] if isinstance(out, Mapping) else out)
        t_fem = (time.perf_counter() - t0) / fem_n
        if not np.all(np.isfinite(q_fem)):
            raise MCError("the high-fidelity model returned non-finite Q values")
        fem_stats = plain_mc(q_fem)
        e = q_sur[:fem_n] - q_fem
        err = {**{k: v for k, v in plain_mc(e).items() if k in ("mean", "se", "ci95_low", "ci95_high")},
               "rmse": float(np.sqrt(np.mean(e * e))), "max_abs": float(np.abs(e).max())}
        cv = control_variate(q_fem, q_sur[:fem_n], q_sur, beta)
        total = n * (t_field + t_sur) + fem_n * t_fem
        m_eq = total / (t_field + t_fem)
        var_plain = fem_stats["var"] / m_eq
        var_cv = cv["var_estimator"]
        cost.update(t_fem_s=t_fem, fem_per_s=1.0 / t_fem if t_fem > 0 else None, fem_setup_s=setup,
                    cost_s=total, fem_equal_cost=m_eq, var_plain_fem_equal_cost=var_plain,
                    variance_reduction_equal_cost=var_plain / var_cv if var_cv > 0 else float("inf"),
                    variance_reduction_same_fem=fem_stats["var"] / fem_n / var_cv if var_cv > 0 else float("inf"))
        cost.update(optimal_allocation(cv["rho"], t_field + t_sur, t_fem, t_field + t_fem))
    return MCResult(n=n, fem_n=fem_n, seed=seed if sampler is not None else None, surrogate=sur_stats,
                    fem=fem_stats, surrogate_error=err, control_variate=cv, cost=cost, field_params=params,
                    field_params_trained=({k: trained[k] for k in FIELD_KEYS if k in trained} if trained else None),
                    field_params_differ=diffs, model=name, device=str(dev), q_sur=q_sur, q_fem=q_fem)
