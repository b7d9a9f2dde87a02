"""The multilevel-in-width FAS trainer (section 6, Algorithm 2), recursive to any depth.

One cycle at level l, as in Algorithm 2 with the coarse solve replaced by
the same cycle one level down::

    x <- smooth(x, g)                                   pre-smoothing
    (every rematch_every cycles: heavy edge matching    section 6.1.3, on the
     of the pre-smoothed weights)                       level-0 weights; match "before": at the cycle's start
    repeat once (V), twice (W), or F then V (F):
        x_c <- Pi x,  m_c <- Pi m                       (25), section 6.1.2; Adam: R m, see optim.py
        tau <- grad g_c(Pi x) - R grad g(x)             (35), on the m minibatches
                                                        the coarse level smooths on
        x_c <- cycle(x_c, g_c(x_c) - gamma x_c^T tau)   (3), section 6.1.4
        x <- x + alpha_p P(x_c - Pi x)                  (4)
        m <- m + alpha_m P(m_c - Pi m)                  (36), SGD momentum; Adam: on its velocity (optim.py)
    x <- smooth(x, g)                                   post-smoothing

and on the coarsest level ``x <- smooth(x, g)`` with ``coarse`` steps.
Here g is the level's own corrected objective (no correction on the finest
level), so with gamma = 1 the coarse gradient at x_c = Pi x equals R times
the finer level's corrected gradient on the tau minibatches.

Minibatches (section 6.1.1): one stream shuffled once per epoch and walked
by all levels.  The finest level draws each smoothing minibatch as it goes;
a coarser level smooths on the m minibatches drawn for its tau correction,
m = pre + post on an intermediate level (first ``pre`` before its coarse
corrections, the rest after; the count behind eq. (40)'s closed form) and
``coarse`` on the coarsest level.  With
``tau="wholeset"`` the correction uses the whole training set instead,
with ``tau="none"`` there is none (gamma * tau = 0).  The tau gradients are
taken in one pass over the m minibatches together, g and g_c being mean
losses over their samples (so eq. (35)'s factor N/m, which converts its
sums over samples, is 1); the work counted is m fine and m coarse passes.

Learning rate: lr / eta^l on the first :data:`ETA_LEVELS` levels, then kept
(section 8.3).  The cycle does no host synchronisation: losses are summed
on the device and read in :meth:`FASTrainer.level_losses`; the only other
host reads are the heavy edge matchings every ``rematch_every`` cycles.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.nn import functional as F

from params import ConfigError, replace

from ..models import WidthNet
from .batches import MinibatchStream
from .config import FASConfig, OptimizerConfig
from .hierarchy import Hierarchy
from .optim import OptimizerSpec, make_optimizer, prolong_momentum, restrict_state, set_rate
from .parallel import DataParallel
from .smoother import Level
from .width import lr_multipliers
from .work import MEASURES, WorkCounter

__all__ = ["DivergenceError", "FASTrainer"]

#: Levels whose learning rate is divided by eta; coarser ones keep the last rate (section 8.3).
ETA_LEVELS = 3
# the cycle(s) a cycle of each kind runs one level down, one coarse correction each
COARSE_VISITS = {"V": ("V",), "W": ("W", "W"), "F": ("F", "V")}


class DivergenceError(FloatingPointError):
    """A level's training loss is NaN or infinite."""

    def __init__(self, level: int, loss: float, params: dict[str, float]):
        self.level, self.loss, self.params = level, loss, params
        knobs = ", ".join(f"{k} = {v:g}" for k, v in params.items())
        super().__init__(f"level {level} diverged (mean training loss {loss}); lower the stability "
                         f"parameters ({knobs}): the learning rate lr, or raise eta to slow the coarse "
                         f"levels, or lower gamma (tau scaling), alpha_p or alpha_m (coarse corrections)")


class FASTrainer:
    """Multilevel FAS training of ``hier.nets[0]`` on (X, Y); one call of :meth:`cycle` per cycle.

    ``X``, ``Y``: training inputs/targets on the model's device (the model
    sees ``X[idx]`` as is); ``batches``: the minibatch stream; ``config``: the
    cycle (:class:`FASConfig`: pre/coarse/post smoothing steps, cycle kind,
    tau, alpha_p, alpha_m, gamma, eta, rematch_every; its ``levels`` and HEM
    keys belong to the hierarchy); ``optimizer``: the smoother of every level,
    an :class:`OptimizerConfig`, ``"sgd"``/``"adam"`` or a factory
    ``f(params, lr)``; ``loss``: ``f(prediction, target)``, a mean over
    samples (default MSE). Keyword ``changes`` set single keys of either
    config, e.g. ``FASTrainer(hier, X, Y, stream, cycle="W", lr=0.1)``.
    With one level, a cycle is one optimizer step.
    """

    def __init__(self, hier: Hierarchy, X: torch.Tensor, Y: torch.Tensor, batches: MinibatchStream,
                 config: FASConfig | None = None, optimizer: OptimizerConfig | OptimizerSpec | None = None,
                 loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                 base_shapes: Sequence[torch.Size] | None = None, **changes: Any):
        self.config, self.optim = _configs(config, optimizer, changes)
        self.factory = optimizer if callable(optimizer) else None
        self.hier, self.X, self.Y, self.stream = hier, X, Y, batches
        #: the shapes muP's rates are relative to (``optimizer.parametrization``): the fine net's by default
        fine_shapes = [p.shape for p in hier.nets[0].parameters()]
        self.base_shapes = list(base_shapes) if base_shapes is not None else fine_shapes
        self.loss_fn = loss if loss is not None else F.mse_loss
        self.parallel = DataParallel()
        self.lr_scale = 1.0
        self.cycles = 0
        self.levels: list[Level] = []
        self._counter = WorkCounter(hier.nets, batches.batch_size)
        self._bind_levels()

    #: The :class:`~surrogate.multilevel.protocol.Trainer` interface: a FAS trainer trains its fine net.
    growing = False
    level = 0

    # ------------------------------------------------------------------ set-up
    def level_lr(self, level: int) -> float:
        """lr / eta^l for the first :data:`ETA_LEVELS` levels, then the last of those (section 8.3)."""
        return self.optim.lr / self.config.eta ** min(level, ETA_LEVELS - 1)

    def _bind_levels(self) -> None:
        """One :class:`Level` per net; a level whose net was replaced (rematch) gets a new optimizer."""
        changed = False
        for l, net in enumerate(self.hier.nets):
            if l < len(self.levels) and self.levels[l].net is net:
                continue
            lr = self.level_lr(l)
            params = list(net.parameters())
            opt = make_optimizer(self.factory or self.optim, params, lr * self.lr_scale, self._multipliers(net))
            level = Level(net, opt, lr, self.X, self.Y, self.loss_fn, self.parallel)
            if l < len(self.levels):
                level.loss_sum, level.loss_count = self.levels[l].loss_sum, self.levels[l].loss_count
                self.levels[l] = level
            else:
                self.levels.append(level)
            changed = True
        if changed:
            self._counter = WorkCounter(self.hier.nets, self.stream.batch_size, self._counter.total)

    def _multipliers(self, net: torch.nn.Module) -> list[float] | None:
        """muP's rate factor per parameter of ``net`` against :attr:`base_shapes` (None: standard)."""
        if self.optim.parametrization != "mup":
            return None
        if not isinstance(net, WidthNet):
            raise ConfigError(f"train.parametrization: 'mup' is not allowed for a {type(net).__name__}: its rules "
                              "need a width network (mlp, cnn, unet); use parametrization standard")
        return lr_multipliers(net, self.base_shapes)

    def scale_lr(self, factor: float) -> None:
        """Every level's rate times ``factor`` (a schedule; :meth:`level_lr` stays the base rate)."""
        self.lr_scale = float(factor)
        for level in self.levels:
            set_rate(level.opt, level.lr * self.lr_scale)

    @property
    def work(self) -> dict[str, float]:
        """Cumulative work units, ``{"flops": ..., "paper": ...}``."""
        return dict(self._counter.total)

    # ------------------------------------------------------------------ cycle
    def cycle(self) -> dict[str, float]:
        """One V/W/F cycle (one optimizer step with one level); returns the work units it spent."""
        before = self.work
        if len(self.levels) == 1:
            self._smooth(0, self.stream.take(1))
        else:
            if self.config.match == "before" and self._rematch_due():
                self._rematch()
            self._bind_levels()
            self._cycle(0, self.config.cycle)
        self.cycles += 1
        return {m: self._counter.total[m] - before[m] for m in MEASURES}

    def run(self, budget: float, measure: str = "flops") -> dict[str, float]:
        """Cycle until ``budget`` work units of ``measure`` (``"flops"`` or ``"paper"``) are spent."""
        if measure not in MEASURES:
            raise ValueError(f"measure = {measure!r}: allowed: {', '.join(MEASURES)}")
        while self._counter.total[measure] < budget:
            self.cycle()
        return self.work

    def _rematch_due(self) -> bool:
        return self.cycles > 0 and self.cycles % self.config.rematch_every == 0

    def _rematch(self) -> None:
        """Heavy edge matching of every level from the current weights (section 6.1.3)."""
        self.hier.rematch()
        self._bind_levels()

    def _cycle(self, l: int, kind: str) -> None:
        """Algorithm 2 at level l: smooth, then coarse corrections, then smooth."""
        level = self.levels[l]
        if l == len(self.levels) - 1:
            self._smooth(l, level.batches)
            return
        self._smooth(l, self._smoothing_batches(l, 0, self.config.pre))
        if l == 0 and self.config.match == "after" and self._rematch_due():
            self._rematch()                           # on the pre-smoothed weights, as in Algorithm 2
        for coarse_kind in COARSE_VISITS[kind]:
            self._restrict(l)
            self._tau_correction(l)
            self._cycle(l + 1, coarse_kind)
            self._prolong(l)
        self._smooth(l, self._smoothing_batches(l, self.config.pre, self.config.post))

    def _smooth(self, l: int, batches: list[torch.Tensor]) -> None:
        """x <- smooth(x, g): one optimizer step per minibatch."""
        level = self.levels[l]
        for idx in batches:
            level.step(idx)
            self._counter.add(l, idx.numel())

    def _smoothing_batches(self, l: int, start: int, count: int) -> list[torch.Tensor]:
        if l == 0:
            return self.stream.take(count)
        return self.levels[l].batches[start:start + count]

    def _restrict(self, l: int) -> None:
        """x_c <- Pi x and the coarse optimizer state (eq. (25), section 6.1.2; optim.py); Pi x and what
        :func:`prolong_momentum` needs (Pi m, or Adam's coarse velocity) are kept for (4), (36)."""
        fine, coarse, transfer = self.levels[l], self.levels[l + 1], self.hier.transfers[l]
        coarse.pi_x = transfer.restrict(fine.params)
        with torch.no_grad():
            torch._foreach_copy_(coarse.params, coarse.pi_x)
        coarse.pi_m = restrict_state(fine.opt, fine.params, coarse.opt, coarse.params, transfer)

    def _tau_correction(self, l: int) -> None:
        """tau of level l+1, eq. (35), on the minibatches it will smooth on; kept as the shift -gamma tau."""
        fine, coarse, transfer = self.levels[l], self.levels[l + 1], self.hier.transfers[l]
        steps = self.config.coarse if l + 1 == len(self.levels) - 1 else self.config.pre + self.config.post
        coarse.batches = self.stream.take(steps)
        if self.config.tau == "none" or not coarse.batches:
            coarse.shift = None
            return
        if self.config.tau == "minibatch":
            chunks = [torch.cat(coarse.batches)]
        else:
            n, size = self.stream.n_samples, self.stream.batch_size * max(steps, 1)
            everything = torch.arange(n, device=self.X.device)
            chunks = [everything[i:i + size] for i in range(0, n, size)]
        n_samples = sum(idx.numel() for idx in chunks)
        r_grad = transfer.restrict_grad(fine.gradient(chunks))                 # R grad g(x)
        self._counter.add(l, n_samples)
        coarse_grad = coarse.gradient(chunks, corrected=False)                 # grad g_c(Pi x)
        self._counter.add(l + 1, n_samples)
        shift = torch._foreach_sub(r_grad, coarse_grad)                        # -tau
        torch._foreach_mul_(shift, self.config.gamma)
        coarse.shift = shift

    def _prolong(self, l: int) -> None:
        """x <- x + alpha_p P(x_c - Pi x) (4) and the optimizer state's correction (36), see optim.py."""
        fine, coarse, transfer = self.levels[l], self.levels[l + 1], self.hier.transfers[l]
        with torch.no_grad():
            diff = torch._foreach_sub(coarse.params, coarse.pi_x)
            torch._foreach_add_(fine.params, transfer.prolong(diff), alpha=self.config.alpha_p)
        prolong_momentum(fine.opt, fine.params, coarse.opt, coarse.params, coarse.pi_m, transfer, self.config.alpha_m)

    # ------------------------------------------------------------------ monitoring
    def level_losses(self) -> list[float]:
        """Mean training loss of each level's smoothing steps since the last call (NaN: no steps).

        The only host synchronisation of the trainer.  Raises
        :class:`DivergenceError` when a level that took steps has a NaN or
        infinite mean loss.
        """
        sums = torch.stack([level.loss_sum for level in self.levels])
        self.parallel.sum_([sums])
        sums = sums.tolist()
        counts = [level.loss_count for level in self.levels]
        for level in self.levels:
            level.loss_sum = torch.zeros_like(level.loss_sum)
            level.loss_count = 0
        means = [s / c if c else math.nan for s, c in zip(sums, counts)]
        for l, (mean, count) in enumerate(zip(means, counts)):
            if count and not math.isfinite(mean):
                c = self.config
                raise DivergenceError(l, mean, {"lr": self.levels[l].lr, "eta": c.eta, "gamma": c.gamma,
                                                "alpha_p": c.alpha_p, "alpha_m": c.alpha_m})
        return means

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything for an exact resume; loadable with ``torch.load(weights_only=True)``."""
        return {
            "hierarchy": self.hier.state_dict(),
            "optimizers": [level.opt.state_dict() for level in self.levels],
            "stream": self.stream.state_dict(),
            "cycles": self.cycles,
            "work": self.work,
            "losses": [[level.loss_sum.detach().cpu(), level.loss_count] for level in self.levels],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.hier.load_state_dict(state["hierarchy"])
        self._bind_levels()
        for level, sd, (loss_sum, count) in zip(self.levels, state["optimizers"], state["losses"]):
            level.opt.load_state_dict(sd)
            level.loss_sum, level.loss_count = loss_sum.to(level.loss_sum.device), count
        self.stream.load_state_dict(state["stream"])
        self.cycles = state["cycles"]
        self._counter.total = dict(state["work"])


def _configs(config: FASConfig | None, optimizer: OptimizerConfig | OptimizerSpec | None,
             changes: dict[str, Any]) -> tuple[FASConfig, OptimizerConfig]:
    """The cycle and optimizer configs with single-key ``changes`` applied (each checked once, there)."""
    if isinstance(optimizer, str):
        optimizer = OptimizerConfig(kind=optimizer)
    optim = optimizer if isinstance(optimizer, OptimizerConfig) else OptimizerConfig()
    fas_keys = {k: v for k, v in changes.items() if k in FASConfig.__dataclass_fields__}
    optim_keys = {k: v for k, v in changes.items() if k not in fas_keys}
    return replace(config or FASConfig(), **fas_keys), replace(optim, **optim_keys)
