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
* Pi^T x_c = [pi_{k+1}^T W_k^c P_k^T, pi_{k+1}^T b_k^c]   a gradient carried from coarse to fine

Every product is an ``index_add_`` (sum over aggregates) or ``index_select``
(copy from the aggregate) along one dimension of the weight, plus a
diagonal scaling; nothing is formed as a matrix, and everything stays on the
parameters' device.  A weight is viewed as (out, in_units, block) with
``block`` the columns per input unit: 1 for a fully connected layer,
kernel height x width for a convolution (section 7), and H x W of the last
convolution's output for the first fully connected layer of a CNN, so that
coarsening a channel acts on its whole column block.

Which hidden space a weight's rows and columns belong to is its
:class:`surrogate.spaces.Role`: layer k of a chain (rows k, columns k-1), or
for a U-Net a decoder convolution reading [upsampled, skip] (column blocks
of two spaces) and a transposed convolution (rows along dimension 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..spaces import Role, chain_roles

__all__ = ["Coarsening", "Role", "Transfer", "chain_roles"]


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

    ``coarsenings[s]`` couples hidden space s; ``roles`` (default: a chain,
    :func:`chain_roles`, where space k follows weight layer k) say which
    spaces each parameter's rows and columns belong to.  A space read by
    several layers (a U-Net's skip connection) is coarsened alike in all.
    All three maps act on lists of tensors in ``parameters()`` order and
    return new tensors (no autograd graph).
    """

    def __init__(self, fine_shapes: Sequence[torch.Size], coarsenings: Sequence[Coarsening],
                 roles: Sequence[Role] | None = None):
        self.coarsenings = list(coarsenings)
        self.fine_shapes = [torch.Size(s) for s in fine_shapes]
        if roles is None:
            if len(coarsenings) != len(fine_shapes) // 2 - 1:
                raise ValueError(f"{len(fine_shapes) // 2} weight layers need {len(fine_shapes) // 2 - 1} "
                                 f"coarsenings, got {len(coarsenings)}")
            roles = chain_roles(len(fine_shapes) // 2)
        if len(roles) != len(self.fine_shapes):
            raise ValueError(f"{len(self.fine_shapes)} parameters need as many roles, got {len(roles)}")
        self.roles = list(roles)
        self.coarse_shapes = [self._coarse_shape(s, r) for s, r in zip(self.fine_shapes, self.roles)]

    def _coarse_shape(self, shape: torch.Size, role: Role) -> torch.Size:
        dims = list(shape)
        row_dim, col_dim = (1, 0) if role.transposed else (0, 1)
        if role.rows is not None:
            dims[row_dim] = self.coarsenings[role.rows].n_c
        if role.cols and role.cols != (None,):
            units = sum(self.coarsenings[s].n for s in role.cols)
            block = dims[col_dim] // units   # a fully connected layer after a flatten: columns per channel
            dims[col_dim] = block * sum(self.coarsenings[s].n_c for s in role.cols)
        return torch.Size(dims)

    @property
    def hidden_sizes(self) -> list[int]:
        """Hidden widths n_k^c of the coarse network."""
        return [c.n_c for c in self.coarsenings]

    def _map(self, tensors, row_op, col_op, coarse_in: bool) -> list[torch.Tensor]:
        shapes = self.fine_shapes if coarse_in else self.coarse_shapes
        with torch.no_grad():
            return [self._map_one(t, role, shape, row_op, col_op, coarse_in)
                    for t, role, shape in zip(tensors, self.roles, shapes)]

    def _map_one(self, t, role: Role, shape, row_op, col_op, coarse_in: bool) -> torch.Tensor:
        coarse_cols = bool(role.cols) and role.cols != (None,)
        if role.rows is None and not coarse_cols:
            return t.clone()
        w = t.transpose(0, 1) if role.transposed else t
        if coarse_cols:
            blocks = [self.coarsenings[s] for s in role.cols]
            units = [c.n_c if coarse_in else c.n for c in blocks]
            # (out, in_units, block); 2-D when block = 1 (index ops along dim 1 are faster)
            block = w.numel() // (w.shape[0] * sum(units))
            w = w.reshape(w.shape[0], sum(units), block) if block > 1 else w.reshape(w.shape[0], sum(units))
            parts = [col_op(c, part, 1) for c, part in zip(blocks, w.split(units, dim=1))]
            w = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        if role.rows is not None:
            w = row_op(self.coarsenings[role.rows], w, 0)
        if role.transposed:
            return w.reshape(shape[1], shape[0], *shape[2:]).transpose(0, 1).contiguous()
        return w.reshape(shape)

    def restrict(self, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """x_c = Pi x, eq. (25): W_k^c = pi_{k+1} W_k P_k, b_k^c = pi_{k+1} b_k."""
        return self._map(params, Coarsening.pi, Coarsening.P_t, coarse_in=False)

    def prolong(self, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """x = P x_c, eq. (27): W_k = P_{k+1} W_k^c pi_k, b_k = P_{k+1} b_k^c."""
        return self._map(params, Coarsening.P, Coarsening.pi_t, coarse_in=True)

    def restrict_grad(self, grads: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """R g = P^T g, eq. (28): P_{k+1}^T G_k pi_k^T, P_{k+1}^T g_{b,k}."""
        return self._map(grads, Coarsening.P_t, Coarsening.pi, coarse_in=False)

    def prolong_grad(self, grads: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Pi^T g_c: pi_{k+1}^T G_k^c P_k^T, pi_{k+1}^T g_{b,k}^c.

        The gradient of the fine network at x = P x_c where every aggregate's
        units are duplicates (eq. (32)): then g = Pi^T g_c, and R Pi^T = (Pi P)^T = I
        (eq. (17)), so restricting it gives g_c back. What carries gradient
        averages (momentum, Adam's moments) across a growth step.
        """
        return self._map(grads, Coarsening.pi_t, Coarsening.P, coarse_in=True)
