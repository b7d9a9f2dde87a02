"""The adaptive multilevel algorithm (Giles 2015, Acta Numerica, algorithm 1; MLQMC: Giles and Waterhouse 2009).

Given a hierarchy (its ``levels(L)``: the estimator's terms with grid levels
0..L; ``max_level``; ``grids``; ``sample(level, start, stop, rep)`` -> (z,
seconds by part; the batch costs its wall time, or ``parts["seconds"]`` when
the model declares its cost, as the tests' toy hierarchies do)), a tolerance
eps (``rtol`` |estimate| or ``atol``) and theta, the bias share of eps^2:

1. pilot: ``pilot`` samples on the coarsest levels, halved on every finer
   difference level (at least 8: their optimal N_l falls with sqrt(V_l / C_l),
   and a pilot of 64 at n = 256 would cost more than the whole estimate at
   rtol 1e-3), ``batch_surrogate`` on the cheap surrogate level (its mean
   dominates the first estimate of E[Q], hence of eps = rtol |E[Q]|); QMC:
   those sizes / R, a power of 2 (at least 1), in each of R randomizations; with a
   surrogate level, freeze the control-variate coefficient beta from the
   level-0 pilot;
2. MC: estimate V_l and C_l (seconds per sample, measured), set
   N_l by Giles' allocation (:func:`surrogate.mc.mlmc.allocation`) for a sampling
   variance (1 - theta) eps^2, add the missing samples, repeat until no level
   needs more than 1% more samples; QMC: while the sum of the levels'
   variances (from the spread of their randomizations) exceeds
   (1 - theta) eps^2, double the points of the level with the largest
   variance per unit cost of doubling, V_l / (C_l N_l);
3. ``adaptive``: when 2 holds, estimate the bias from the two finest level
   means (:func:`surrogate.mc.mlmc.bias_estimate`, alpha fitted, at least 0.5);
   if it exceeds sqrt(theta) eps, add the next finer level (its pilot, then 2
   again), up to ``max_level``. Not adaptive: all levels from the start and
   theta = 0, the target being E[P_L] of the finest grid itself (no bias by
   definition; the report still gives the extrapolated bias against the
   continuum).

Levels with few samples get Giles' variance floor V_l >= V_{l-1} / 2^(beta + 1)
(beta the variance decay rate) in the allocation. ``max_cost_s`` caps the
sampling seconds: a tolerance the budget (or, adaptive, the finest grid)
cannot reach ends with the best estimate so far and a message saying what
it would take, never a hang. Every batch goes to the :class:`Records`
before it counts, so a killed run resumes from them.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from surrogate.mc.errors import MCError
from surrogate.mc.mlmc import (
    LevelStats,
    Moments,
    allocation,
    bias_estimate,
    decay_rate,
    optimal_cost,
    quantile95,
    summary,
)
from surrogate.mc.records import Records

#: Stop refining the allocation when no level needs more than this share of its samples.
CONVERGED_SHARE = 0.01
#: Rounds of allocation after which the run stops (a safeguard; Giles' algorithm needs a handful).
MAX_ROUNDS = 200
#: Fewest pilot samples of a level.
PILOT_MIN = 8


@dataclass(frozen=True)
class Plan:
    """The algorithm's settings (module docstring); ``batch``: most samples per call of ``sample``."""

    rtol: float | None = 1e-3
    atol: float | None = None
    adaptive: bool = False
    theta: float = 0.5
    pilot: int = 64
    replicates: int = 0
    max_cost_s: float = math.inf
    batch: int = 256
    batch_surrogate: int = 8192
    start_level: int = 2

    def eps(self, mean: float) -> float:
        return float(self.atol) if self.atol else float(self.rtol) * abs(mean)

    @property
    def theta_used(self) -> float:
        return self.theta if self.adaptive else 0.0


@dataclass
class Outcome:
    """What a run found: the levels, their statistics, beta, the estimate, and why it stopped."""

    levels: list
    stats: dict[str, LevelStats]
    beta: float
    eps: float
    estimate: dict
    status: str
    message: str
    rates: dict
    bias_continuum: float
    spent_s: float
    needed_s: float
    resumed: bool = False
    qmc: bool = False
    extra: dict = field(default_factory=dict)


class MultilevelRun:
    """One run of the algorithm over ``hierarchy`` with ``plan``; :meth:`execute` returns the :class:`Outcome`."""

    def __init__(self, hierarchy, plan: Plan, records: Records, progress: bool = False,
                 on_batch: Callable[[dict], None] | None = None):
        self.h, self.plan, self.records, self.progress, self.on_batch = hierarchy, plan, records, progress, on_batch
        self.qmc = plan.replicates > 0
        self.reps = list(range(plan.replicates)) if self.qmc else [0]
        self.stats: dict[str, LevelStats] = {}
        self.beta = float(records.settings.get("beta", 1.0))
        self.finest = hierarchy.max_level if not plan.adaptive else min(plan.start_level, hierarchy.max_level)
        self.finest = int(records.settings.get("finest", self.finest))
        self.levels = hierarchy.levels(self.finest)
        self._bar = None
        for entry in records.batches:
            k = len(entry["moments"]["mean"])
            self.stats.setdefault(entry["level"], LevelStats(k)).add(
                entry["rep"], Moments.from_dict(entry["moments"]), entry["seconds"], entry.get("parts"))

    # ------------------------------------------------------------------ sampling
    def _stat(self, level) -> LevelStats:
        return self.stats.setdefault(level.key, LevelStats(len(level.outputs)))

    def _extend(self, level, target: int, rep: int) -> None:
        """Sample ``level`` (randomization ``rep``) up to ``target`` samples, batch by batch, recorded."""
        stat = self._stat(level)
        size = self.plan.batch_surrogate if level.kind == "surrogate" else self.plan.batch
        start = stat.count(rep)
        while start < target:
            stop = min(target, start + size)
            if hasattr(self.h, "prepare"):
                self.h.prepare(level, rep)  # set-up is not sampling cost
            t0 = time.perf_counter()
            z, parts = self.h.sample(level, start, stop, rep)
            parts = dict(parts)
            seconds = float(parts.pop("seconds", time.perf_counter() - t0))  # a cost model may declare it
            moments = Moments.of(z)
            stat.add(rep, moments, seconds, parts)
            entry = self.records.add(level.key, rep, start, stop, moments, seconds, parts)
            if self.on_batch is not None:
                self.on_batch(entry)
            if self._bar is not None:
                self._bar.update(seconds)
                self._bar.set_postfix_str(f"{level.key} {stop}")
            start = stop

    def _sample(self, counts: dict[str, int]) -> None:
        """Bring each level (by key) to ``counts`` samples per randomization."""
        for level in self.levels:
            if level.key in counts:
                for rep in self.reps:
                    self._extend(level, counts[level.key], rep)

    def _pilot_size(self, level) -> int:
        """Pilot samples of ``level``: ``pilot``, halved per difference level past the first (at least
        :data:`PILOT_MIN`), ``batch_surrogate`` on the surrogate level; per randomization with QMC."""
        size = self.plan.pilot
        if level.kind == "difference":
            size = max(PILOT_MIN, size >> max(level.index - 1, 0))
        if self.qmc:
            return _pow2(max(1, size // len(self.reps)))
        return max(size, self.plan.batch_surrogate) if level.kind == "surrogate" else size

    def _pilot(self) -> None:
        cv = [lv for lv in self.levels if lv.kind == "coarsest" and lv.cv]
        if cv and "beta" not in self.records.settings:
            self._sample({cv[0].key: self._pilot_size(cv[0])})
            c = self._stat(cv[0]).pooled.cov()
            self.beta = float(c[0, 1] / c[1, 1]) if c[1, 1] > 0 else 0.0
            self.records.set(beta=self.beta)
        self._sample({lv.key: self._pilot_size(lv) for lv in self.levels})

    # ------------------------------------------------------------------ estimates
    def per_sample_costs(self) -> np.ndarray:
        return np.array([self._stat(lv).cost for lv in self.levels])

    def variances(self, floor: bool = True) -> np.ndarray:
        """V_l of each term (with Giles' floor on sparse difference levels when ``floor``)."""
        v = np.array([self._stat(lv).var(lv.weights(self.beta)) for lv in self.levels])
        if floor and self.plan.adaptive:
            diff = [i for i, lv in enumerate(self.levels) if lv.kind == "difference"]
            rate = decay_rate([0.0, *v[diff]]) if len(diff) >= 2 else 1.0
            for a, b in itertools.pairwise(diff):
                v[b] = max(v[b], v[a] / 2 ** (rate + 1))
        return np.maximum(v, 1e-300)

    def level_means(self) -> np.ndarray:
        return np.array([self._stat(lv).mean(lv.weights(self.beta)) for lv in self.levels])

    def var_of_means(self) -> np.ndarray:
        return np.array([self._stat(lv).var_of_mean(lv.weights(self.beta), self.qmc) for lv in self.levels])

    def grid_means(self) -> list[float]:
        """E[Y_l] of the grid levels 0..L (level 0: E[P_0], without the control variate)."""
        out = []
        for lv in self.levels:
            if lv.kind == "coarsest":
                out.append(self._stat(lv).pooled.mean[0])
            elif lv.kind == "difference":
                out.append(self._stat(lv).mean(lv.weights(self.beta)))
        return out

    def bias(self) -> tuple[float, float]:
        """(bias estimate of E[P_L] against the continuum, alpha)."""
        means = self.grid_means()
        alpha = decay_rate(means)
        return bias_estimate(means, alpha), alpha

    @property
    def spent(self) -> float:
        return sum(self._stat(lv).seconds for lv in self.levels)

    # ------------------------------------------------------------------ the algorithm
    def execute(self) -> Outcome:
        with tqdm(total=0.0, unit="s", desc="multilevel", disable=not self.progress,
                  bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s {postfix}") as self._bar:
            self._pilot()
            status, message = self._loop()
        self._bar = None
        return self._outcome(status, message)

    def _loop(self) -> tuple[str, str]:
        for _ in range(MAX_ROUNDS):
            eps = self.plan.eps(float(self.level_means().sum()))
            eps_s2 = (1.0 - self.plan.theta_used) * eps * eps
            need = self._qmc_need(eps_s2) if self.qmc else self._mc_need(eps_s2)
            if not need:
                bias, _ = self.bias()
                if not self.plan.adaptive or bias <= math.sqrt(self.plan.theta) * eps:
                    return "converged", ""
                if self.finest >= self.h.max_level:
                    return "finest", (f"the bias estimate {bias:.3g} exceeds its share sqrt(theta) eps = "
                                      f"{math.sqrt(self.plan.theta) * eps:.3g} at the finest allowed grid "
                                      f"n = {self.h.grids[-1]}; allow a finer grid (uq.n) or a larger tolerance")
                self.finest += 1
                self.records.set(finest=self.finest)
                self.levels = self.h.levels(self.finest)
                self._pilot()
                continue
            cost = sum(self._stat(lv).cost * n * len(self.reps) for lv, n in
                       ((lv, need.get(lv.key, 0) - self._stat(lv).count(0)) for lv in self.levels) if n > 0)
            left = self.plan.max_cost_s - self.spent
            if cost > left:
                return "budget", self._budget_message(eps_s2)
            if self._bar is not None:
                self._bar.total = self.spent + cost
                self._bar.refresh()
            self._sample(need)
        return "rounds", f"no convergence after {MAX_ROUNDS} rounds of allocation"

    def _mc_need(self, eps_s2: float) -> dict[str, int]:
        counts = allocation(self.variances(), self.per_sample_costs(), eps_s2)
        need = {}
        for lv, n in zip(self.levels, counts):
            have = self._stat(lv).count(0)
            if n - have > CONVERGED_SHARE * have:
                need[lv.key] = int(n)
        return need

    def _qmc_need(self, eps_s2: float) -> dict[str, int]:
        w = self.var_of_means()
        if w.sum() <= eps_s2:
            return {}
        counts = np.array([self._stat(lv).count(0) for lv in self.levels])
        i = int(np.argmax(w / (self.per_sample_costs() * counts)))
        return {self.levels[i].key: int(2 * counts[i])}

    def _budget_message(self, eps_s2: float) -> str:
        needed = self._needed_cost(eps_s2)
        return (f"the budget uq.max_cost_s = {self.plan.max_cost_s:g} s cannot reach the tolerance: it needs about "
                f"{needed:.3g} s of sampling (spent {self.spent:.3g} s); the best estimate so far is reported; "
                "raise uq.max_cost_s or the tolerance")

    def _needed_cost(self, eps_s2: float) -> float:
        if self.qmc:  # QMC: extrapolate each level's variance as 1/N (the MC rate, a pessimistic bound)
            w, c = self.var_of_means(), self.per_sample_costs()
            n = np.array([self._stat(lv).n for lv in self.levels])
            return optimal_cost(w * n, c, eps_s2)
        return optimal_cost(self.variances(floor=False), self.per_sample_costs(), eps_s2)

    def _outcome(self, status: str, message: str) -> Outcome:
        means, var = self.level_means(), self.var_of_means()
        eps = self.plan.eps(float(means.sum()))
        bias, alpha = self.bias()
        used_bias = bias if self.plan.adaptive else 0.0
        diff = [i for i, lv in enumerate(self.levels) if lv.kind == "difference"]
        v, c = self.variances(floor=False), self.per_sample_costs()
        rates = {"alpha": alpha, "beta": decay_rate([0.0, *v[diff]]) if len(diff) >= 2 else None,
                 "gamma": float(np.polyfit(np.arange(len(diff)), np.log2(c[diff]), 1)[0]) if len(diff) >= 2 else None}
        est = summary(float(means.sum()), float(var.sum()), used_bias if math.isfinite(used_bias) else 0.0,
                      quantile95(self.plan.replicates))
        eps_s2 = (1.0 - self.plan.theta_used) * eps * eps
        return Outcome(self.levels, {lv.key: self._stat(lv) for lv in self.levels}, self.beta, eps, est, status,
                       message, rates, bias, self.spent, self._needed_cost(eps_s2), self.records.resumed, self.qmc)


def _pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def check_plan(plan: Plan) -> Plan:
    """The plan, or an :class:`MCError` naming the bad setting."""
    if (plan.rtol is None) == (plan.atol is None):
        raise MCError("uq: give exactly one of rtol and atol (the tolerance on the RMSE)")
    tol = plan.rtol if plan.rtol is not None else plan.atol
    if not (tol > 0 and math.isfinite(tol)):
        raise MCError(f"uq: tolerance {tol!r} is not allowed; need a number > 0")
    if not 0.0 < plan.theta < 1.0:
        raise MCError(f"uq.theta: {plan.theta!r} is not allowed; need 0 < theta < 1 (the bias share of eps^2)")
    if plan.pilot < 2 or plan.replicates == 1 or plan.replicates < 0:
        raise MCError("uq: need pilot >= 2 samples and qmc replicates 0 (plain MC) or >= 2")
    return plan
