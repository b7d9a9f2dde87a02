"""Resumable records of a multilevel run: one JSON line per finished batch, appended and flushed.

A records file starts with a header line ``{"records": KEY, "config": {...}}``
(KEY: a hash of everything that decides the samples); every other line is a
batch ``{"level", "rep", "start", "stop", "moments", "seconds", "parts"}``, a
setting frozen during the run (``{"beta": ...}``) or the set-up seconds of a
run (``{"setup_s": {...}}``, summed over the runs: a resumed run still counts
what its predecessors spent). Sample i of a level
depends on (seed, level, randomization, i) alone (:mod:`surrogate.mc.levels`),
so a killed run continues where its last whole line ends: a torn last line
is dropped, and the next batch of a level starts at the largest ``stop``
recorded for it. A file whose key differs is refused (its samples belong to
other parameters); by default the file name carries the key, so a changed
parameter starts a new file beside the old one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from surrogate.mc.errors import MCError
from surrogate.mc.mlmc import Moments


def key_of(config: dict) -> str:
    """Short sha256 of the JSON of ``config``."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Records:
    """The batches and frozen settings of one run, read from ``path`` and appended to it (None: in memory)."""

    def __init__(self, path: str | Path | None, config: dict):
        self.path = None if path is None else Path(path)
        self.key, self.config = key_of(config), config
        self.batches: list[dict] = []
        self.settings: dict[str, Any] = {}
        #: Set-up seconds (fields, FEM compilation, Sobol' engines) of every run that wrote here, by part.
        self.setup_s: dict[str, float] = {}
        if self.path is not None and self.path.exists():
            self._read()
        elif self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._append({"records": self.key, "config": config})
        #: True when the file held batches of an earlier run.
        self.resumed = bool(self.batches)

    def _read(self) -> None:
        lines = self.path.read_text().splitlines()
        try:
            head = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            head = {}
        if head.get("records") != self.key:
            raise MCError(f"records {self.path}: written by a run with other parameters (key "
                          f"{head.get('records')!r}, this run {self.key!r}); remove the file or choose another "
                          "--records path")
        whole = []
        for line in lines[1:]:
            try:
                whole.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a torn last line of a killed run
        for entry in whole:
            if "level" in entry:
                self.batches.append(entry)
            elif "setup_s" in entry:
                self._count_setup(entry["setup_s"])
            else:
                self.settings.update(entry)
        if len(whole) < len(lines) - 1:  # rewrite without the torn tail before appending
            self.path.write_text("\n".join(lines[:1 + len(whole)]) + "\n")

    def _append(self, entry: dict) -> None:
        if self.path is None:
            return
        with open(self.path, "a") as fh:
            fh.write(json.dumps(entry) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def set(self, **settings: Any) -> None:
        """Freeze settings (e.g. beta) for this and every resumed run."""
        self.settings.update(settings)
        self._append(settings)

    def add_setup(self, seconds: dict[str, float]) -> None:
        """Count (and record) the set-up seconds of this run."""
        if any(seconds.values()):
            self._count_setup(seconds)
            self._append({"setup_s": seconds})

    def _count_setup(self, seconds: dict[str, float]) -> None:
        for part, value in seconds.items():
            self.setup_s[part] = self.setup_s.get(part, 0.0) + float(value)

    def add(self, level: str, rep: int, start: int, stop: int, moments: Moments, seconds: float,
            parts: dict[str, float]) -> dict:
        entry = {"level": level, "rep": int(rep), "start": int(start), "stop": int(stop),
                 "moments": moments.to_dict(), "seconds": float(seconds), "parts": parts}
        self.batches.append(entry)
        self._append(entry)
        return entry
