"""Random draws shared by the forgers.

Every forger takes a ``torch.Generator`` on the images' device and draws all its random numbers
from it, so the same seed gives the same forgeries on every run (:func:`anolearn.make_generator`).
"""
from __future__ import annotations

import torch


def check_generator(generator: torch.Generator | None, device: torch.device | str) -> None:
    """Raise a clear error if ``generator`` lives on another device than the data."""
    if generator is not None and torch.device(generator.device).type != torch.device(device).type:
        raise ValueError(f"The generator is on {generator.device} but the images are on {device}; "
                         f"create it with anolearn.make_generator(seed, device={str(device)!r}).")


def uniform(low: float, high: float, shape: tuple[int, ...], generator: torch.Generator | None,
            device: torch.device | str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``shape`` numbers drawn uniformly from ``[low, high)``."""
    return torch.rand(shape, generator=generator, device=device, dtype=dtype).mul_(high - low).add_(low)


def coin(p: float, shape: tuple[int, ...], generator: torch.Generator | None,
         device: torch.device | str) -> torch.Tensor:
    """Bool tensor of ``shape``, each entry True with probability ``p``."""
    return torch.rand(shape, generator=generator, device=device) < p


__all__ = ["check_generator", "coin", "uniform"]
