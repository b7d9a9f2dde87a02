"""Model files, training checkpoints and :func:`load`.

A model file is ``torch.save`` of a plain dict::

    {"format": "pde-surrogate-model", "schema": 1,
     "state_dict": {name: tensor},          # the network's parameters (CPU)
     "meta": {...}}                         # JSON-able metadata (see below)

``meta`` holds ``problem``, ``layout`` (grid size, input channels, targets),
``grid`` (x, y coordinates), ``arch`` (what to build: kind, widths/channels),
``model_config`` (the models.<problem>.<kind> section it was trained with),
``normalization`` (training-split mean/std per channel and target),
``train`` (the training params), ``config`` (the full resolved run config),
``store`` (path, fingerprint, sample counts), ``role`` (``fine``/``aux``),
``selection`` (``best``/``final``), ``work_units`` and the validation
metrics at that point, and package versions.

Files are read with ``torch.load(weights_only=True)``: loading never runs
code from the file.  A crafted pickle, a truncated file, a file of another
schema or a wrong input shape give a :class:`ModelFileError` /
``ValueError`` that says what is wrong.
"""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from surrogate.codec import Codec
from surrogate.layout import Layout
from surrogate.outputs import model_file

#: First bytes of a file that ``torch.save`` writes (a zip archive), and of a pickle (protocol >= 2).
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTO = b"\x80"
MODEL_FORMAT = "pde-surrogate-model"
CHECKPOINT_FORMAT = "pde-surrogate-checkpoint"
SCHEMA = 1


class ModelFileError(ValueError):
    """A file that is not a usable surrogate model / checkpoint."""


# --------------------------------------------------------------------------
# raw file I/O
# --------------------------------------------------------------------------
def plain(obj: Any) -> Any:
    """``obj`` with only types a weights-only load accepts (dict, list, tuple, str, int, float,
    bool, None, tensors): ``torch.__version__`` is a ``str`` subclass, numpy scalars are not floats."""
    if isinstance(obj, torch.Tensor) or obj is None or type(obj) in (bool, int, float, str):
        return obj
    if isinstance(obj, Mapping):
        return {plain(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(plain(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    for t in (bool, int, float, str):
        if isinstance(obj, t):
            return t(obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot store an object of type {type(obj).__name__} in a surrogate file")


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` of :func:`plain` ``(obj)`` to ``path`` via a temporary file and ``os.replace``."""
    obj = plain(obj)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(obj, tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except RuntimeError as exc:  # torch's zip writer reports a failed write (a full disk) this way
        free = shutil.disk_usage(path.parent).free
        raise OSError(errno.ENOSPC if free < 2**20 else errno.EIO,
                      f"cannot write the file ({free} bytes free on its disk; torch: "
                      f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})",
                      str(path)) from None
    finally:
        if tmp.exists():
            tmp.unlink()


def safe_load(path: str | Path, what: str = "surrogate") -> Any:
    """``torch.load(weights_only=True)`` with errors that say what is wrong."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{what} file {str(path)!r} does not exist")
    if path.is_dir():
        raise ModelFileError(f"{str(path)!r} is a directory, not a {what} file")
    with open(path, "rb") as fh:
        head = fh.read(len(ZIP_MAGIC))
        if head != ZIP_MAGIC and head[:1] != PICKLE_PROTO:  # a legacy torch file is a pickle: the load refuses it
            raise ModelFileError(f"file {str(path)!r} is truncated or not a {what} file: it is not a PyTorch "
                                 "archive (the zip file that `surrogate train` writes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        first = next((ln for ln in lines if "Unsupported global" in ln or "WeightsUnpickler" in ln),
                     lines[0] if lines else type(exc).__name__)
        raise ModelFileError(
            f"file {str(path)!r} is not a {what} file: it holds objects that a weights-only load refuses "
            f"to build, so it was not loaded (nothing in it was executed). Detail: {first}") from None
    except Exception as exc:  # noqa: BLE001 - zip/EOF/key errors of a damaged file
        raise ModelFileError(f"file {str(path)!r} is truncated or not a {what} file "
                             f"({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''})"
                             ) from None


def _check_header(obj: Any, path: str | Path, fmt: str, what: str) -> None:
    if not isinstance(obj, dict) or "format" not in obj:
        raise ModelFileError(f"file {str(path)!r} is not a {what} file (no format header)")
    if obj["format"] != fmt:
        raise ModelFileError(f"file {str(path)!r} is a {obj['format']!r} file, not a {what} file ({fmt!r})")
    if obj.get("schema") != SCHEMA:
        raise ModelFileError(f"file {str(path)!r} has schema {obj.get('schema')!r}; this version of surrogate "
                             f"reads schema {SCHEMA} (re-train the model or use the matching package version)")


def save_model(path: str | Path, net: torch.nn.Module, meta: Mapping) -> None:
    state = {k: v.detach().to("cpu").clone() for k, v in net.state_dict().items()}
    atomic_save({"format": MODEL_FORMAT, "schema": SCHEMA, "state_dict": state, "meta": dict(meta)}, path)


def read_model_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    obj = safe_load(path, "surrogate model")
    _check_header(obj, path, MODEL_FORMAT, "surrogate model")
    state, meta = obj.get("state_dict"), obj.get("meta")
    if not isinstance(state, dict) or not isinstance(meta, dict):
        raise ModelFileError(f"file {str(path)!r} is damaged: missing state_dict or meta")
    for key in ("problem", "layout", "arch", "normalization"):
        if key not in meta:
            raise ModelFileError(f"file {str(path)!r} is damaged: its metadata has no {key!r}")
    return state, meta


def save_checkpoint(path: str | Path, payload: Mapping) -> None:
    atomic_save({"format": CHECKPOINT_FORMAT, "schema": SCHEMA, **payload}, path)


def read_checkpoint(path: str | Path) -> dict:
    obj = safe_load(path, "training checkpoint")
    _check_header(obj, path, CHECKPOINT_FORMAT, "training checkpoint")
    return obj


# --------------------------------------------------------------------------
# networks from metadata
# --------------------------------------------------------------------------
def build_net(arch: Mapping) -> torch.nn.Module:
    """Build the network described by ``arch`` (see :func:`arch_of`)."""
    from surrogate import models

    kind = arch.get("kind")
    if kind == "mlp":
        return models.MLP([int(w) for w in arch["widths"]])
    if kind == "cnn":
        return models.CNN(int(arch["in_channels"]), [tuple(int(v) for v in c) for c in arch["conv"]],
                          [int(w) for w in arch["fc"]], int(arch["out"]), tuple(int(v) for v in arch["in_size"]))
    if kind == "unet":
        from surrogate.unet import UNet

        return UNet(int(arch["in_channels"]), [int(c) for c in arch["channels"]], int(arch["n"]),
                    [tuple(int(v) for v in s) for s in arch["out_shapes"]], [int(w) for w in arch["head"]],
                    widths=[int(w) for w in arch["widths"]])
    if kind == "fno":
        from surrogate.fno import FNO

        return FNO(int(arch["in_channels"]), int(arch["n"]), [tuple(int(v) for v in s) for s in arch["out_shapes"]],
                   int(arch["modes"]), int(arch["width"]), int(arch["layers"]))
    raise ModelFileError(f"unknown network kind {kind!r} in model metadata (allowed: 'mlp', 'cnn', 'unet', 'fno')")


def make_net(model_cfg: Mapping, layout: Layout) -> torch.nn.Module:
    """The fine network for the ``models.<problem>.<kind>`` section (a dict with ``kind``) on ``layout``."""
    from params import ConfigError
    from surrogate import models

    key = f"models.{layout.problem}.{model_cfg.get('kind')}"
    args = (model_cfg, layout.in_shape, layout.out_dim, layout.target_shapes)
    try:
        with torch.device("meta"):
            _check_fits(key, sum(p.numel() for p in models.build_model(*args).parameters()))
        return models.build_model(*args)
    except ValueError as exc:
        raise ConfigError(f"{key} on the store's {layout.n} x {layout.n} grid: {exc}") from None


#: Copies of the parameters that training holds at once (weights, gradients, two Adam moments, the best
#: network, the coarse levels and momentum transfers of a hierarchy), for the memory check of :func:`make_net`.
TRAINING_COPIES = 8


def _check_fits(key: str, count: int) -> None:
    """A ConfigError naming ``key`` when ``count`` float32 parameters cannot be trained in this machine's memory."""
    from params import ConfigError
    from pde_data.heap import physical_memory

    need = count * 4 * TRAINING_COPIES
    have = physical_memory()
    if need > have:
        raise ConfigError(f"{key}: {count:.3g} parameters need about {need / 2**30:.0f} GiB to train "
                          f"({TRAINING_COPIES} float32 copies); this machine has {have / 2**30:.0f} GiB; "
                          "use fewer or narrower layers")


def arch_of(net: torch.nn.Module) -> dict:
    """JSON-able constructor arguments of an MLP/CNN/U-Net/FNO (fine or coarsened)."""
    from surrogate import models
    from surrogate.fno import FNO
    from surrogate.unet import UNet

    if isinstance(net, models.MLP):
        return {"kind": "mlp", "widths": [int(w) for w in net.widths]}
    if isinstance(net, models.CNN):
        return {"kind": "cnn", "in_channels": net.in_channels, "conv": [list(c) for c in net.conv],
                "fc": list(net.fc), "out": net.out, "in_size": list(net.in_size)}
    if isinstance(net, UNet):
        return {"kind": "unet", "in_channels": net.in_channels, "channels": list(net.channels), "n": net.n,
                "out_shapes": [list(s) for s in net.out_shapes], "head": list(net.head), "widths": list(net.widths)}
    if isinstance(net, FNO):
        return {"kind": "fno", "in_channels": net.in_channels, "n": net.n, "out_shapes": [list(s) for s in
                net.out_shapes], "modes": net.modes, "width": net.width, "layers": net.n_layers}
    raise TypeError(f"cannot describe network of type {type(net).__name__}")


# --------------------------------------------------------------------------
# loading a trained surrogate
# --------------------------------------------------------------------------
class Surrogate:
    """A trained network with its metadata; :meth:`predict` works in physical units."""

    def __init__(self, net: torch.nn.Module, meta: dict, device: torch.device | str = "cpu",
                 path: str | None = None):
        self.net = net.to(device).eval()
        self.meta = meta
        self.path = path
        self.device = torch.device(device)
        self.layout = Layout.from_dict(meta["layout"])
        self.codec = Codec(self.layout, meta["normalization"], flat=meta["arch"]["kind"] == "mlp")
        grid = meta.get("grid") or {}
        if "x" in grid and "y" in grid:
            self.codec.set_grid(np.asarray(grid["x"], dtype=np.float64), np.asarray(grid["y"], dtype=np.float64))

    # -- metadata shortcuts -------------------------------------------------------
    problem = property(lambda self: self.meta["problem"])
    grid = property(lambda self: self.meta.get("grid"))
    model_config = property(lambda self: self.meta.get("model_config"))
    arch = property(lambda self: self.meta["arch"])
    normalization = property(lambda self: self.meta["normalization"])
    train_params = property(lambda self: self.meta.get("train"))
    store = property(lambda self: self.meta.get("store"))
    store_fingerprint = property(lambda self: (self.meta.get("store") or {}).get("fingerprint"))
    targets = property(lambda self: tuple(self.layout.targets))

    def __repr__(self) -> str:
        return (f"Surrogate(problem={self.problem!r}, net={self.arch['kind']!r}, role={self.meta.get('role')!r}, "
                f"selection={self.meta.get('selection')!r}, targets={list(self.targets)}, n={self.layout.n})")

    def input_help(self) -> str:
        n, chans, first = self.layout.n, self.layout.channels, self.layout.inputs[0]
        if len(chans) > 1:
            return (f"{first} of shape ({n}, {n}) or (B, {n}, {n}), or the full input "
                    f"({', '.join(chans)}) of shape (B, {len(chans)}, {n}, {n})")
        return f"{first} of shape ({n}, {n}) or (B, {n}, {n}) (or (B, 1, {n}, {n}))"

    def _fields(self, x: Any) -> tuple[dict[str, np.ndarray], bool]:
        try:
            a = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"predict: input must be a numeric array; expected {self.input_help()}") from None
        n, c = self.layout.n, len(self.layout.channels)
        shape = a.shape
        single = False
        if a.ndim == 2 and shape == (n, n):
            a, single = a[None, None], True
        elif a.ndim == 3 and shape[1:] == (n, n):
            a = a[:, None]
        elif a.ndim == 4 and shape[1:] in ((c, n, n), (1, n, n)):
            pass
        else:
            raise ValueError(f"predict: wrong input shape {shape}; expected {self.input_help()}")
        if not np.all(np.isfinite(a)):
            raise ValueError("predict: the input contains NaN or inf values")
        fields = {self.layout.inputs[0]: a[:, 0]}
        if a.shape[1] == c and c > 1:
            fields.update({ch: a[:, i] for i, ch in enumerate(self.layout.channels)})
        return fields, single

    @torch.no_grad()
    def predict(self, x: Any, batch_size: int = 4096) -> np.ndarray | dict[str, np.ndarray]:
        """Physical-unit prediction for one sample or a batch.

        Poisson: ``kappa`` (n, n) -> ``u`` (n, n); batches (B, n, n) -> (B, n, n).
        Darcy: ``log_k`` (n, n) -> ``Q`` (float array of shape ()) or ``p`` (n, n);
        batches -> (B,) / (B, n, n).  With two targets (``Q+p``) a dict
        ``{"Q": ..., "p": ...}`` is returned. A tensor batch (B, n, n) of the
        first input stays on its device up to the network's output (the Monte
        Carlo fields drawn on the GPU).
        """
        if isinstance(x, torch.Tensor):
            vec = torch.cat([self.codec.decode_torch(self.net(self.codec.encode_torch(
                {self.layout.inputs[0]: x[a:a + batch_size].to(self.device)})).reshape(-1, self.layout.out_dim))
                for a in range(0, len(x), batch_size)])
            parts = self.codec.split_targets(vec.double().cpu().numpy())
            return parts[self.layout.targets[0]] if len(parts) == 1 else parts
        fields, single = self._fields(x)
        b = next(iter(fields.values())).shape[0]
        outs = []
        stack = self.codec.stack_inputs(fields)
        for a in range(0, b, batch_size):
            xb = self.codec.encode_stack(stack[a:a + batch_size], self.device)
            outs.append(self.codec.decode_vector(self.net(xb).reshape(xb.shape[0], -1)))
        vec = np.concatenate(outs) if outs else np.zeros((0, self.layout.out_dim))
        parts = self.codec.split_targets(vec)
        if single:
            parts = {k: v[0] for k, v in parts.items()}
        return parts[self.layout.targets[0]] if len(parts) == 1 else parts


def load(path: str | Path, device: str | torch.device = "cpu") -> Surrogate:
    """Load a surrogate saved by ``surrogate train`` or ``surrogate export`` (never executes code from a file).

    ``path`` is a model file (``best.pt``, ``final.pt``, ``aux_best.pt`` ...),
    a model directory (then its ``best.pt``) or an export directory
    (``model.safetensors`` + ``config.json``, :mod:`surrogate.export`).
    """
    from surrogate import export

    path = Path(path)
    if export.is_export(path):
        return export.load_export(path, device)
    path = model_file(path)
    state, meta = read_model_file(path)
    net = _net_for(state, meta["arch"], path)
    try:
        return Surrogate(net, meta, device, str(path))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ModelFileError(f"file {str(path)!r} is damaged: its metadata is incomplete or inconsistent "
                             f"({type(exc).__name__}: {exc})") from None


def _holds_its_values(tensor: torch.Tensor) -> bool:
    """True when ``tensor``'s storage (what the file holds) has room for every element it claims, laid out
    densely: a stride-0 or overlapping view of a small storage claims more than the file holds."""
    need = (tensor.storage_offset() + tensor.numel()) * tensor.element_size()
    return tensor.is_contiguous() and tensor.untyped_storage().nbytes() >= need


def _net_for(state: Mapping[str, Any], arch: Any, path: Path) -> torch.nn.Module:
    """The network ``arch`` describes, built only after its shapes match the tensors in the file.

    Every tensor must be stored in full (its file storage holds all its
    elements), so the sizes below are bounded by the file's size; then
    :func:`check_shapes` compares them with the architecture before any memory is used.
    """
    def refuse(why: str) -> ModelFileError:
        return ModelFileError(f"file {str(path)!r}: its weights do not fit the network its metadata describes "
                              f"({why})")

    if not isinstance(arch, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise refuse("malformed architecture or weights")
    for key, tensor in state.items():
        if not _holds_its_values(tensor):
            raise refuse(f"tensor {key!r} of shape {list(tensor.shape)} is not stored in full "
                         f"({tensor.untyped_storage().nbytes()} bytes in the file for "
                         f"{tensor.numel() * tensor.element_size()}): a crafted file")
    check_shapes({k: tuple(v.shape) for k, v in state.items()}, arch, refuse)
    net = build_net(arch)
    net.load_state_dict(state)
    return net


def check_shapes(stored: Mapping[str, tuple[int, ...]], arch: Any, refuse) -> None:
    """Raise ``refuse(why)`` unless the parameter names and shapes ``stored`` are those of the network ``arch``
    describes: the layer count, then every shape from a build on the ``meta`` device (which allocates nothing),
    so that a small file that claims a huge network is refused before any memory is used."""
    if not isinstance(arch, Mapping):
        raise refuse("malformed architecture")
    n_layers = len(arch.get("widths", ())) - 1 if arch.get("kind") == "mlp" else \
        len(arch.get("conv", ())) + len(arch.get("fc", ())) + 1 if arch.get("kind") == "cnn" else None
    if n_layers is not None and 2 * n_layers != len(stored):   # U-Net, FNO: the shape check below
        raise refuse(f"{n_layers} layers described, {len(stored)} tensors stored")
    try:
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in build_net(arch).state_dict().items()}
    except ModelFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - any malformed arch
        raise refuse(f"{type(exc).__name__}: {exc}") from None
    stored = {k: tuple(v) for k, v in stored.items()}
    if shapes != stored:
        bad = sorted(set(shapes.items()) ^ set(stored.items()))[0][0]
        raise refuse(f"parameter {bad!r}: described {shapes.get(bad)}, stored {stored.get(bad)}")
