"""SSIM: structural similarity as a map, a score and a training loss.

Wang, Bovik, Sheikh and Simoncelli, "Image Quality Assessment: From Error Visibility to
Structural Similarity", IEEE TIP 13(4), 2004. Two images agree *structurally* at a pixel
when their local means, contrasts and correlation agree. With local statistics taken under
a Gaussian window ``w`` (11 x 11, sigma 1.5),

    mu_x = w * x,   sigma_x^2 = w * x^2 - mu_x^2,   sigma_xy = w * (x y) - mu_x mu_y,

    SSIM(x, y) = (2 mu_x mu_y + C1) (2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1) (sigma_x^2 + sigma_y^2 + C2)),

with ``C1 = (0.01 L)^2`` and ``C2 = (0.03 L)^2`` for the data range ``L`` (1 for images in
[0, 1]). Each colour channel is treated on its own; the score is the mean of the map over
pixels and channels, and the loss used by RIAD, SSM and DRAEM is ``1 - SSIM``.

Choices (the same as the RIAD/SSM/DRAEM training code): population (not sample) variances,
the window applied with **zero padding** so the map keeps the input size. Zero padding pulls
the statistics of border pixels towards black; ``padding="reflect"`` avoids that, and
``padding="valid"`` returns only the interior, which is what ``skimage.metrics.
structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``
averages (it crops a border of 5 pixels), and is how the tests check this file.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

PADDINGS = ("zeros", "reflect", "valid")


def gaussian_window(size: int = 11, sigma: float = 1.5, device=None, dtype=torch.float32) -> torch.Tensor:
    """Normalised 2-D Gaussian window ``(size, size)`` (outer product of two 1-D Gaussians).

    Args:
        size: odd side length in pixels.
        sigma: standard deviation in pixels.
    """
    if size % 2 != 1 or size < 1:
        raise ValueError(f"The SSIM window size must be a positive odd number, got {size}.")
    x = torch.arange(size, device=device, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g).to(dtype)


def ssim_map(x: torch.Tensor, y: torch.Tensor, window_size: int = 11, sigma: float = 1.5,
             data_range: float = 1.0, padding: str = "zeros") -> torch.Tensor:
    """Per-pixel, per-channel SSIM.

    Args:
        x, y: ``(B, C, H, W)`` float images on the same device, values in ``[0, data_range]``.
        window_size: side of the Gaussian window (odd).
        sigma: standard deviation of the window.
        data_range: ``L`` in the constants ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``.
        padding: ``"zeros"`` (as the RIAD/SSM/DRAEM code; keeps the size), ``"reflect"``
            (keeps the size, no dark border) or ``"valid"`` (interior only, ``H - window_size + 1``).

    Returns:
        ``(B, C, H, W)`` SSIM values in [-1, 1], 1 = identical (``(B, C, H', W')`` for ``"valid"``).

    Example::

        >>> x = torch.rand(1, 3, 32, 32)
        >>> bool(ssim_map(x, x).min() > 0.9999)
        True
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"ssim_map needs two (B, C, H, W) tensors of the same shape, got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}.")
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}.")
    c = x.shape[1]
    window = gaussian_window(window_size, sigma, device=x.device, dtype=x.dtype)
    window = window.expand(c, 1, window_size, window_size)  # one window per channel (grouped conv)
    r = window_size // 2

    def local_mean(t: torch.Tensor) -> torch.Tensor:
        if padding == "reflect":
            t = F.pad(t, (r, r, r, r), mode="reflect" if r < min(t.shape[-2:]) else "replicate")
            return F.conv2d(t, window, groups=c)
        return F.conv2d(t, window, padding=r if padding == "zeros" else 0, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = local_mean(x), local_mean(y)  # (B, C, H, W)
    sigma_x = local_mean(x * x) - mu_x**2
    sigma_y = local_mean(y * y) - mu_y**2
    sigma_xy = local_mean(x * y) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)
    denominator = (mu_x**2 + mu_y**2 + c1) * (sigma_x + sigma_y + c2)
    return numerator / denominator


def ssim(x: torch.Tensor, y: torch.Tensor, reduction: str = "mean", **kwargs) -> torch.Tensor:
    """Mean SSIM.

    Args:
        x, y: ``(B, C, H, W)`` images.
        reduction: ``"mean"`` (one number over the batch) or ``"none"`` (``(B,)``, one per image).
        **kwargs: passed to :func:`ssim_map` (``window_size``, ``sigma``, ``data_range``, ``padding``).
    """
    m = ssim_map(x, y, **kwargs)
    if reduction == "mean":
        return m.mean()
    if reduction == "none":
        return m.flatten(1).mean(1)
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}.")


def ssim_loss(x: torch.Tensor, y: torch.Tensor, **kwargs) -> torch.Tensor:
    """``1 - SSIM(x, y)``: 0 for identical images, the training loss of RIAD, SSM and DRAEM."""
    return 1.0 - ssim(x, y, **kwargs)


__all__ = ["gaussian_window", "ssim", "ssim_loss", "ssim_map"]
