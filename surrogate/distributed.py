"""Joining a ``torchrun`` job: process group, device, and which process writes.

``torchrun --nproc-per-node N -m surrogate train ...`` starts N processes with
``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` set; :func:`init` joins them in a
process group (nccl on CUDA, gloo on CPU) and gives each its device
(``cuda:LOCAL_RANK``). Without those variables it is one process and does
nothing. The data-parallel arithmetic is in :mod:`surrogate.multilevel.parallel`.
"""

from __future__ import annotations

import os
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from params import ConfigError
from surrogate.runtime import pick_device

#: How long a collective waits for a process that stopped before the job fails.
TIMEOUT = timedelta(minutes=5)


def started_processes() -> int:
    """The number of processes ``torchrun`` started (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init(device_name: str, key: str = "train.device") -> torch.device:
    """Join the job's process group if there is one; returns this process's device."""
    device = pick_device(device_name, key)
    if started_processes() == 1:
        return device
    if not dist.is_available():
        raise ConfigError("torchrun: this torch build has no torch.distributed; run one process")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    available = dist.is_nccl_available() if backend == "nccl" else dist.is_gloo_available()
    if not available:
        raise ConfigError(f"torchrun: the {backend} backend that {key} {device.type!r} needs is not available in "
                          "this torch build")
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=TIMEOUT)
    return device


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """True on the process that writes files and shows progress (rank 0)."""
    return rank() == 0


def joined_processes() -> int:
    """Processes of the joined group (1 when none was joined)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def sum_over_processes(values: np.ndarray, device: torch.device) -> np.ndarray:
    """``values`` summed over the processes (each fills its own entries, zeros elsewhere)."""
    if joined_processes() == 1:
        return values
    t = torch.as_tensor(values, dtype=torch.float64, device=device if device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return t.cpu().numpy()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def finish() -> None:
    """Leave the process group (at the end of a command)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
