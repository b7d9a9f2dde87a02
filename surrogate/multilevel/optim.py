"""Smoother optimizers and the transfer of their state between levels (section 6.1.2).

The momentum vector m has the structure of the parameters x, so it moves
with the same operators: m_c = Pi m on restriction, and
m <- m + alpha_m P(m_c - Pi m) on prolongation, eq. (36) with the scaling of
section 6.1.4.  The momentum is SGD's ``momentum_buffer``.  All other
per-parameter state (Adam's first and second moments) is restricted the
same way and scalar state (Adam's step count) is copied, so a coarse
optimizer starts every coarse solve from the restricted state of the finer
one; that state is not prolonged.  (Prolonging Adam's first moment alone
blows up: Adam divides it by a second moment that is near zero wherever the
fine gradients were, e.g. on inactive ReLU neurons.)
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch.optim import Optimizer

from .config import OptimizerConfig
from .transfer import Transfer

__all__ = ["OptimizerSpec", "make_optimizer", "restrict_state", "prolong_momentum"]

# a factory ``f(params, lr) -> torch.optim.Optimizer`` (or an OptimizerConfig, see make_optimizer)
OptimizerSpec = Callable[[list, float], Optimizer]
MOMENTUM_KEY = "momentum_buffer"


def make_optimizer(spec: OptimizerConfig | OptimizerSpec, params: list[torch.Tensor], lr: float) -> Optimizer:
    """The smoother of one level at rate ``lr``, with its state created up front.

    An :class:`OptimizerConfig` of kind ``"sgd"`` gives SGD with momentum
    (dampening 0), ``"adam"``/``"adamw"`` Adam/AdamW with beta_1 = ``momentum``; a callable is
    called as ``spec(params, lr)``. Pre-created state equals what the
    optimizer creates at its first step (a zero SGD buffer gives buf = grad,
    as torch's first step does), so momentum can be restricted before the
    finest level has taken a step.
    """
    if callable(spec):
        opt = spec(params, lr)
    elif spec.kind == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
    else:
        adam = torch.optim.AdamW if spec.kind == "adamw" else torch.optim.Adam
        opt = adam(params, lr=lr, betas=(spec.momentum, 0.999), weight_decay=spec.weight_decay)
    _init_state(opt)
    return opt


def _init_state(opt: Optimizer) -> None:
    for group in opt.param_groups:
        for p in group["params"]:
            state = opt.state[p]
            if state:
                continue
            if isinstance(opt, torch.optim.SGD) and group["momentum"] != 0:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            elif isinstance(opt, (torch.optim.Adam, torch.optim.AdamW)) and not (group["fused"] or group["capturable"]):
                state["step"] = torch.tensor(0.0, dtype=torch.get_default_dtype())
                for key in ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ()):
                    state[key] = torch.zeros_like(p, memory_format=torch.preserve_format)


def _shaped_keys(opt: Optimizer, params: Sequence[torch.Tensor]) -> list[str]:
    first = opt.state.get(params[0], {})
    return [k for k, v in first.items() if torch.is_tensor(v) and v.shape == params[0].shape
            and all(k in opt.state.get(p, {}) for p in params)]


@torch.no_grad()
def restrict_state(fine: Optimizer, fine_params: Sequence[torch.Tensor], coarse: Optimizer,
                   coarse_params: Sequence[torch.Tensor], transfer: Transfer) -> list[torch.Tensor] | None:
    """Set the coarse optimizer state from the fine one: m_c = Pi m (Algorithm 2).

    Returns Pi m (kept for the prolongation), or None without SGD momentum.
    """
    pi_m = None
    for k in _shaped_keys(fine, fine_params):
        restricted = transfer.restrict([fine.state[p][k] for p in fine_params])
        for p_c, v in zip(coarse_params, restricted):
            coarse.state[p_c][k] = v.clone() if k == MOMENTUM_KEY else v
        if k == MOMENTUM_KEY:
            pi_m = restricted
    for p_f, p_c in zip(fine_params, coarse_params):
        for k, v in fine.state.get(p_f, {}).items():
            if not (torch.is_tensor(v) and v.shape == p_f.shape):
                coarse.state[p_c][k] = v.clone() if torch.is_tensor(v) else v
    return pi_m


@torch.no_grad()
def prolong_momentum(fine: Optimizer, fine_params: Sequence[torch.Tensor], coarse: Optimizer,
                     coarse_params: Sequence[torch.Tensor], pi_m: list[torch.Tensor] | None,
                     transfer: Transfer, alpha_m: float) -> None:
    """m <- m + alpha_m P(m_c - Pi m), eq. (36) scaled as in section 6.1.4."""
    if pi_m is None or alpha_m == 0.0:
        return
    diff = torch._foreach_sub([coarse.state[p][MOMENTUM_KEY] for p in coarse_params], pi_m)
    torch._foreach_add_([fine.state[p][MOMENTUM_KEY] for p in fine_params], transfer.prolong(diff), alpha=alpha_m)
