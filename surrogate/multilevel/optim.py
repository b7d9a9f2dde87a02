"""Smoother optimizers and the transfer of their state between levels (section 6.1.2).

SGD.  The momentum vector m (``momentum_buffer``) has the structure of the
parameters x and moves with x's operators: m_c = Pi m on restriction
(Algorithm 2) and m <- m + alpha_m P(m_c - Pi m) on prolongation, eq. (36)
scaled as in section 6.1.4.  Other optimizers (not Adam) have their
per-parameter state restricted with Pi and not prolonged.  Scalar state
(Adam's step count) is copied, so bias corrections agree across levels.

Adam/AdamW, restriction.  Adam averages the gradients g in m and their
squares in v, and steps by -lr u with u = m_hat / (sqrt(v_hat) + eps).  With
gamma = 1 the corrected coarse gradient at x_c = Pi x is R g, R = P^T
(eqs. (28), (35)), so the coarse moments are those of R g.  R is linear:
m_c = R m, and a coarse step at Pi x on the tau minibatch gives m_c = R m',
m' the fine m updated with the fine gradient on that minibatch.  R >= 0, so
by Minkowski's inequality sqrt(avg (R g)^2) <= R sqrt(avg g^2), equal where
the gradients in an aggregate are proportional (HEM pairs neurons of
parallel weights, section 5.5): sqrt(v_c) = R sqrt(v) is the coarse second
moment where an aggregate acts as one neuron and an upper bound elsewhere.  Then
|u_c| = |R m| / R sqrt(v) <= the largest |u| in the aggregate (eps aside): a
coarse step never outruns the fine steps it stands for.  (Pi m and Pi v mix
scales: Pi averages where R sums, so v_c started up to 4 times below the
square of the coarse gradients.)

Adam/AdamW, prolongation.  What moves Adam's parameters is u, a step in the
space of x as SGD's momentum is, so eq. (36) is applied to u:
u <- u + alpha_m P(u_c - u_c0), u_c0 the coarse u right after restriction;
the fine v, the fine entries' own gradient scale, is kept, and m is rebuilt
as c1 (sqrt(v / c2) + eps) u (c_i = 1 - beta_i^t).  Prolonging m alone blows
up: Adam divides it by the fine sqrt(v), near zero where the fine gradients
were (an inactive ReLU neuron paired with an active one); here |u| grows by
at most alpha_m |P(u_c - u_c0)|.  A level that has not stepped yet (t = 0)
has no u and gets nothing.  u_c0 lives only from restriction to
prolongation, so checkpoints (between cycles) need no new state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.optim import Optimizer

from .config import OptimizerConfig
from .transfer import Transfer

__all__ = ["OptimizerSpec", "make_optimizer", "prolong_momentum", "restrict_state", "set_rate"]

# a factory ``f(params, lr) -> torch.optim.Optimizer`` (or an OptimizerConfig, see make_optimizer)
OptimizerSpec = Callable[[list, float], Optimizer]
MOMENTUM_KEY = "momentum_buffer"
FIRST_MOMENT = "exp_avg"
ADAM = (torch.optim.Adam, torch.optim.AdamW)


def make_optimizer(spec: OptimizerConfig | OptimizerSpec, params: list[torch.Tensor], lr: float,
                   multipliers: Sequence[float] | None = None) -> Optimizer:
    """The smoother of one level at rate ``lr``, with its state created up front.

    An :class:`OptimizerConfig` of kind ``"sgd"`` gives SGD with momentum
    (dampening 0), ``"adam"``/``"adamw"`` Adam/AdamW with beta_1 = ``momentum``; a callable is
    called as ``spec(params, lr)``. ``multipliers``: a rate factor per parameter
    (muP, :func:`surrogate.multilevel.width.lr_multipliers`); parameters with
    equal factors share a param group, whose ``"mult"`` records it (a group's
    rate is always ``lr * mult``). Pre-created state equals what the
    optimizer creates at its first step (a zero SGD buffer gives buf = grad,
    as torch's first step does), so momentum can be restricted before the
    finest level has taken a step.
    """
    if callable(spec):
        opt = spec(params, lr)
    else:
        groups = _rate_groups(params, multipliers or [1.0] * len(params), lr)
        if spec.kind == "sgd":
            opt = torch.optim.SGD(groups, lr=lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
        else:
            adam = torch.optim.AdamW if spec.kind == "adamw" else torch.optim.Adam
            opt = adam(groups, lr=lr, betas=(spec.momentum, 0.999), weight_decay=spec.weight_decay)
    _init_state(opt)
    return opt


def _rate_groups(params: list[torch.Tensor], multipliers: Sequence[float], lr: float) -> list[dict]:
    """One param group per distinct rate factor, in the order of first appearance."""
    groups: dict[float, list[torch.Tensor]] = {}
    for p, mult in zip(params, multipliers, strict=True):
        groups.setdefault(float(mult), []).append(p)
    return [{"params": ps, "mult": mult, "lr": lr * mult} for mult, ps in groups.items()]


def set_rate(opt: Optimizer, lr: float) -> None:
    """Every param group of ``opt`` at ``lr`` times its ``"mult"`` (1 without)."""
    for group in opt.param_groups:
        group["lr"] = lr * group.get("mult", 1.0)


def _init_state(opt: Optimizer) -> None:
    for group in opt.param_groups:
        for p in group["params"]:
            state = opt.state[p]
            if state:
                continue
            if isinstance(opt, torch.optim.SGD) and group["momentum"] != 0:
                state[MOMENTUM_KEY] = torch.zeros_like(p, memory_format=torch.preserve_format)
            elif isinstance(opt, ADAM) and not (group["fused"] or group["capturable"]):
                state["step"] = torch.tensor(0.0, dtype=torch.get_default_dtype())
                for key in ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ()):
                    state[key] = torch.zeros_like(p, memory_format=torch.preserve_format)


def _shaped_keys(opt: Optimizer, params: Sequence[torch.Tensor]) -> list[str]:
    first = opt.state.get(params[0], {})
    return [k for k, v in first.items() if torch.is_tensor(v) and v.shape == params[0].shape
            and all(k in opt.state.get(p, {}) for p in params)]


def _set_state(opt: Optimizer, params: Sequence[torch.Tensor], key: str, values: Sequence[torch.Tensor]) -> None:
    for p, v in zip(params, values):
        opt.state[p][key] = v


@torch.no_grad()
def restrict_state(fine: Optimizer, fine_params: Sequence[torch.Tensor], coarse: Optimizer,
                   coarse_params: Sequence[torch.Tensor], transfer: Transfer) -> list[torch.Tensor] | None:
    """Set the coarse optimizer state from the fine one (Algorithm 2, section 6.1.2); scalars (step) copied.

    Adam/AdamW: m_c = R m, sqrt(v_c) = R sqrt(v); any other optimizer:
    m_c = Pi m for every per-parameter state (see the module docstring).
    Returns the coarse state that :func:`prolong_momentum` measures the coarse
    change from: the coarse Adam velocity, Pi m for SGD momentum, or None.
    """
    for p_f, p_c in zip(fine_params, coarse_params):
        for k, v in fine.state.get(p_f, {}).items():
            if not (torch.is_tensor(v) and v.shape == p_f.shape):
                coarse.state[p_c][k] = v.clone() if torch.is_tensor(v) else v
    if isinstance(fine, ADAM):
        _restrict_adam(fine, fine_params, coarse, coarse_params, transfer)
        return _velocity(coarse, coarse_params)
    pi_m = None
    for k in _shaped_keys(fine, fine_params):
        restricted = transfer.restrict([fine.state[p][k] for p in fine_params])
        _set_state(coarse, coarse_params, k, [v.clone() for v in restricted] if k == MOMENTUM_KEY else restricted)
        if k == MOMENTUM_KEY:
            pi_m = restricted
    return pi_m


def _restrict_adam(fine: Optimizer, fine_params: Sequence[torch.Tensor], coarse: Optimizer,
                   coarse_params: Sequence[torch.Tensor], transfer: Transfer) -> None:
    """m_c = R m, sqrt(v_c) = R sqrt(v) (eq. (28)): the moments of the gradients R g the coarse level sees."""
    for k in _shaped_keys(fine, fine_params):
        moments = [fine.state[p][k] for p in fine_params]
        if k == FIRST_MOMENT:
            _set_state(coarse, coarse_params, k, transfer.restrict_grad(moments))
            continue
        roots = transfer.restrict_grad(torch._foreach_sqrt(moments))
        _set_state(coarse, coarse_params, k, torch._foreach_mul(roots, roots))


def _adam_scale(opt: Optimizer, p: torch.Tensor) -> torch.Tensor | None:
    """c1 (sqrt(v / c2) + eps), c_i = 1 - beta_i^t: Adam steps by -lr m / this; None before its first step."""
    state = opt.state[p]
    t = float(state["step"])
    if t == 0:
        return None
    group = next(g for g in opt.param_groups if any(q is p for q in g["params"]))
    beta1, beta2 = group["betas"]
    v = state["max_exp_avg_sq" if group["amsgrad"] else "exp_avg_sq"]
    return (v / (1 - beta2 ** t)).sqrt_().add_(group["eps"]).mul_(1 - beta1 ** t)


def _velocity(opt: Optimizer, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Adam's normalised step u = m_hat / (sqrt(v_hat) + eps) (its step is -lr u); 0 before the first step."""
    out = []
    for p in params:
        m, scale = opt.state[p][FIRST_MOMENT], _adam_scale(opt, p)
        out.append(torch.zeros_like(m) if scale is None else m / scale)
    return out


@torch.no_grad()
def prolong_momentum(fine: Optimizer, fine_params: Sequence[torch.Tensor], coarse: Optimizer,
                     coarse_params: Sequence[torch.Tensor], start: list[torch.Tensor] | None,
                     transfer: Transfer, alpha_m: float) -> None:
    """m <- m + alpha_m P(m_c - Pi m), eq. (36) scaled as in section 6.1.4; for Adam on u, m = scale u.

    ``start`` is what :func:`restrict_state` returned.  Adam/AdamW: the
    velocity u gets u <- u + alpha_m P(u_c - u_c0) with u_c0 the coarse
    velocity at restriction; the fine v is kept and m rebuilt from u.
    """
    if start is None or alpha_m == 0.0:
        return
    if isinstance(fine, ADAM):
        change = torch._foreach_sub(_velocity(coarse, coarse_params), start)
        for p, du in zip(fine_params, transfer.prolong(change)):
            scale = _adam_scale(fine, p)
            if scale is not None:
                fine.state[p][FIRST_MOMENT].addcmul_(scale, du, value=alpha_m)
        return
    diff = torch._foreach_sub([coarse.state[p][MOMENTUM_KEY] for p in coarse_params], start)
    torch._foreach_add_([fine.state[p][MOMENTUM_KEY] for p in fine_params], transfer.prolong(diff), alpha=alpha_m)
