"""Run a list of independent jobs in this process or in a pool of processes, with a progress bar."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any


def guarded(fn: Callable[..., Any], key: str, *args: Any) -> tuple[str, Any, str | None]:
    """``(key, fn(*args), None)``, or ``(key, None, traceback)`` when it raises (reported, the study goes on)."""
    try:
        return key, fn(*args), None
    except Exception:  # noqa: BLE001 - the parent reports it
        return key, None, traceback.format_exc()


def run_pool(items: Sequence[Any], fn: Callable[[Any], tuple], jobs: int, on_done: Callable[..., None], *,
             desc: str, unit: str, name: Callable[[Any], str]) -> None:
    """``on_done(*fn(item))`` for every item, in ``jobs`` spawned processes when more than one
    (``fn`` must then be a module-level function); ``name(item)`` labels the bar while it runs."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(items), unit=unit, desc=desc, dynamic_ncols=True, file=sys.stderr)
    try:
        if jobs == 1:
            for item in items:
                bar.set_postfix_str(name(item), refresh=True)
                on_done(*fn(item))
                bar.update(1)
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as ex:
            for fut in as_completed([ex.submit(fn, item) for item in items]):
                on_done(*fut.result())
                bar.update(1)
    finally:
        bar.close()
