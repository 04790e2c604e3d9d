"""Colour spaces and torchvision's ColorJitter, batched: one random draw per sample.

CutPaste (Li et al., CVPR 2021) jitters the colour of the patch it pastes, AnoSeg's hard
augmentation jitters whole images, and CutSwap jitters its patches; all three use
torchvision's ``ColorJitter``, which draws one set of factors per call. Here every sample of a
batch gets its own draw (:func:`color_jitter`); :func:`jitter_factors` and
:func:`apply_jitter` split drawing from applying, so a patch can be jittered with the draw of
its whole image.

The HSV conversion (:func:`rgb_to_hsv`, :func:`hsv_to_rgb`) also serves DRAEM's hue and
saturation augmentation (:mod:`anolearn.forge.augment`). Hue is a fraction of a full turn, in
[0, 1), as in Python's ``colorsys``.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from ..imageops import check_images, luma
from .draws import check_generator, uniform


# ----------------------------------------------------------------------------- HSV
def hsv_channels(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(B, 3, ...)`` RGB in [0, 1] -> hue, saturation, value, each ``(B, 1, ...)`` in [0, 1].

    ``v = max(R, G, B)``, ``s = (max - min) / max``, and six times the hue is ``(G - B) / d``
    where R is the maximum, ``2 + (B - R) / d`` where G is, ``4 + (R - G) / d`` where B is
    (``d = max - min``), wrapped into [0, 6)."""
    r, g, b = images[:, 0:1], images[:, 1:2], images[:, 2:3]
    maxc = torch.maximum(torch.maximum(r, g), b)
    delta = maxc - torch.minimum(torch.minimum(r, g), b)
    s = delta / maxc.clamp_min(1e-12)  # 0 where the pixel is black (delta is 0 there too)
    d = delta.clamp_min(1e-12)  # grey pixels: every numerator below is 0, so hue is 0
    # the three cases as 0/1 weights (torch.where is several times slower on the CPU)
    is_r = (maxc == r).to(images.dtype)
    is_g = (maxc == g).to(images.dtype).mul_(1.0 - is_r)
    is_b = (1.0 - is_r).sub_(is_g)
    h = (g - b).mul_(is_r).add_((b - r).mul_(is_g)).add_((r - g).mul_(is_b)).div_(d)
    h = h.add_(is_g.mul_(2.0)).add_(is_b.mul_(4.0)).div_(6.0)
    return h.add_((h < 0).to(h.dtype)), s, maxc  # negative hues wrap round: h + 1


def rgb_from_hsv(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Hue in [0, 1), saturation and value, each ``(B, 1, ...)`` -> ``(B, 3, ...)`` RGB.

    Branch-free: channel ``n`` in (R, G, B) = (5, 3, 1) is ``v - v s clamp(min(k, 4 - k), 0, 1)``
    with ``k = (n + 6 h) mod 6``."""
    n = torch.tensor([5.0, 3.0, 1.0], device=h.device, dtype=h.dtype).view(1, 3, *([1] * (h.dim() - 2)))
    k = n + 6.0 * h  # (B, 3, ...) in [n, n + 6)
    k.sub_((k >= 6.0).to(k.dtype).mul_(6.0))  # mod 6
    t = torch.minimum(k, 4.0 - k).clamp_(0, 1).mul_(v * s)
    return t.neg_().add_(v)


def rgb_to_hsv(images: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in [0, 1] -> HSV ``(B, 3, H, W)``, all three in [0, 1]."""
    return torch.cat(hsv_channels(images), 1)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_hsv`."""
    return rgb_from_hsv(hsv[:, 0:1], hsv[:, 1:2], hsv[:, 2:3])


# ----------------------------------------------------------------------------- colour jitter
def _as_range(value: float | tuple[float, float], centre: float, name: str,
              floor: float | None = None) -> tuple[float, float]:
    """torchvision's convention: ``v`` means ``[centre - v, centre + v]``; a pair is kept."""
    if isinstance(value, (tuple, list)):
        lo, hi = float(value[0]), float(value[1])
    else:
        if value < 0:
            raise ValueError(f"{name} must be non-negative, got {value}.")
        lo, hi = centre - float(value), centre + float(value)
    if floor is not None:
        lo = max(lo, floor)
    if lo > hi:
        raise ValueError(f"{name} range is empty: ({lo}, {hi}).")
    return lo, hi


class Jitter(NamedTuple):
    """Per-sample colour-jitter draws, each ``(B,)`` or None when that change is off."""

    brightness: torch.Tensor | None
    contrast: torch.Tensor | None
    saturation: torch.Tensor | None
    hue: torch.Tensor | None

    def select(self, rows: slice | torch.Tensor) -> "Jitter":
        """The draws of some samples (a slice or an index tensor)."""
        return Jitter(*(None if t is None else t[rows] for t in self))


def jitter_factors(n: int, brightness: float | tuple[float, float] = 0.0, contrast: float | tuple[float, float] = 0.0,
                   saturation: float | tuple[float, float] = 0.0, hue: float | tuple[float, float] = 0.0,
                   generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> Jitter:
    """Draw ColorJitter's random factors for ``n`` samples (torchvision's conventions).

    A strength ``v`` means a factor in ``[max(0, 1 - v), 1 + v]`` (hue: a shift in ``[-v, v]``
    of a turn, ``v <= 0.5``); a pair gives the range directly; 0 turns the change off.
    """
    out = []
    for name, value in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
        if value == 0:
            out.append(None)
            continue
        lo, hi = _as_range(value, 1.0, name, floor=0.0)
        out.append(uniform(lo, hi, (n,), generator, device))
    if hue == 0:
        out.append(None)
    else:
        lo, hi = _as_range(hue, 0.0, "hue")
        if lo < -0.5 or hi > 0.5:
            raise ValueError(f"hue shifts must lie in [-0.5, 0.5] of a turn, got ({lo}, {hi}).")
        out.append(uniform(lo, hi, (n,), generator, device))
    return Jitter(*out)


def apply_jitter(images: torch.Tensor, jitter: Jitter, grey_mean: torch.Tensor | None = None) -> torch.Tensor:
    """Apply drawn colour jitter: brightness, contrast, saturation, hue, in that order.

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1].
        jitter: the draws, from :func:`jitter_factors`.
        grey_mean: ``(B,)`` grey level contrast pulls towards; default the mean luma of each
            image after the brightness change (torchvision). A patch cut from a bigger image
            can pass that image's value.

    Returns:
        ``(B, 3, H, W)`` float in [0, 1].
    """
    x = images

    def col(t: torch.Tensor) -> torch.Tensor:  # (B,) -> (B, 1, 1, 1)
        return t.to(x.dtype).view(-1, 1, 1, 1)

    if jitter.brightness is not None:  # x -> b x
        x = (x * col(jitter.brightness)).clamp_(0, 1)
    if jitter.contrast is not None:  # towards the mean grey: c x + (1 - c) mean
        mean = luma(x).mean((1, 2, 3)) if grey_mean is None else grey_mean
        c = col(jitter.contrast)
        x = (c * x + (1 - c) * col(mean)).clamp_(0, 1)
    if jitter.saturation is not None:  # towards the pixel's own grey: s x + (1 - s) luma
        s = col(jitter.saturation)
        x = (s * x + (1 - s) * luma(x)).clamp_(0, 1)
    if jitter.hue is not None:  # turn the hue
        h, s, v = hsv_channels(x)
        x = rgb_from_hsv((h + col(jitter.hue)) % 1.0, s, v).clamp_(0, 1)
    return x


def color_jitter(images: torch.Tensor, brightness: float | tuple[float, float] = 0.0,
                 contrast: float | tuple[float, float] = 0.0, saturation: float | tuple[float, float] = 0.0,
                 hue: float | tuple[float, float] = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """torchvision's ``ColorJitter``, batched: an independent draw for every sample.

    The four changes are applied in the fixed order brightness, contrast, saturation, hue
    (torchvision shuffles the order). See :func:`jitter_factors` for the strengths.

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1].
        brightness, contrast, saturation, hue: strengths (0 = off).
        generator: random source on the images' device.

    Returns:
        ``(B, 3, H, W)`` float in [0, 1].
    """
    check_images(images)
    check_generator(generator, images.device)
    draws = jitter_factors(images.shape[0], brightness, contrast, saturation, hue, generator, images.device)
    return apply_jitter(images, draws)


__all__ = ["Jitter", "apply_jitter", "color_jitter", "hsv_channels", "hsv_to_rgb", "jitter_factors", "rgb_from_hsv",
           "rgb_to_hsv"]
