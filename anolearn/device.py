"""Pick the compute device: CUDA, then Apple's MPS, then the CPU.

Every chapter prints :func:`describe_device` so a reader knows what produced the numbers.
``ANOLEARN_DEVICE=cpu`` (or ``cuda:1``, ``mps``) forces a device.
"""
from __future__ import annotations

import os
import platform

import torch

ENV_VAR = "ANOLEARN_DEVICE"


def get_device(prefer: str | None = None) -> torch.device:
    """Return the best available device, or the one asked for.

    Args:
        prefer: ``"cuda"``, ``"mps"``, ``"cpu"`` or ``None`` (read ``ANOLEARN_DEVICE``, else auto).

    Raises:
        RuntimeError: if the requested device is not available on this machine.
    """
    wanted = prefer or os.environ.get(ENV_VAR)
    if wanted:
        device = torch.device(wanted)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"Device {wanted!r} was requested but CUDA is not available here.")
        if device.type == "mps" and not _mps_available():
            raise RuntimeError(f"Device {wanted!r} was requested but MPS is not available here.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def describe_device(device: torch.device | None = None) -> str:
    """One line naming the device, e.g. ``'cpu (2 threads, x86_64), torch 2.14.1'``."""
    device = device or get_device()
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        what = f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    elif device.type == "mps":
        what = "mps (Apple GPU)"
    else:
        what = f"cpu ({torch.get_num_threads()} threads, {platform.machine()})"
    return f"{what}, torch {torch.__version__}"
