"""Error metrics in physical units, accumulated batch by batch.

* ``mse``    -- mean squared error over every output value of every sample
                (the paper's "L2 loss");
* ``linf``   -- maximum absolute error over every output value of every sample
                (the paper's "L-infinity loss");
* ``rel_l2`` -- relative L2 error of the whole split,
                ``||pred - true||_2 / ||true||_2`` over all values (Frobenius
                norms over samples and outputs; robust where single Q values
                are near zero);
* ``rel_l2_mean``, ``rel_l2_median``, ``rel_l2_p95`` -- the per-sample relative
                L2 error ``||pred_i - true_i||_2 / ||true_i||_2`` (the figure
                neural-operator papers and PDEBench report), its mean, median
                and 95th percentile over the samples (samples with
                ``true_i = 0`` left out);
* ``nrmse``  -- root mean squared error over the standard deviation of the
                true values of the split (1 for the constant prediction of
                their mean; for a scalar such as Q, ``sqrt(1 - R^2)``);
* ``corr``   -- Pearson correlation of predicted and true values (a control
                variate's variance falls by the factor ``1 - corr^2``).

Accumulation is on the device of the tensors (float64);
:meth:`ErrorAccumulator.result` is the only host synchronisation.
"""

from __future__ import annotations

import math

import numpy as np
import torch

KEYS = ("mse", "linf", "rel_l2", "rel_l2_mean", "rel_l2_median", "rel_l2_p95", "nrmse", "corr")


class ErrorAccumulator:
    def __init__(self) -> None:
        self.count = 0
        self._sums = None      # sum of err^2, true^2, true, pred, pred^2, pred*true
        self._max = None       # max abs error
        self._per_sample = []  # (err^2, true^2) summed over each sample's values

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
        sq, tsq = (err * err).sum(1), (true * true).sum(1)
        sums = torch.stack([sq.sum(), tsq.sum(), true.sum(), pred.sum(), (pred * pred).sum(), (pred * true).sum()])
        mx = err.abs().max()
        self._sums = sums if self._sums is None else self._sums + sums
        self._max = mx if self._max is None else torch.maximum(self._max, mx)
        self._per_sample.append(torch.stack([sq, tsq]))
        self.count += err.numel()

    def result(self) -> dict[str, float]:
        if self._sums is None or self.count == 0:
            return {k: math.nan for k in KEYS}
        sq, tsq, ts, ps, psq, pt = (float(v) for v in self._sums.cpu())
        mx = float(self._max.cpu()) if math.isfinite(sq) else math.nan   # the max of a NaN error may not be NaN
        n = self.count
        per = torch.cat(self._per_sample, dim=1)
        rel = (per[0] / per[1])[per[1] > 0].sqrt()
        q = [math.nan] * 3 if rel.numel() == 0 else \
            [float(v) for v in torch.quantile(rel, torch.tensor([0.5, 0.95], dtype=rel.dtype, device=rel.device))]
        true_var, pred_var = tsq / n - (ts / n) ** 2, psq / n - (ps / n) ** 2
        cov = pt / n - (ts / n) * (ps / n)
        return {"mse": sq / n, "linf": mx, "rel_l2": math.sqrt(sq / tsq) if tsq > 0 else math.nan,
                "rel_l2_mean": float(rel.mean()) if rel.numel() else math.nan,
                "rel_l2_median": q[0], "rel_l2_p95": q[1],
                "nrmse": math.sqrt(sq / n / true_var) if true_var > 0 else math.nan,
                "corr": cov / math.sqrt(true_var * pred_var) if true_var > 0 and pred_var > 0 else math.nan}


def errors(pred, true) -> dict[str, float]:
    """Metrics of one (pred, true) pair of arrays/tensors with a leading sample axis."""
    acc = ErrorAccumulator()
    acc.add(pred, true)
    return acc.result()


@torch.no_grad()
def split_errors(net: torch.nn.Module, split, codec, batch_size: int, limit: int | None = None) -> dict[str, dict]:
    """{target: {mse, linf, rel_l2, ... (:data:`KEYS`)}} of ``net`` on a :class:`surrogate.dataset.Split`,
    in physical units."""
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
