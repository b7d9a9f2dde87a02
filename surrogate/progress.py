"""Training progress for people and for DVC: a tqdm bar and dvclive curves against work units."""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def flatten(d: Mapping, prefix: str = "") -> dict[str, Any]:
    """``{"val": {"mse": 1}}`` -> ``{"val/mse": 1}``; list items become ``.../levelK``."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}/{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(flatten(v, key))
        elif isinstance(v, list):
            out.update({f"{key}/level{i}": x for i, x in enumerate(v)})
        else:
            out[key] = v
    return out


#: History keys that are not curves to draw.
NOT_CURVES = ("step", "elapsed_s")


class Progress:
    """dvclive (``live_dir``, None: off) + tqdm (``show``); :meth:`record` takes a history record.

    The dvclive ``step`` is the work-unit count rounded to an integer (kept
    strictly increasing), so ``dvc plots`` draws the curves against work
    units. A resumed run replays its history first, so the curves have no
    gaps and no duplicates.
    """

    def __init__(self, live_dir: Path | None, show: bool, budget: float, initial: float):
        from tqdm.auto import tqdm

        self.live = None
        if live_dir is not None:
            from dvclive import Live

            shutil.rmtree(live_dir, ignore_errors=True)  # a fresh staging folder (surrogate.outputs)
            self.live = Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=None)
        self.bar = tqdm(total=float(budget), initial=float(initial), unit="wu", disable=not show,
                        dynamic_ncols=True, desc="train", bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} wu "
                        "[{elapsed}<{remaining}{postfix}]")
        self.last_step = -1

    def record(self, rec: Mapping) -> None:
        if self.live is not None:
            self.live.step = self.last_step = max(self.last_step + 1, round(rec["work_units"]))
            for k, v in flatten(rec).items():
                if k not in NOT_CURVES and isinstance(v, int | float) and math.isfinite(v):
                    self.live.log_metric(k, float(v))
            self.live.next_step()
        post = {"train": rec.get("train_loss"), "val_mse": rec["val"].get("mse"),
                "aux_mse": rec.get("aux_val", {}).get("mse")}
        self.bar.set_postfix({k: f"{v:.3g}" for k, v in post.items() if v is not None}, refresh=False)

    def advance(self, work: float) -> None:
        self.bar.update(max(work - self.bar.n, 0.0))

    def close(self) -> None:
        self.bar.close()
        if self.live is not None:
            self.live.end()
