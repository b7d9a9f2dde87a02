"""What every edition's command does around its runs: where results go, the stores, the study lock.

Results live outside the package, ``results/study/<edition>/`` (run
records, Optuna journals, ``results.json``); the stores that the editions
share are made in ``results/study/data`` with ``pde-data generate``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results" / "study"
STORES = RESULTS / "data"


def edition_dir(edition: str) -> Path:
    """``results/study/<edition>``: an edition's default ``--out``."""
    return RESULTS / edition


def edition_paths(edition: str, quick_dir: str, *, out: str | None, docs: str | None, data: str | None,
                  quick: bool, data_under_out: bool = False) -> tuple[Path, Path, Path]:
    """An edition's ``--out``, ``--docs`` and ``--data`` with their defaults: the edition's results folder,
    ``docs/`` and the shared stores; a quick run puts all three in ``quick_dir`` under the temporary folder
    (``data_under_out``: the stores go under a given ``--out`` too)."""
    out_dir = Path(out) if out else (Path(tempfile.gettempdir()) / quick_dir if quick else edition_dir(edition))
    docs_dir = Path(docs) if docs else (out_dir / "docs" if quick else ROOT / "docs")
    data_dir = Path(data) if data else (out_dir / "data" if quick or (data_under_out and out) else STORES)
    return out_dir, docs_dir, data_dir


def relative(path: Path) -> Path:
    """``path`` relative to the repository when it is inside it (for the commands a report prints)."""
    try:
        return path.resolve().relative_to(ROOT)
    except ValueError:
        return path


def command_line(prog: str, argv: list[str]) -> str:
    """The command as a user would type it again."""
    return " ".join([prog] + [shlex.quote(a) for a in argv])


def ensure_store(problem: str, path: Path, n: int, seed: int, params: str | None) -> None:
    """Generate (or finish) a store with `pde-data generate` unless it is complete."""
    from surrogate.dataset import open_store

    if path.exists():
        try:
            st = open_store(path, problem)
            if st.n_total == n and st.n_done == n:
                return
        except Exception:  # noqa: BLE001 - let pde-data decide (it resumes or refuses with a message)
            pass
    cmd = [sys.executable, "-m", "pde_data.cli", "generate", problem, "--out", str(path), "--n", str(n),
           "--seed", str(seed), "--no-progress"]
    if params:
        cmd += ["--params", str(params)]
    print(f"study: generating {n} {problem} samples -> {path}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"study: {problem} store done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)


def store_fingerprint(path: Path) -> str | None:
    """The store's fingerprint, None when it is missing or incomplete (it has no current runs then)."""
    from surrogate.dataset import open_store

    try:
        st = open_store(path)
        return st.fingerprint() if st.n_done == st.n_total else None
    except Exception:  # noqa: BLE001 - a missing or unfinished store has no runs to read
        return None


def hold_lock(out: Path) -> IO:
    """Hold an exclusive lock on ``OUT/study.lock`` for the life of the process (one study per directory);
    keep the returned file open."""
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    fh = open(out / "study.lock", "w")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise SystemExit(f"study: another study process is running in {out} (lock {out / 'study.lock'}); "
                         "wait for it or use another --out") from None
    fh.write(str(os.getpid()))
    fh.flush()
    return fh
