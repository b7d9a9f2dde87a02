"""Matrix-free transfer operators between a network and its coarse version.

Per hidden layer k (section 5.4), an aggregation zeta of the n_k neurons (or
channels) into n_k^c aggregates of size 1 or 2 defines

* ``pi_k`` in R^{n_k^c x n_k}: averaging over each aggregate, eq. (32), or
  the row-norm-weighted ``(P_k^T D_k P_k)^{-1} P_k^T``, eq. (34);
* ``P_k`` in R^{n_k x n_k^c}: piecewise-constant interpolation, eq. (32), or
  ``D_k P_k``, eq. (34), with D_k the row norms of the weights W_{k-1}
  that produce layer k.

Both variants are ``(pi y)_c = c_c * sum_{i in A_c} y_i`` and
``(P y_c)_i = p_i * (y_c)_{zeta(i)}`` with ``p = 1, c = 1/|A_c|`` (32) or
``p = d, c = 1/sum_{i in A_c} d_i`` (34); either way pi_k P_k = I (17).
Input and output layers are never coarsened (pi_0 = P_0 = I, pi_out = P_out = I).

On the parameter list ``x = [W_0, b_0, W_1, b_1, ...]`` (``parameters()`` order):

* Pi x = [pi_{k+1} W_k P_k, pi_{k+1} b_k]            eq. (25)
* P x_c = [P_{k+1} W_k^c pi_k, P_{k+1} b_k^c]         eq. (27)
* R x = [P_{k+1}^T W_k pi_k^T, P_{k+1}^T b_k]         eq. (28), R = P^T

Every product is an ``index_add_`` (sum over aggregates) or ``index_select``
(copy from the aggregate) along one dimension of the weight, plus a
diagonal scaling; nothing is formed as a matrix, and everything stays on the
parameters' device.  A weight is viewed as (out, in_units, block) with
``block`` the columns per input unit: 1 for a fully connected layer,
kernel height x width for a convolution (section 7), and H x W of the last
convolution's output for the first fully connected layer of a CNN, so that
coarsening a channel acts on its whole column block.
"""

from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["Coarsening", "Transfer"]


def _along(v: torch.Tensor, ndim: int, dim: int) -> torch.Tensor:
    """``v`` shaped to broadcast along dimension ``dim`` of an ``ndim``-dimensional tensor."""
    shape = [1] * ndim
    shape[dim] = -1
    return v.view(shape)


class Coarsening:
    """pi_k and P_k of one hidden layer, eq. (32) (``d=None``) or eq. (34) (``d`` = row norms D_k)."""

    def __init__(self, zeta: torch.Tensor, n_c: int, d: torch.Tensor | None = None,
                 dtype: torch.dtype = torch.float32):
        self.zeta = zeta
        self.n = zeta.numel()
        self.n_c = int(n_c)
        self.p = None if d is None else d.to(dtype)          # None means p = 1
        weights = torch.ones(self.n, dtype=dtype, device=zeta.device) if d is None else self.p
        self.c = 1.0 / weights.new_zeros(self.n_c).index_add_(0, zeta, weights)

    def _sum(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        shape = list(x.shape)
        shape[dim] = self.n_c
        return x.new_zeros(shape).index_add_(dim, self.zeta, x)

    def pi(self, y: torch.Tensor, dim: int) -> torch.Tensor:
        """pi_k along ``dim``: weighted average over each aggregate."""
        return self._sum(y, dim).mul_(_along(self.c, y.dim(), dim))

    def pi_t(self, y_c: torch.Tensor, dim: int) -> torch.Tensor:
        """pi_k^T along ``dim``."""
        return (y_c * _along(self.c, y_c.dim(), dim)).index_select(dim, self.zeta)

    def P(self, y_c: torch.Tensor, dim: int) -> torch.Tensor:
        """P_k along ``dim``: copy each aggregate's value to its members (times p)."""
        y = y_c.index_select(dim, self.zeta)
        return y if self.p is None else y.mul_(_along(self.p, y.dim(), dim))

    def P_t(self, y: torch.Tensor, dim: int) -> torch.Tensor:
        """P_k^T along ``dim``: (p-weighted) sum over each aggregate."""
        return self._sum(y if self.p is None else y * _along(self.p, y.dim(), dim), dim)


class Transfer:
    """Pi (25), P (27) and R = P^T (28) between a network and its coarse version.

    ``coarsenings[k]`` couples the hidden layer after weight layer k; all
    three maps act on lists of tensors in ``parameters()`` order and return
    new tensors (no autograd graph).
    """

    def __init__(self, fine_shapes: Sequence[torch.Size], coarsenings: Sequence[Coarsening]):
        n_layers = len(fine_shapes) // 2
        if len(coarsenings) != n_layers - 1:
            raise ValueError(f"{n_layers} weight layers need {n_layers - 1} coarsenings, got {len(coarsenings)}")
        self.coarsenings = list(coarsenings)
        self.fine_shapes = [torch.Size(s) for s in fine_shapes]
        # (rows, cols) coarsening of each weight layer: rows = its outputs, cols = its inputs
        self.maps = [(coarsenings[k] if k < n_layers - 1 else None, coarsenings[k - 1] if k > 0 else None)
                     for k in range(n_layers)]
        self.coarse_shapes = []
        for (rows, cols), w_shape, b_shape in zip(self.maps, self.fine_shapes[0::2], self.fine_shapes[1::2]):
            out = rows.n_c if rows else w_shape[0]
            if cols is None:
                w_c = w_shape[1:]
            elif len(w_shape) == 2:          # fully connected: columns come in blocks per input unit
                w_c = (w_shape[1] // cols.n * cols.n_c,)
            else:                            # convolution: (out, in, kh, kw)
                w_c = (cols.n_c, *w_shape[2:])
            self.coarse_shapes += [torch.Size((out, *w_c)), torch.Size((out,) if rows else b_shape)]

    @property
    def hidden_sizes(self) -> list[int]:
        """Hidden widths n_k^c of the coarse network."""
        return [c.n_c for c in self.coarsenings]

    def _map(self, tensors, row_op, col_op, coarse_in: bool) -> list[torch.Tensor]:
        shapes = self.fine_shapes if coarse_in else self.coarse_shapes
        out = []
        with torch.no_grad():
            for k, (rows, cols) in enumerate(self.maps):
                w, b = tensors[2 * k], tensors[2 * k + 1]
                if cols is not None:
                    units = cols.n_c if coarse_in else cols.n
                    # (out, in_units, block); 2-D when block = 1 (index ops along dim 1 are faster)
                    block = w.numel() // (w.shape[0] * units)
                    w = w.reshape(w.shape[0], units, block) if block > 1 else w.reshape(w.shape[0], units)
                    w = col_op(cols, w, 1)
                if rows is not None:
                    w, b = row_op(rows, w, 0), row_op(rows, b, 0)
                if rows is None and cols is None:
                    w = w.clone()
                out += [w.reshape(shapes[2 * k]), b if rows is not None else b.clone()]
        return out

    def restrict(self, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """x_c = Pi x, eq. (25): W_k^c = pi_{k+1} W_k P_k, b_k^c = pi_{k+1} b_k."""
        return self._map(params, Coarsening.pi, Coarsening.P_t, coarse_in=False)

    def prolong(self, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """x = P x_c, eq. (27): W_k = P_{k+1} W_k^c pi_k, b_k = P_{k+1} b_k^c."""
        return self._map(params, Coarsening.P, Coarsening.pi_t, coarse_in=True)

    def restrict_grad(self, grads: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """R g = P^T g, eq. (28): P_{k+1}^T G_k pi_k^T, P_{k+1}^T g_{b,k}."""
        return self._map(grads, Coarsening.P_t, Coarsening.pi, coarse_in=False)
