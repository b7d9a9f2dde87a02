"""Learning-rate schedules over the work-unit budget: a factor on every level's rate."""

from __future__ import annotations

import math


def lr_factor(kind: str, progress: float, warmup: float = 0.0) -> float:
    """The factor at ``progress`` = work done / budget (in [0, 1]).

    ``constant``: 1; ``cosine``: 0.5 (1 + cos(pi progress)), from 1 to 0;
    ``warmup_cosine``: linear from 0 to 1 over the first ``warmup`` of the
    budget, then cosine from 1 to 0 over the rest.
    """
    progress = min(max(progress, 0.0), 1.0)
    if kind == "constant":
        return 1.0
    if kind == "warmup_cosine":
        if progress < warmup:
            return progress / warmup
        progress = (progress - warmup) / (1.0 - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))
