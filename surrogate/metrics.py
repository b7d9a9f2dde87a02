"""Error metrics in physical units, accumulated batch by batch.

* ``mse``    -- mean squared error over every output value of every sample
                (the paper's "L2 loss");
* ``linf``   -- maximum absolute error over every output value of every sample
                (the paper's "L-infinity loss");
* ``rel_l2`` -- relative L2 error of the whole split,
                ``||pred - true||_2 / ||true||_2`` over all values (Frobenius
                norms over samples and outputs; robust where single Q values
                are near zero).

Accumulation is on the device of the tensors (one float64 reduction each);
:meth:`ErrorAccumulator.result` is the only host synchronisation.
"""

from __future__ import annotations

import math

import numpy as np
import torch


class ErrorAccumulator:
    def __init__(self) -> None:
        self.count = 0
        self._sq = None     # sum of squared errors
        self._max = None    # max abs error
        self._tsq = None    # sum of squared true values

    def add(self, pred, true) -> None:
        if not isinstance(pred, torch.Tensor):
            pred = torch.as_tensor(np.asarray(pred))
        if not isinstance(true, torch.Tensor):
            true = torch.as_tensor(np.asarray(true), device=pred.device)
        pred = pred.detach().to(torch.float64).reshape(pred.shape[0], -1) if pred.ndim else pred.reshape(1, 1)
        true = true.detach().to(pred.device, torch.float64).reshape(pred.shape)
        if pred.numel() == 0:
            return
        err = pred - true
        sq, mx, tsq = (err * err).sum(), err.abs().max(), (true * true).sum()
        if self._sq is None:
            self._sq, self._max, self._tsq = sq, mx, tsq
        else:
            self._sq = self._sq + sq
            self._max = torch.maximum(self._max, mx)
            self._tsq = self._tsq + tsq
        self.count += err.numel()

    def result(self) -> dict[str, float]:
        if self._sq is None or self.count == 0:
            return {"mse": math.nan, "linf": math.nan, "rel_l2": math.nan}
        sq, mx, tsq = (float(v) for v in torch.stack([self._sq, self._max, self._tsq]).cpu())
        # the max of a NaN error is NaN on most backends, but be explicit
        if not math.isfinite(sq):
            mx = math.nan
        rel = math.sqrt(sq / tsq) if tsq > 0 else math.nan
        return {"mse": sq / self.count, "linf": mx, "rel_l2": rel}


def errors(pred, true) -> dict[str, float]:
    """Metrics of one (pred, true) pair of arrays/tensors with a leading sample axis."""
    acc = ErrorAccumulator()
    acc.add(pred, true)
    return acc.result()


@torch.no_grad()
def split_errors(net: torch.nn.Module, split, codec, batch_size: int, limit: int | None = None) -> dict[str, dict]:
    """{target: {mse, linf, rel_l2}} of ``net`` on a :class:`surrogate.dataset.Split`, in physical units."""
    slices = codec.layout.target_slices()
    accs = {t: ErrorAccumulator() for t in slices}
    was_training = net.training
    net.eval()
    for xb, yb in split.batches(batch_size, limit):
        pred = codec.decode_torch(net(xb).reshape(yb.shape[0], -1).double())
        true = codec.decode_torch(yb.double())
        for t, sl in slices.items():
            accs[t].add(pred[:, sl], true[:, sl])
    net.train(was_training)
    return {t: a.result() for t, a in accs.items()}
