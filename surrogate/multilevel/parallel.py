"""Data parallelism for every level: each process takes a share of every global minibatch.

With ``P`` processes of a ``torch.distributed`` group, process ``r`` computes
the loss of its share ``idx[r::P]`` of a global minibatch ``idx`` of ``B``
samples, weighted by ``len(share) / B``, and the gradients are summed over
the processes (one all-reduce of a flat buffer). The sum is the gradient of
the mean loss over the whole minibatch, as one process would compute it, so
the optimizer steps, the work units (counted on ``B``) and the stream of
minibatches (the same on every process) are those of one process. HEM
matchings are computed on every process and rank 0's are broadcast, so
every process holds the same hierarchy.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist

__all__ = ["DataParallel"]


class DataParallel:
    """The processes of the default ``torch.distributed`` group (or one process when it is not initialised)."""

    def __init__(self) -> None:
        self.active = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        self.rank = dist.get_rank() if self.active else 0
        self.world = dist.get_world_size() if self.active else 1

    def share(self, idx: torch.Tensor) -> torch.Tensor:
        """This process's samples of the global minibatch ``idx``."""
        return idx[self.rank::self.world] if self.active else idx

    def sum_(self, tensors: Sequence[torch.Tensor]) -> None:
        """Sum ``tensors`` over the processes, in place (one all-reduce of a flat buffer)."""
        if not self.active or not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(flat)
        torch._foreach_copy_(list(tensors), [part.view_as(t) for part, t in
                                             zip(flat.split([t.numel() for t in tensors]), tensors)])

    def broadcast_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Rank 0's ``tensor`` on every process (in place)."""
        if self.active:
            dist.broadcast(tensor, src=0)
        return tensor
