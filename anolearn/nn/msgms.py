"""MS-GMS: multi-scale gradient magnitude similarity, the loss and anomaly map of RIAD and SSM.

Xue, Zhang, Mou and Bovik, "Gradient Magnitude Similarity Deviation", IEEE TIP 23(2), 2014,
used at several scales by RIAD (Zavrtanik et al., Pattern Recognition 2021) and SSM (Huang et
al., IEEE TMM 2023). An inpainted image may be a little blurry or shifted in brightness and
still be a perfectly normal reconstruction; what it must not do is invent or lose *edges*.
GMS compares edge strengths. For an image ``I`` (grey = the plain mean over the colour
channels, :func:`anolearn.imageops.channel_mean`, not the luma; then a 3 x 3 median filter
against pixel noise), the gradient magnitude with the Prewitt filters ``h_x`` (three rows
``[-1, 0, 1]``, divided by 3) and ``h_y`` (rows ``[1, 1, 1]``, ``[0, 0, 0]``,
``[-1, -1, -1]``, divided by 3) is

    g_I = sqrt((h_x * I)^2 + (h_y * I)^2 + eps),

and the similarity of an image ``I`` and its reconstruction ``I_r`` at each pixel is

    GMS(I, I_r) = (2 g_I g_{I_r} + c) / (g_I^2 + g_{I_r}^2 + c),        c = 0.0026,

which is 1 where the edge strengths agree and falls towards 0 where one image has an edge
the other lacks. MS-GMS repeats this on the images average-pooled by 2, 4 and 8 (4 scales):

    L_MSGMS = (1/4) sum_s mean(1 - GMS_s),          A_MSGMS = (1/4) sum_s up(1 - GMS_s),

where ``up`` resizes a scale's map bilinearly to the input size. ``A`` is the anomaly map
(0 = perfect reconstruction). The official SSM code returns ``(1 - sum_s up(GMS_s)) / 4``,
which is ``A - 0.75``: the same ranking, shifted (see :mod:`anolearn.methods.ssm`).

Constants (``c = 0.0026``, Prewitt / 3, median 3 x 3, ``eps`` = machine epsilon of a
double, 4 scales) are those of the RIAD/SSM code. **Border handling** is our change: the
code median-filters with zero padding (kornia's ``MedianBlur``), so the outermost pixels
are pulled towards black, and applies Prewitt without padding, so each scale's map is 2
pixels smaller and is *stretched* back to full size, which misaligns it by up to a pixel.
By default we pad by repeating the edge pixels ("replicate") in both filters, so every map
has the input's size and is aligned with it; ``faithful=True`` reproduces the code.
"""
from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

from ..imageops import channel_mean

GMS_C = 0.0026
EPS = sys.float_info.epsilon  # 2.2e-16, inside the square root (keeps its gradient finite)
N_SCALES = 4


def _prewitt_kernels(device, dtype) -> torch.Tensor:
    hx = torch.tensor([[-1.0, 0.0, 1.0]] * 3, device=device, dtype=dtype) / 3
    hy = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -1.0, -1.0]], device=device, dtype=dtype) / 3
    return torch.stack([hx, hy])[:, None]  # (2, 1, 3, 3)


def median_filter3(gray: torch.Tensor, padding: str = "replicate") -> torch.Tensor:
    """3 x 3 median filter of ``(B, 1, H, W)`` maps, same size.

    Args:
        gray: ``(B, 1, H, W)``.
        padding: ``"replicate"`` (edge pixels repeated; our default) or ``"zeros"`` (kornia's
            ``MedianBlur``, as the official code: border medians are biased towards 0).
    """
    if padding not in ("replicate", "zeros"):
        raise ValueError(f"padding must be 'replicate' or 'zeros', got {padding!r}.")
    b, _, h, w = gray.shape
    padded = F.pad(gray, (1, 1, 1, 1), mode="replicate" if padding == "replicate" else "constant")
    patches = F.unfold(padded, 3)  # (B, 9, H * W): the 9 neighbours of every pixel
    return patches.median(dim=1).values.view(b, 1, h, w)


def gradient_magnitude(gray: torch.Tensor, padding: str = "replicate", eps: float = EPS) -> torch.Tensor:
    """Prewitt gradient magnitude ``sqrt(gx^2 + gy^2 + eps)`` of ``(B, 1, H, W)`` maps.

    Args:
        gray: ``(B, 1, H, W)``.
        padding: ``"replicate"`` (same size) or ``"valid"`` (no padding, ``(H - 2, W - 2)``, as the code).
        eps: added under the square root.
    """
    if padding not in ("replicate", "valid"):
        raise ValueError(f"padding must be 'replicate' or 'valid', got {padding!r}.")
    if padding == "replicate":
        gray = F.pad(gray, (1, 1, 1, 1), mode="replicate")
    g = F.conv2d(gray, _prewitt_kernels(gray.device, gray.dtype))  # (B, 2, H, W): gx, gy
    return torch.sqrt((g * g).sum(1, keepdim=True) + eps)


def gms_map(x: torch.Tensor, y: torch.Tensor, c: float = GMS_C, faithful: bool = False) -> torch.Tensor:
    """Gradient magnitude similarity of two image batches at one scale.

    Args:
        x, y: ``(B, C, H, W)`` images (``C`` = 1 or 3), e.g. an image and its reconstruction.
        c: stabilising constant (0.0026 for images in [0, 1]).
        faithful: official border handling (zero-padded median, unpadded Prewitt).

    Returns:
        ``(B, 1, H, W)`` in (0, 1], 1 = same edge strength (``(B, 1, H - 2, W - 2)`` if faithful).
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"gms_map needs two (B, C, H, W) tensors of the same shape, got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}.")
    median_pad, grad_pad = ("zeros", "valid") if faithful else ("replicate", "replicate")
    g_x = gradient_magnitude(median_filter3(channel_mean(x), median_pad), grad_pad)
    g_y = gradient_magnitude(median_filter3(channel_mean(y), median_pad), grad_pad)
    return (2 * g_x * g_y + c) / (g_x**2 + g_y**2 + c)


def _pyramid(x: torch.Tensor, y: torch.Tensor, scales: int):
    for s in range(scales):
        if s > 0:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        yield x, y


def msgms_loss(x: torch.Tensor, y: torch.Tensor, scales: int = N_SCALES, c: float = GMS_C,
               faithful: bool = False) -> torch.Tensor:
    """Multi-scale GMS loss ``(1/S) sum_s mean(1 - GMS_s)``: 0 for identical images.

    Args:
        x, y: ``(B, C, H, W)`` images; ``H, W`` at least ``2^(scales - 1)`` (times 3 if faithful).
        scales: number of scales (the input and ``scales - 1`` average-poolings by 2).

    Returns:
        Scalar tensor.
    """
    losses = [(1 - gms_map(a, b, c, faithful)).mean() for a, b in _pyramid(x, y, scales)]
    return torch.stack(losses).mean()


def msgms_map(x: torch.Tensor, y: torch.Tensor, scales: int = N_SCALES, c: float = GMS_C,
              faithful: bool = False) -> torch.Tensor:
    """Multi-scale GMS anomaly map ``(1/S) sum_s up(1 - GMS_s)``.

    Args:
        x, y: ``(B, C, H, W)`` image and reconstruction.

    Returns:
        ``(B, H, W)``, 0 where the reconstruction keeps every edge, larger where edges differ.
        (The official code's map is this minus ``(S - 1) / S`` = 0.75.)

    Example::

        >>> x = torch.rand(2, 3, 32, 32)
        >>> msgms_map(x, x).abs().max() < 1e-6
        tensor(True)
    """
    size = x.shape[-2:]
    total = 0.0
    for a, b in _pyramid(x, y, scales):
        g = gms_map(a, b, c, faithful)  # (B, 1, h, w)
        if g.shape[-2:] != size:
            g = F.interpolate(g, size=size, mode="bilinear", align_corners=False)
        total = total + (1 - g)
    return (total / scales)[:, 0]


__all__ = ["EPS", "GMS_C", "N_SCALES", "gms_map", "gradient_magnitude", "median_filter3", "msgms_loss", "msgms_map"]
