"""Seeds that make a rerun identical.

:func:`seed_everything` seeds Python, NumPy and torch and asks torch for deterministic
kernels, so a CPU rerun of any chapter gives the same numbers bit for bit. (On a GPU some
kernels have no deterministic version; torch then only warns, and numbers may differ in
the last digits.) Library functions that draw random numbers take a ``torch.Generator``
(see :func:`make_generator`) instead of relying on the global state.

**One seed per run.** A result is a (method, category) *cell*: one method trained on one
category. :func:`run_seed` derives the seed of a cell from the experiment's seed (the
profile's ``seed``), the method's name and the category's name, with a fixed hash (CRC-32).
So the seed of a cell is the same whoever trains it, alone or inside a grid, in any order,
in any process, on any machine: the command line (``python -m anolearn train`` and
``benchmark``), a benchmark script or a chapter. And two cells never share their random
draws by accident (with one seed for all, every category would start from the same
weights and see the same sequence of forgeries). A chapter trains a cell exactly as the
command line does with::

    seed = run_seed(profile.seed, "riad", category)
    seed_everything(seed)
    model = RIAD(**profile.schedule("riad"), seed=seed)

Equal seeds give equal numbers only with equal code, data and arithmetic: on a CPU the
number of torch threads changes the order of floating-point sums (compare runs with the
same ``OMP_NUM_THREADS``), and a GPU, or another CPU type, may round differently.
"""
from __future__ import annotations

import os
import random
import zlib

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


#: Seeds are kept below 2**31: every random number generator (Python, NumPy, torch) takes them.
SEED_RANGE = 2**31


def run_seed(seed: int, method: str, category: str) -> int:
    """The seed of one (method, category) run, derived from the experiment's ``seed``.

    ``CRC-32("<seed>/<method>/<category>") mod 2**31``: stable across processes, Python
    versions and machines (unlike Python's ``hash``, which is salted per process), different
    for every method and category, and a new set of seeds for every ``seed``.

    Args:
        seed: the experiment's seed (``profile.seed``).
        method: the registered name of the method, e.g. ``"riad"``.
        category: the category's name, e.g. ``"hexnut"``.

    Example::

        >>> run_seed(0, "riad", "hexnut") == run_seed(0, "riad", "hexnut")
        True
        >>> run_seed(0, "riad", "hexnut") != run_seed(0, "riad", "washer")
        True
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    for what, name in (("method", method), ("category", category)):
        if not isinstance(name, str) or not name:
            raise ValueError(f"run_seed needs the {what}'s name (a non-empty string), got {name!r}.")
    return zlib.crc32(f"{seed}/{method}/{category}".encode()) % SEED_RANGE
