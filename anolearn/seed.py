"""Seeds that make a rerun identical.

:func:`seed_everything` seeds Python, NumPy and torch and asks torch for deterministic
kernels, so a CPU rerun of any chapter gives the same numbers bit for bit. (On a GPU some
kernels have no deterministic version; torch then only warns, and numbers may differ in
the last digits.) Library functions that draw random numbers take a ``torch.Generator``
(see :func:`make_generator`) instead of relying on the global state.
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int = 0, deterministic: bool = True) -> None:
    """Seed ``random``, ``numpy`` and ``torch`` (all devices).

    Args:
        seed: the seed.
        deterministic: also request deterministic algorithms (warn-only where none exist).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        # cuBLAS needs this to be deterministic; harmless elsewhere.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator
