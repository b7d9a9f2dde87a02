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
never reuses a training sample.  With ``mc.sampler: numpy`` a field is drawn
exactly as a store draws one (:class:`pde_data.fields.GaussianRandomField`:
circulant embedding, or the Cholesky reference), from that generator; with
``torch`` (the default for FFT fields) the same embedding is evaluated on the
surrogate's device in float32 from torch normals (:mod:`surrogate.mc.fields`):
statistically the same field, not bit for bit.  Both are rounded to float32
like the stored fields.

The FEM stack (:mod:`pde_data.darcy`, DOLFINx) is imported only when FEM
solves are asked for: the surrogate-only estimate needs the numpy-only
:mod:`pde_data.fields` alone.

Parameters: the ``mc:`` section of params.yaml, :class:`surrogate.config.MCConfig`
(``n``, ``fem_n``, ``seed``, ``batch_size``, ``device`` and ``field``, overrides
of the training store's field parameters :data:`pde_data.fields.FIELD_PARAMS`;
a difference from the training values gives a warning).

**Total cost** (:mod:`.cost`): the report adds what the surrogate cost to
build, its FEM data (the store's generation time) and its training (and the
other candidates' when the pipeline selected it), and gives the variance
reduction at equal *total* cost beside the sampling-only figure.

**Reused FEM samples** (``mc.reuse``, :mod:`.reuse`): the store's test split,
which neither training nor model selection saw, gives FEM/surrogate pairs
without new solves; cross-fitting (:func:`.estimators.cross_fit`) extends this
to every store sample with K surrogates, each predicting the fold it did not
see. Both are argued unbiased in :mod:`.reuse`.

**To a tolerance** (``surrogate uq``, :mod:`.uq`): multilevel Monte Carlo
over grids with coupled cell-averaged fields (:mod:`.levels`), Giles'
adaptive algorithm (:mod:`.adaptive`, :mod:`.mlmc`), randomized QMC normals,
a surrogate control variate on the coarsest level, resumable records
(:mod:`.records`) and the report at total cost (:mod:`.uqresult`).

Modules: :mod:`.estimators` (the formulas above, numpy only), :mod:`.fields`
(fresh fields), :mod:`.models` (surrogate, training parameters, FEM model),
:mod:`.result` (report, metrics, plot), :mod:`.run` (:func:`estimate`), and
the multilevel ones named above. Attributes load their module on first use,
so ``surrogate --help`` does not import torch.
"""

import importlib

_EXPORTS = {"MCError": "errors", "MCWarning": "errors", "control_variate": "estimators",
            "optimal_allocation": "estimators", "plain_mc": "estimators", "cross_fit": "estimators",
            "MC_STREAM": "fields", "FieldSampler": "fields", "mc_rng": "fields", "MCResult": "result",
            "estimate": "run", "estimate_to_tolerance": "uq", "UQResult": "uqresult"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"surrogate.mc.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'surrogate.mc' has no attribute {name!r}")
