"""The outputs of one training run: one writer each, and replaced all together or not at all.

``surrogate train`` writes a model directory (OUT), the dvclive curves
(``--live-dir``, default OUT/dvclive) and optionally a metrics file. A run

1. takes the writer lock of each (:func:`pde_data.lock.writer_lock`, resolved
   through symbolic links), so a second run with the same outputs is refused
   with the holder's name instead of interleaving its files;
2. writes its curves into a hidden staging folder beside the live directory,
   and its final files under hidden staged names beside their final names;
3. at its end moves them all into place (:meth:`RunOutputs.commit`), so the
   curves always describe the model files next to them. A run that fails,
   diverges or fills the disk leaves the previous run's outputs as they were.

What a killed run left (staged files and folders) is removed when the next run
takes the locks.
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path
from typing import Self

from pde_data import lock
from pde_data.store import sibling

#: The networks a training run writes to its model directory: the best and the last fine network and the first
#: auxiliary network of a multilevel run (best and last).
NETWORK_FILES = {"fine": "best.pt", "aux": "aux_best.pt", "fine_final": "final.pt", "aux_final": "aux_final.pt"}
#: The file a model directory stands for wherever one network is read (load, export, Monte Carlo).
BEST = NETWORK_FILES["fine"]


def model_file(path: str | Path) -> Path:
    """``path`` if it is a model file, else the directory's :data:`BEST` network."""
    path = Path(path)
    return path / BEST if path.is_dir() else path


#: Marker in the hidden names of staged outputs.
STAGED = "staged"


class RunOutputs:
    """The model directory ``out``, the live directory ``live`` (None: no curves) and ``metrics`` (None: none)."""

    def __init__(self, out: Path, live: Path | None, metrics: Path | None):
        self.out, self.live, self.metrics = Path(out), live and Path(live), metrics and Path(metrics)
        self._held: list[lock.WriterLock] = []
        self._staged: list[tuple[Path, Path]] = []
        self.live_stage = None if self.live is None else sibling(self.live, STAGED)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.discard()
        self.release()

    def lock(self) -> None:
        """Take the writer lock of every output and remove what killed runs left; raises if one is held."""
        named = {self.out: "model directory", self.live: "live directory", self.metrics: "metrics file"}
        try:
            for path, what in named.items():
                if path is not None and not (path == self.live and path.is_relative_to(self.out)):
                    self._held.append(lock.writer_lock(path, what))
        except BaseException:
            self.release()
            raise
        places = [(self.out, f".*.{STAGED}-*"), (self.out, ".*.tmp-*")]  # .tmp-*: an interrupted atomic write
        places += [(p.parent, f".{glob.escape(p.name)}.{STAGED}-*") for p in (self.live, self.metrics) if p is not None]
        for folder, pattern in places:
            for leftover in folder.glob(pattern):
                _remove(leftover)

    def release(self) -> None:
        for held in self._held:
            held.release()
        self._held = []

    def stage(self, final: Path) -> Path:
        """A hidden name beside ``final`` to write it under; :meth:`commit` moves it to ``final``."""
        staged = sibling(Path(final), STAGED)
        self._staged.append((staged, Path(final)))
        return staged

    def commit(self) -> None:
        """Move every staged file, then the staged curves, into place (renames in the same folders)."""
        for staged, final in self._staged:
            os.replace(staged, final)
        self._staged = []
        if self.live_stage is not None and self.live_stage.exists():
            old = sibling(self.live, STAGED) if self.live.exists() else None
            if old is not None:
                os.rename(self.live, old)
            os.rename(self.live_stage, self.live)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        """Remove what this run staged and did not commit (its own files only)."""
        for staged, _ in self._staged:
            staged.unlink(missing_ok=True)
        self._staged = []
        if self.live_stage is not None:
            shutil.rmtree(self.live_stage, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
