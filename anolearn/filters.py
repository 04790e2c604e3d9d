"""Smoothing filters for anomaly maps, batched and device-agnostic.

Most methods smooth their raw anomaly map before scoring: DRAEM takes the maximum of a
21 x 21 mean-filtered map, SSM blurs with a Gaussian of sigma 7, the nearest-neighbour
baseline with sigma 4. Smoothing removes isolated noisy pixels, so the image score (a
maximum) reflects a *region* that looks anomalous rather than a single pixel.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _as_bchw(maps: torch.Tensor) -> tuple[torch.Tensor, int]:
    if maps.dim() == 2:
        return maps[None, None], 2
    if maps.dim() == 3:
        return maps[:, None], 3
    if maps.dim() == 4:
        return maps, 4
    raise ValueError(f"Expected maps of shape (H, W), (B, H, W) or (B, C, H, W), got {tuple(maps.shape)}.")


def _restore(out: torch.Tensor, ndim: int) -> torch.Tensor:
    return out[0, 0] if ndim == 2 else out[:, 0] if ndim == 3 else out


def gaussian_kernel1d(sigma: float, truncate: float = 4.0, device=None, dtype=torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian of radius ``ceil(truncate * sigma)`` (as ``scipy.ndimage``)."""
    radius = max(1, int(math.ceil(truncate * sigma)))
    x = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_blur(maps: torch.Tensor, sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """Blur maps with a 2-D Gaussian (two separable 1-D passes, reflected borders).

    Args:
        maps: ``(H, W)``, ``(B, H, W)`` or ``(B, C, H, W)`` float.
        sigma: standard deviation in pixels; ``0`` returns the input unchanged.

    Returns:
        Tensor of the same shape.
    """
    if sigma <= 0:
        return maps
    x, ndim = _as_bchw(maps)
    b, c, h, w = x.shape
    kernel = gaussian_kernel1d(sigma, truncate, device=x.device, dtype=x.dtype)
    r = kernel.numel() // 2
    x = x.reshape(b * c, 1, h, w)
    # Reflect padding needs pad < size; fall back to replicate for tiny maps.
    mode = "reflect" if r < min(h, w) else "replicate"
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode=mode), kernel.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode=mode), kernel.view(1, 1, -1, 1))
    return _restore(x.reshape(b, c, h, w), ndim)


def mean_filter(maps: torch.Tensor, size: int) -> torch.Tensor:
    """Mean over ``size x size`` windows, same output size (zero padding counted, as DRAEM's
    ``avg_pool2d(map, size, stride=1, padding=size // 2)``). ``size`` must be odd."""
    if size % 2 != 1:
        raise ValueError(f"mean_filter needs an odd window size, got {size}.")
    x, ndim = _as_bchw(maps)
    out = F.avg_pool2d(x, size, stride=1, padding=size // 2, count_include_pad=True)
    return _restore(out, ndim)
