"""Greedy heavy edge matching of neurons or channels (section 5.5, Algorithm 1)."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["cosine_strength", "heavy_edge_matching"]


def cosine_strength(weight: torch.Tensor) -> torch.Tensor:
    """Strength-of-connection S_k: cosine similarity between the rows of W_k.

    For a convolution the rows are the flattened output-channel filters
    (section 7).  A zero row has zero similarity to every other row.
    """
    rows = weight.detach().reshape(weight.shape[0], -1).double()
    rows = rows / rows.norm(dim=1, keepdim=True).clamp_min(torch.finfo(rows.dtype).tiny)
    return rows @ rows.T


def heavy_edge_matching(strength: torch.Tensor, theta: float = 0.0,
                        order: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
    """Algorithm 1: greedy heavy edge matching on the strength matrix S_k.

    Neurons are visited in ``order`` (default 0, 1, ..., n-1); an unmatched
    neuron i is paired with the unmatched j != i of largest S_ij provided
    S_ij > theta, otherwise it stays a singleton.  Returns the aggregation
    zeta (a CPU LongTensor, zeta[i] = index of i's aggregate, numbered in
    the order the aggregates are formed) and the number of aggregates n_k^c.
    Every neuron is in exactly one aggregate of size 1 or 2.
    """
    s = strength.detach().to("cpu", torch.float64).numpy().copy()
    n = s.shape[0]
    np.fill_diagonal(s, -np.inf)
    taken = np.zeros(n)                    # 0 for unmatched, -inf for matched (added to a row)
    zeta = np.full(n, -1, dtype=np.int64)
    visit = range(n) if order is None else order.tolist()
    n_c = 0
    for i in visit:
        if zeta[i] >= 0:
            continue
        row = s[i] + taken
        j = int(np.argmax(row))
        zeta[i] = n_c
        taken[i] = -np.inf
        if row[j] > theta:
            zeta[j] = n_c
            taken[j] = -np.inf
        n_c += 1
    return torch.from_numpy(zeta), n_c
