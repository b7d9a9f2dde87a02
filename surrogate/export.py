"""Trained surrogates in the layout the field shares: ``model.safetensors``, ``config.json``, ``README.md``.

``surrogate export MODEL_DIR --out DIR`` writes, from a model directory of
``surrogate train`` (its ``best.pt``) or one model file:

- ``model.safetensors``: the network's parameters (the safetensors format: a
  JSON header of names, dtypes, shapes and offsets, then raw little-endian
  data; reading it runs no code, unlike a pickle);
- ``config.json``: the model's metadata (problem, architecture, layout,
  normalisation, grid, the run config, the training store's fingerprint),
  the training record (``train_summary.json``), the test metrics of
  ``surrogate evaluate`` (``--metrics``) and the sha256, names and shapes of
  the tensors;
- ``README.md``: a model card (:mod:`surrogate.card`).

The three files are written into a hidden folder beside DIR and renamed into
place, so an error leaves DIR as it was. :func:`load_export` (what
:func:`surrogate.load` calls for such a directory) reads JSON and safetensors
only: the weights' sha256 must be the config's, their names and shapes those
of the network the config describes (checked from the file's header before
any tensor is read or any network built), and a directory that also holds
pickle-based files (``*.pt``, ``*.bin``, ...) is refused.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import struct
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from pde_data import lock
from pde_data.store import sibling
from surrogate.io import ModelFileError, Surrogate, _net_for, build_net, check_shapes, read_model_file
from surrogate.outputs import BEST, model_file

EXPORT_FORMAT = "pde-surrogate-export"
EXPORT_SCHEMA = 1
WEIGHTS, CONFIG, CARD = "model.safetensors", "config.json", "README.md"
#: Keys of config.json besides the model file's metadata.
EXPORT_KEYS = ("format", "schema", "library", "weights", "training", "evaluation", "exported")
#: Suffixes of pickle-based model files, which an export never holds.
PICKLED = (".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt")
#: Largest safetensors header read (the format's own limit is 100 MB).
MAX_HEADER = 100 * 2**20


# --------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------
def export(model: str | Path, out: str | Path, metrics: str | Path | None = None, overwrite: bool = False,
           command: str | None = None) -> Path:
    """Export the model at ``model`` (a directory of ``surrogate train``: its ``best.pt``; or a model file) to
    the directory ``out``; ``metrics``: the ``surrogate evaluate`` output of that model (``--out`` JSON or its
    ``.meta.json``). ``out`` must be new or empty, or an earlier export with ``overwrite``. Returns ``out``."""
    from surrogate import card

    source, out = _model_file(Path(model)), Path(out)
    _check_out(out, overwrite)
    state, meta = read_model_file(source)
    Surrogate(_net_for(state, meta["arch"], source), meta)  # refuses a model file that would not load
    config = {"format": EXPORT_FORMAT, "schema": EXPORT_SCHEMA, "library": "pde-surrogate", **meta,
              "training": _training_record(source),
              "evaluation": None if metrics is None else evaluation_record(Path(metrics), meta),
              "exported": {"from": str(source), "sha256": _sha256(source), "command": command,
                           "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}}
    stage = sibling(out, "exporting")
    try:
        stage.mkdir(parents=True)
        tensors = {k: v.detach().contiguous() for k, v in state.items()}
        _save_safetensors(tensors, stage / WEIGHTS)
        config["weights"] = {"file": WEIGHTS, "sha256": _sha256(stage / WEIGHTS),
                             "tensors": {k: [list(v.shape), str(v.dtype).removeprefix("torch.")]
                                         for k, v in tensors.items()}}
        (stage / CONFIG).write_text(json.dumps(config, indent=1) + "\n")
        (stage / CARD).write_text(card.render(config))
        _move_into_place(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return out


def _model_file(model: Path) -> Path:
    """``model``'s ``best.pt`` (a directory) or ``model`` (a file); refuses one being written or without a model."""
    folder = model if model.is_dir() else model.parent
    holder = being_written(folder)
    if holder:
        raise ModelFileError(f"model directory {str(folder)!r} is still being written ({holder}); export it when "
                             "that run has ended")
    if not model.exists():
        raise ModelFileError(f"{str(model)!r} does not exist; export needs a model directory of `surrogate train` "
                             "or a model file")
    if model.is_dir() and not (model / BEST).is_file():
        raise ModelFileError(f"model directory {str(model)!r} has no {BEST} (train one with `surrogate train ... "
                             f"--out {model}`); nothing was written")
    return model_file(model)


def being_written(path: Path) -> str | None:
    """Who holds the writer lock of the output ``path`` (a training run, a store generation), or None."""
    file = lock.lock_file(path)
    try:
        fd = os.open(file, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except OSError:
        return os.read(fd, 512).decode(errors="replace").strip() or "a writer holds its lock"
    finally:
        os.close(fd)


def _check_out(out: Path, overwrite: bool) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ModelFileError(f"--out {out}: is not a directory; nothing was written")
    if not out.exists() or not any(out.iterdir()):
        return
    if not (out / CONFIG).is_file() or _format_of(out / CONFIG) != EXPORT_FORMAT:
        raise ModelFileError(f"--out {out}: holds other files (not an export of pde-surrogate); choose a new or "
                             "empty directory; nothing was written")
    if not overwrite:
        raise ModelFileError(f"--out {out}: holds an earlier export; pass --overwrite to replace it, or choose "
                             "another directory")


def _format_of(config: Path) -> Any:
    try:
        return json.loads(config.read_text()).get("format")
    except (OSError, ValueError, AttributeError):
        return None


def _move_into_place(stage: Path, out: Path) -> None:
    """Rename the finished ``stage`` to ``out`` (an earlier export there is replaced whole)."""
    if out.exists() and any(out.iterdir()):
        trash = sibling(out, "replaced")
        os.rename(out, trash)
        os.rename(stage, out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(stage, out)


def _save_safetensors(tensors: Mapping[str, torch.Tensor], path: Path) -> None:
    from safetensors.torch import save_file

    save_file(dict(tensors), str(path), metadata={"format": "pt", "library": "pde-surrogate"})


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            h.update(block)
    return h.hexdigest()


def _training_record(source: Path) -> dict | None:
    """``train_summary.json`` beside the model file (sizes, work, time, validation errors), if there is one."""
    path = source.parent / "train_summary.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def evaluation_record(path: Path, meta: Mapping) -> dict:
    """The test metrics of ``surrogate evaluate`` at ``path`` (its ``--out`` or ``.meta.json``), checked to be of
    the model ``meta`` describes (problem, targets, and the work units of its best network)."""
    full = path if path.name.endswith(".meta.json") else path.with_suffix(".meta.json")
    try:
        result = json.loads(full.read_text())
    except FileNotFoundError:
        raise ModelFileError(f"--metrics {path}: {full} does not exist (the .meta.json that `surrogate evaluate "
                             "--out FILE` writes beside FILE); nothing was written") from None
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"--metrics {path}: {full} is not readable JSON ({exc}); nothing was written") from None
    if not isinstance(result, dict):
        raise ModelFileError(f"--metrics {path}: {full} is not the output of `surrogate evaluate`; nothing was written")
    targets = list(meta["layout"].get("targets", []))
    mismatch = [] if isinstance(result.get("fine"), dict) else ["it has no test metrics of a fine network"]
    if result.get("problem") != meta["problem"] or result.get("targets") != targets:
        mismatch.append(f"problem {result.get('problem')!r} and targets {result.get('targets')}, not "
                        f"{meta['problem']!r} and {targets}")
    work = (result.get("work_units") or {}).get("fine")
    if work is not None and work != meta.get("work_units"):
        mismatch.append(f"its network was saved at {work} work units, this one at {meta.get('work_units')}")
    if mismatch:
        raise ModelFileError(f"--metrics {path}: evaluates another model ({'; '.join(mismatch)}); nothing was "
                             "written")
    keys = ("store", "same_store_as_training", "n_test", "targets", "metric_definitions", "fine")
    return {key: result.get(key) for key in keys} | {"file": str(full)}


# --------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------
def is_export(path: str | Path) -> bool:
    """True for an export directory (it holds ``config.json`` or ``model.safetensors``) or one of those files."""
    path = Path(path)
    if path.is_dir():
        return (path / CONFIG).exists() or (path / WEIGHTS).exists()
    return path.name in (CONFIG, WEIGHTS)


def load_export(path: str | Path, device: str | torch.device = "cpu") -> Surrogate:
    """The surrogate in the export directory ``path`` (or one of its files); refuses, in one line, a config
    that does not describe the weights, weights that are not safetensors, and pickle-based files beside them."""
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    if not folder.is_dir():
        raise ModelFileError(f"export {str(folder)!r} does not exist")
    pickled = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLED)
    if pickled:
        raise ModelFileError(f"export {str(folder)!r} also holds {', '.join(pickled)}: pickle-based files, which an "
                             f"export never holds; it was not loaded (load such a file by its own path, or remove "
                             f"it)")
    config = read_config(folder / CONFIG)
    weights = folder / WEIGHTS

    def refuse(why: str) -> ModelFileError:
        return ModelFileError(f"export {str(folder)!r}: {WEIGHTS} does not fit the network {CONFIG} describes "
                              f"({why}); nothing was loaded")

    shapes = safetensors_header(weights)
    if _sha256(weights) != config["weights"].get("sha256"):
        raise refuse(f"its sha256 is not the one {CONFIG} records: the weights or the config were changed")
    check_shapes(shapes, config["arch"], refuse)
    from safetensors.torch import load_file

    try:
        state = load_file(str(weights))
    except Exception as exc:  # noqa: BLE001 - safetensors' own checks (offsets, sizes, dtypes)
        raise refuse(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    net = build_net(config["arch"])
    net.load_state_dict(state)
    meta = {k: v for k, v in config.items() if k not in EXPORT_KEYS}
    try:
        return Surrogate(net, meta, device, str(weights))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ModelFileError(f"export {str(folder)!r}: {CONFIG} is incomplete or inconsistent "
                             f"({type(exc).__name__}: {exc}); nothing was loaded") from None


def read_config(path: Path) -> dict:
    """``config.json`` of an export, checked for its format, schema and the keys a load needs."""
    if not path.is_file():
        raise ModelFileError(f"export {str(path.parent)!r} has no {CONFIG}; an export holds {WEIGHTS}, {CONFIG} "
                             f"and {CARD} (written by `surrogate export`)")
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{str(path)!r} is not readable JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != EXPORT_FORMAT:
        raise ModelFileError(f"{str(path)!r} is not the config of a pde-surrogate export (format "
                             f"{config.get('format') if isinstance(config, dict) else None!r}, need {EXPORT_FORMAT!r})")
    if config.get("schema") != EXPORT_SCHEMA:
        raise ModelFileError(f"{str(path)!r} has schema {config.get('schema')!r}; this version of surrogate reads "
                             f"export schema {EXPORT_SCHEMA}")
    missing = [k for k in ("problem", "layout", "arch", "normalization", "weights") if not config.get(k)]
    if missing or not isinstance(config["weights"], dict):
        raise ModelFileError(f"{str(path)!r} is damaged: it has no {', '.join(missing) or 'weights record'}")
    return config


def safetensors_header(path: Path) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the tensors in the safetensors file ``path``, from its header alone; a file that is not
    safetensors (a pickle, a torch zip archive, a truncated file) is refused without reading further."""
    if not path.is_file():
        raise ModelFileError(f"export {str(path.parent)!r} has no {WEIGHTS}")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        body = fh.read(length) if 1 < length <= min(MAX_HEADER, size - 8) else b""
    pickled = head[:1] == b"\x80" and head[1:2] in b"\x02\x03\x04\x05" and head[2:3] not in (b"", b"\x00")
    kind = "a pickle" if pickled else \
        "a zip archive (torch.save)" if head[:4] == b"PK\x03\x04" else "not"
    if not body.startswith(b"{"):
        raise ModelFileError(f"{str(path)!r} is not a safetensors file ({kind} one by its first bytes); it was not "
                             "loaded (nothing in it was executed)" if kind != "not" else
                             f"{str(path)!r} is not a safetensors file (truncated or another format); it was not "
                             "loaded")
    try:
        header = json.loads(body)
        return {k: tuple(int(d) for d in v["shape"]) for k, v in header.items() if k != "__metadata__"}
    except (ValueError, TypeError, KeyError, AttributeError):
        raise ModelFileError(f"{str(path)!r} is not a safetensors file (its header is not the format's JSON); it "
                             "was not loaded") from None
