"""The interface a training run drives, as :class:`torch.optim.Optimizer` is for optimizers.

:class:`~surrogate.multilevel.FASTrainer` (one level or FAS cycles) and
:class:`~surrogate.multilevel.NestedIteration` (growth in width, then a
``FASTrainer``) implement it; ``surrogate.train`` and ``surrogate.monitor``
use nothing else.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from .hierarchy import Hierarchy

__all__ = ["Trainer"]


@runtime_checkable
class Trainer(Protocol):
    """A trainer of ``hier.nets[0]`` budgeted in work units."""

    @property
    def hier(self) -> Hierarchy:
        """The hierarchy being trained; ``hier.nets[0]`` is the network now trained (coarse while growing)."""

    @property
    def growing(self) -> bool:
        """True while ``hier.nets[0]`` is still a coarse net of a growth in width (never kept as the best)."""

    @property
    def level(self) -> int:
        """The width level now trained: 0 is the fine network."""

    @property
    def work(self) -> dict[str, float]:
        """Cumulative fine-net work units, ``{"flops": ..., "paper": ...}``."""

    def cycle(self) -> Any:
        """One step or cycle."""

    def scale_lr(self, factor: float) -> None:
        """Every rate times ``factor`` (a schedule)."""

    def level_losses(self) -> list[float]:
        """Mean training loss per level since the last call; raises on a NaN or infinite one."""

    def state_dict(self) -> dict[str, Any]:
        """Everything for an exact resume (``torch.load(weights_only=True)``-safe)."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
