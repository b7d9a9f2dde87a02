"""One level of the hierarchy: its network, its smoother and its (tau-corrected) objective."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.optim import Optimizer

from ..models import WidthNet
from .parallel import DataParallel

__all__ = ["Level"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Level:
    """The objective g_l of a level, its tau correction and its smoothing steps.

    The level's objective is ``g_l(x) - gamma * x^T tau_l`` (eq. (3) with the
    scaling of section 6.1.4; no correction on the finest level).  Its
    gradient is ``grad g_l(x) + shift`` with ``shift = -gamma * tau_l``,
    which :meth:`step` adds to the gradients after the backward pass
    (cheaper than adding the linear term to the loss, and equal).
    ``batches`` are the minibatches the level smooths on in the current
    cycle (drawn when its tau correction is built, section 6.1.1).
    """

    def __init__(self, net: WidthNet, optimizer: Optimizer, lr: float, X: torch.Tensor, Y: torch.Tensor,
                 loss_fn: LossFn, parallel: DataParallel | None = None):
        self.net = net
        self.params = list(net.parameters())
        self.opt = optimizer
        self.lr = lr
        self.X, self.Y, self.loss_fn = X, Y, loss_fn
        self.parallel = parallel or DataParallel()
        self.shift: list[torch.Tensor] | None = None
        self.batches: list[torch.Tensor] = []
        self.pi_x: list[torch.Tensor] = []            # Pi x of the finer level at the last restriction
        self.pi_m: list[torch.Tensor] | None = None   # Pi m (SGD) or the restricted Adam velocity, for (36)
        self.loss_sum = torch.zeros((), device=self.params[0].device)
        self.loss_count = 0

    def step(self, idx: torch.Tensor) -> None:
        """One smoothing step: an optimizer step on the corrected objective over minibatch ``idx``."""
        self.opt.zero_grad(set_to_none=True)
        loss = self._backward(idx, idx.numel())
        self._sum_gradients()
        if self.shift is not None:
            torch._foreach_add_([p.grad for p in self.params], self.shift)
        self.opt.step()
        self.loss_sum += loss
        self.loss_count += 1

    def gradient(self, chunks: Sequence[torch.Tensor], corrected: bool = True) -> list[torch.Tensor]:
        """Gradient of the mean loss over all samples in ``chunks`` (plus ``shift`` if ``corrected``)."""
        self.net.zero_grad(set_to_none=True)
        total = sum(idx.numel() for idx in chunks)
        for idx in chunks:
            self._backward(idx, total)
        self._sum_gradients()
        grads = [p.grad for p in self.params]
        if corrected and self.shift is not None:
            return torch._foreach_add(grads, self.shift)
        return grads

    def _backward(self, idx: torch.Tensor, total: int) -> torch.Tensor:
        """Backward of this process's share of ``idx``, its mean loss weighted by share / ``total``."""
        share = self.parallel.share(idx)
        if share.numel() == 0:  # fewer samples than processes at the end of an epoch
            return torch.zeros((), device=self.loss_sum.device)
        loss = self.loss_fn(self.net(self.X[share]), self.Y[share])
        if share.numel() != total:
            loss = loss * (share.numel() / total)
        loss.backward()
        return loss.detach()

    def _sum_gradients(self) -> None:
        """Gradients summed over the processes (a no-op for one process)."""
        if self.parallel.active:
            for p in self.params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            self.parallel.sum_([p.grad for p in self.params])
