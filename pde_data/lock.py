"""One writer per output: an exclusive lock beside it, and the clean-up of what killed store writers left.

``pde-data generate`` holds :func:`writer_lock` on its store for the whole job
(under MPI, rank 0 holds it), ``surrogate train`` on its model directory, live
directory and metrics file. The lock is ``fcntl.flock`` on ``.NAME.lock`` in the
output's parent folder, which holds the holder's pid, host and start time; the
kernel drops it when the process dies, so a killed job never leaves a stale
lock. A clean release deletes the file; a killed job may leave the file, which
is harmless. The output's path is resolved through symbolic links first, so
two names of one output share one lock.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Self

from pde_data import store
from pde_data.store import StoreError


def lock_file(path: str | Path) -> Path:
    """The lock file of the output at ``path`` (after resolving symbolic links)."""
    path = Path(os.path.realpath(path))
    return path.parent / f".{path.name}.lock"


class BusyError(StoreError):
    """Another process holds the writer lock of an output."""


class WriterLock:
    """The held lock of one store; :meth:`release` (or the end of a ``with`` block) lets it go."""

    def __init__(self, path: Path, fd: int):
        self.path, self.file, self.fd = path, lock_file(path), fd

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            if os.path.samestat(os.fstat(self.fd), os.stat(self.file)):
                os.unlink(self.file)  # while still held: no one can lock this file after us
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _cannot(path: Path, err: OSError, what: str, detail: str = "") -> StoreError:
    return StoreError(f"--out {path}: cannot write the {what}: {detail}{err.strerror or err}")


def writer_lock(path: str | Path, what: str = "store") -> WriterLock:
    """Take the exclusive writer lock of the output at ``path`` (a ``what``: store, model directory ...) at
    once, or raise :class:`BusyError` naming its holder."""
    path = Path(path)
    file = lock_file(path)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _cannot(path, err, what) from err
    while True:
        try:
            fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise _cannot(path, err, what, f"lock file {file}: ") from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = os.read(fd, 512).decode(errors="replace").strip() or "a process that has not yet said who"
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise BusyError(f"{what} {path}: another writer holds it ({holder}; lock file {file}); "
                                "wait for that run to end or stop it") from None
            print(f"pde-data: warning: {file}: cannot lock ({err.strerror}); writing without a lock", file=sys.stderr)
            return WriterLock(path, os.open(os.devnull, os.O_RDONLY))
        try:  # a releasing holder may have deleted the file between our open and our lock
            if os.path.samestat(os.fstat(fd), os.stat(file)):
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    held = WriterLock(path, fd)
    since = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on host {socket.gethostname()} since {since}\n".encode())
    except OSError as err:  # a full disk
        held.release()
        raise _cannot(path, err, what, f"lock file {file}: ") from err
    return held


def clean_leftovers(path: str | Path) -> list[str]:
    """Remove what killed writers of the store at ``path`` left; returns one line per thing done.

    Call with the writer lock held. Temporary siblings ``.NAME.creating-*``
    (an unfinished new store) are deleted. If the store itself is missing and
    a ``.NAME.replaced-*`` sibling (the old store, being replaced with
    ``--overwrite`` when the job died) is there, the newest one is put back;
    the others are deleted. Zarr's ``*.partial`` files inside the store (chunk
    writes that never finished) are deleted.
    """
    path = Path(path)
    done: list[str] = []
    kinds = {kind: sorted(path.parent.glob(f".{glob.escape(path.name)}.{kind}-*"), key=_mtime)
             for kind in store.SIBLING_KINDS}
    replaced = kinds["replaced"]
    if replaced and not (path.exists() or path.is_symlink()):
        os.rename(replaced[-1], path)
        done.append(f"restored {path} from {replaced.pop().name} (a replacement that was interrupted)")
    for leftover in [*kinds["creating"], *replaced]:
        shutil.rmtree(leftover, ignore_errors=True)
        done.append(f"removed {leftover}")
    if path.is_dir():
        partial = [p for p in path.rglob("*.partial") if p.is_file()]
        for p in partial:
            p.unlink(missing_ok=True)
        if partial:
            writes = f"{len(partial)} unfinished chunk write{'s' * (len(partial) != 1)}"
            done.append(f"removed {writes} (*.partial) in {path}")
    return done


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0
