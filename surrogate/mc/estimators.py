"""The estimators of :mod:`surrogate.mc` (numpy only): plain MC, control variate, cost comparison."""

from __future__ import annotations

import math

import numpy as np

from surrogate.mc.errors import MCError

#: Two-sided 95% normal quantile.
Z95 = 1.959963984540054
#: The keys of an estimate: mean, standard error and 95% CI.
SUMMARY = ("mean", "se", "ci95_low", "ci95_high")


def _summary(mean: float, var_est: float) -> dict:
    se = math.sqrt(max(var_est, 0.0))
    return {"mean": float(mean), "se": se, "ci95_low": float(mean - Z95 * se), "ci95_high": float(mean + Z95 * se)}


def _vector(q) -> np.ndarray:
    return np.asarray(q, dtype=np.float64).reshape(-1)


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("inf")


def plain_mc(q: np.ndarray) -> dict:
    """Plain Monte Carlo: mean, standard error, 95% CI, variance and sd of the samples ``q``."""
    q = _vector(q)
    if q.size < 2:
        raise MCError(f"plain Monte Carlo needs at least 2 samples, got {q.size}")
    var = float(q.var(ddof=1))
    return {**_summary(q.mean(), var / q.size), "var": var, "std": math.sqrt(var), "n": int(q.size)}


def control_variate(q_fem: np.ndarray, q_sur_pairs: np.ndarray, q_sur_all: np.ndarray,
                    beta: float | None = None, shared: int | None = None) -> dict:
    """Control-variate estimate of E[Q_fem] (formulas in :mod:`surrogate.mc`).

    ``q_fem``, ``q_sur_pairs``: the M high-/low-fidelity pairs (same fields);
    ``q_sur_all``: the N low-fidelity values.  ``shared``: how many of the M
    pair fields are among the N (default all M, the nested design; reused store
    pairs are not, :mod:`surrogate.mc.reuse`): the covariance term of the
    variance scales by shared / M.  ``beta``: None estimates cov/var from the pairs.
    """
    f, s, s_all = _vector(q_fem), _vector(q_sur_pairs), _vector(q_sur_all)
    m, n = f.size, s_all.size
    shared = m if shared is None else int(shared)
    if s.size != m:
        raise MCError(f"control variate: {m} FEM values but {s.size} paired surrogate values")
    if m < 3:
        raise MCError(f"control variate: need at least 3 FEM/surrogate pairs, got {m}")
    if not 0 <= shared <= min(m, n):
        raise MCError(f"control variate: {shared} shared fields is not allowed; need 0 <= shared <= min(M, N)")
    var_s = float(s.var(ddof=1))
    cov_fs = float(np.cov(f, s, ddof=1)[0, 1])
    var_f = float(f.var(ddof=1))
    degenerate = var_s <= 0.0
    if beta is None:
        beta = 0.0 if degenerate else cov_fs / var_s
    beta = float(beta)
    d = f - beta * s
    var_est = (float(d.var(ddof=1)) / m + beta * beta * float(s_all.var(ddof=1)) / n
               + 2.0 * beta * (cov_fs - beta * var_s) * shared / (m * n))
    mean = float(d.mean() + beta * s_all.mean())
    rho = cov_fs / math.sqrt(var_f * var_s) if var_f > 0 and var_s > 0 else float("nan")
    return {**_summary(mean, var_est), "var_estimator": max(var_est, 0.0), "beta": beta,
            "beta_estimated": not degenerate, "rho": rho, "m": m, "n": n, "shared": shared}


def cross_fit(q_fem: np.ndarray, q_sur_folds: np.ndarray, fold: np.ndarray, q_sur_fresh: np.ndarray,
              beta: float | None = None) -> dict:
    """K-fold cross-fitted control variate: every FEM sample paired with the surrogate that did not see it.

    ``q_fem`` (M,): the FEM values of the store samples; ``fold`` (M,): the fold k of each; ``q_sur_folds``
    (M,): g_fold(x_i), the prediction of the surrogate trained without fold k; ``q_sur_fresh`` (K, N): each
    surrogate on the same N fresh fields. With M_k the fold sizes::

        mu  = mean_M(f_i - beta g_k(i)(x_i)) + beta sum_k (M_k / M) mean_N(g_k)
        Var = sum_k M_k s_k^2 / M^2 + beta^2 var_N(sum_k (M_k / M) g_k) / N

    s_k^2 the residual variance in fold k. For a fixed beta the mean is exactly unbiased
    (:mod:`surrogate.mc.reuse`); the variance is the cross-fitting one (asymptotically valid, as in
    double machine learning), checked by the coverage tests.
    """
    f, g, k = _vector(q_fem), _vector(q_sur_folds), np.asarray(fold).reshape(-1)
    fresh = np.asarray(q_sur_fresh, dtype=np.float64)
    folds = np.unique(k)
    if fresh.ndim != 2 or fresh.shape[0] != folds.size or not np.array_equal(folds, np.arange(folds.size)):
        raise MCError(f"cross_fit: folds {folds.tolist()} need one row of fresh predictions each, numbered from 0; "
                      f"got {fresh.shape[0] if fresh.ndim == 2 else fresh.shape} rows")
    m = f.size
    sizes = np.array([(k == j).sum() for j in folds])
    if sizes.min() < 2 or g.size != m:
        raise MCError("cross_fit: need at least 2 FEM samples per fold and one prediction per FEM sample")
    if beta is None:
        var_g = float(g.var(ddof=1))
        beta = float(np.cov(f, g, ddof=1)[0, 1]) / var_g if var_g > 0 else 0.0
    d = f - beta * g
    h = (sizes / m) @ fresh
    var_est = (sum(sizes[j] * float(d[k == j].var(ddof=1)) for j in folds) / m**2
               + beta**2 * float(h.var(ddof=1)) / h.size)
    return {**_summary(float(d.mean() + beta * h.mean()), var_est), "var_estimator": var_est, "beta": float(beta),
            "folds": int(folds.size), "m": m, "n": int(h.size)}


def surrogate_error(q_sur_pairs: np.ndarray, q_fem: np.ndarray) -> dict:
    """Mean (with SE and 95% CI), rmse and max |.| of Q_sur - Q_fem on the M pairs."""
    e = _vector(q_sur_pairs) - _vector(q_fem)
    stats = plain_mc(e)
    return {**{k: stats[k] for k in SUMMARY}, "rmse": float(np.sqrt(np.mean(e * e))),
            "max_abs": float(np.abs(e).max())}


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


def equal_cost(n: int, m: int, t_field: float, t_sur: float, t_fem: float, var_fem: float, cv: dict,
               reused: int = 0, fixed_s: float = 0.0) -> dict:
    """The control variate ``cv`` against plain FEM MC, per-sample times in seconds.

    Sampling cost T = N (t_field + t_sur) + M t_fem + M_r t_sur (M_r reused store pairs, whose FEM
    solves are part of the data cost); total cost T + ``fixed_s`` (the surrogate's data and training,
    :mod:`surrogate.mc.cost`). Plain FEM MC of cost T has M_eq = T / (t_field + t_fem) solves and
    variance var(Q_fem) / M_eq; the variance reductions at equal sampling cost, at equal *total*
    cost and with the same M + M_r FEM values, and the :func:`optimal_allocation` hint.
    """
    sampling = n * (t_field + t_sur) + m * t_fem + reused * t_sur
    total = sampling + fixed_s
    per_plain = t_field + t_fem
    m_eq = sampling / per_plain
    var_plain = var_fem / m_eq
    var_plain_total = var_fem * per_plain / total
    return {"cost_s": sampling, "fem_equal_cost": m_eq, "var_plain_fem_equal_cost": var_plain,
            "variance_reduction_equal_cost": _ratio(var_plain, cv["var_estimator"]),
            "cost_total_s": total, "fixed_s": fixed_s, "fem_equal_total_cost": total / per_plain,
            "variance_reduction_equal_total_cost": _ratio(var_plain_total, cv["var_estimator"]),
            "variance_reduction_same_fem": _ratio(var_fem / (m + reused), cv["var_estimator"]),
            **optimal_allocation(cv["rho"], t_field + t_sur, t_fem, t_field + t_fem)}
