"""CutPaste: forge an anomaly by moving a piece of the image somewhere else.

Li, Sohn, Yoon and Pfister, "CutPaste: Self-Supervised Learning for Anomaly Detection and
Localization", CVPR 2021. A classifier that must tell normal images from images in which a
patch was **cut from the same image, colour-jittered and pasted at another place** learns
features that also expose real local defects (a scratch or a misplaced part breaks the
continuity of the image in much the same way). Two kinds of forgery:

* **CutPaste**: an axis-aligned rectangle whose area is a fraction ``U(0.02, 0.15)`` of the
  image and whose aspect ratio ``w / h`` lies in ``[0.3, 3.3]``;
* **CutPaste-Scar**: a thin strip, ``2-16`` px wide and ``10-25`` px long at 256 x 256 px,
  rotated by ``U(-45, 45)`` degrees (the values re-implementations use; we could not check
  them against the paper's text).

The *union* picks one of the two per sample; the *3-way* task labels {normal, CutPaste, scar}.

Both are one operation here. Let a patch of size ``h x w`` have its centre at ``c_s`` in the
source image and ``c_t`` in the target, turned by ``theta``. An output pixel ``p`` belongs to
the patch when its local coordinates ``l = R(-theta) (p - c_t)`` satisfy ``|l_y| < h / 2`` and
``|l_x| < w / 2``; it then takes the (nearest) source pixel ``c_s + l``. With ``theta = 0`` and
integer corners this copies the rectangle pixel for pixel, without interpolation. The random
draws are batched; the pasting works on each patch's bounding box only (one small loop over
the batch after one host read of the parameters), so a batch costs a small fraction of
whole-image arithmetic.

Choices where the paper is silent or secondary sources differ (all are parameters):

* aspect ratio: drawn **log-uniformly** in ``[0.3, 3.3]`` so tall and wide patches are equally
  likely (transcriptions of the paper give ``(0.3, 1) U (1, 3.3)``; a re-implementation draws
  ``log(r)`` uniformly, which is what we do);
* source and target places are drawn independently and uniformly (they may overlap);
* colour jitter 0.1 for brightness, contrast, saturation and hue (a re-implementation's
  value; the paper says only "colour jitter"), contrast measured on the patch;
* the scar's sizes are for 256 px images; we scale them by ``min(H, W) / 256`` so a scar
  covers the same fraction of any image (at 64 px: 0.5-4 px wide, clamped to >= 1 px, and
  2.5-6.25 px long).
"""
from __future__ import annotations

import math

import torch

from ..imageops import check_images
from .color import apply_jitter, jitter_factors
from .draws import check_generator, coin, uniform
from .result import Forged


def sample_rectangles(n: int, height: int, width: int, generator: torch.Generator | None,
                      device: torch.device | str, area: tuple[float, float] = (0.02, 0.15),
                      aspect: tuple[float, float] = (0.3, 3.3)) -> torch.Tensor:
    """Patch sizes for CutPaste: ``(n, 2)`` float integers ``(h, w)``.

    ``h * w ~ U(area) * H * W`` and ``w / h`` log-uniform in ``aspect``, rounded to whole
    pixels and clamped to the image (so the realised area ratio is within rounding of ``area``).
    """
    if not 0 < area[0] <= area[1] <= 1:
        raise ValueError(f"area must satisfy 0 < low <= high <= 1, got {area}.")
    if not 0 < aspect[0] <= aspect[1]:
        raise ValueError(f"aspect must satisfy 0 < low <= high, got {aspect}.")
    target = uniform(*area, (n,), generator, device) * (height * width)  # (n,) pixels
    ratio = torch.exp(uniform(math.log(aspect[0]), math.log(aspect[1]), (n,), generator, device))
    h = torch.sqrt(target / ratio).round().clamp(1, height)
    w = torch.sqrt(target * ratio).round().clamp(1, width)
    return torch.stack([h, w], 1)


def sample_scars(n: int, height: int, width: int, generator: torch.Generator | None,
                 device: torch.device | str, scar_width: tuple[float, float] = (2.0, 16.0),
                 scar_length: tuple[float, float] = (10.0, 25.0), reference: int = 256) -> torch.Tensor:
    """Scar sizes ``(n, 2)`` float ``(h, w)`` = (length, width) in pixels, scaled by
    ``min(H, W) / reference`` from the paper's 256 px values; at least 1 px each."""
    s = min(height, width) / reference
    w = (uniform(*scar_width, (n,), generator, device) * s).clamp(1, width)
    h = (uniform(*scar_length, (n,), generator, device) * s).clamp(1, height)
    return torch.stack([h, w], 1)


def sample_corners(sizes: torch.Tensor, height: int, width: int,
                   generator: torch.Generator | None) -> torch.Tensor:
    """Centres ``(n, 2)`` (y, x) of axis-aligned integer rectangles placed uniformly inside the image."""
    n = sizes.shape[0]
    u = torch.rand(n, 2, generator=generator, device=sizes.device)
    limit = torch.tensor([height, width], device=sizes.device, dtype=sizes.dtype) - sizes + 1  # places per axis
    corner = torch.floor(u * limit)
    return corner + (sizes - 1) / 2  # pixel-centre coordinates of the rectangle's centre


def sample_centres(sizes: torch.Tensor, angles: torch.Tensor, height: int, width: int,
                   generator: torch.Generator | None, inside: bool = True) -> torch.Tensor:
    """Centres ``(n, 2)`` (y, x) of turned ``h x w`` boxes.

    ``inside=True`` keeps each box inside the image when it fits (if it does not, the box is
    centred and the image clips it). Then a pixel in the middle of the image is covered far
    more often than one near the border (at 64 px with CutPaste's sizes: about 200 times more
    often than a corner pixel), and a network that can see where it is (AnoSeg's coordinate
    channels) learns that anomalies sit in the middle. ``inside=False`` lets the box lie anywhere
    it still overlaps the image (its centre uniform over the image grown by half the box on
    every side) and the border clips it: every pixel is then equally likely to be covered.
    """
    rad = torch.deg2rad(angles)
    c, s = torch.cos(rad).abs(), torch.sin(rad).abs()
    h, w = sizes.unbind(1)
    half = torch.stack([c * h + s * w, s * h + c * w], 1) / 2  # (n, 2) half extents of the bounding box
    extent = torch.tensor([height, width], device=sizes.device, dtype=sizes.dtype)
    u = torch.rand(sizes.shape[0], 2, generator=generator, device=sizes.device)
    if not inside:
        return u * (extent + 2 * half) - half - 0.5
    lo = half - 0.5
    hi = extent - 0.5 - half
    mid = (extent - 1) / 2
    return torch.where(hi >= lo, lo + u * (hi - lo), mid.expand_as(lo))


def _span(centre: float, half: float, size: int) -> tuple[int, int]:
    """Pixels ``[lo, hi)`` whose nearest-pixel rounding a coordinate in ``(centre - half, centre + half)`` can reach."""
    lo = math.floor(centre - half + 0.5 + 1e-6)
    hi = math.floor(centre + half + 0.5 - 1e-6) + 1
    return max(0, lo), min(size, max(hi, lo + 1))


def paste_patches(images: torch.Tensor, cut, sizes: torch.Tensor, src_centres: torch.Tensor,
                  dst_centres: torch.Tensor, angles: torch.Tensor | None = None,
                  active: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste an ``h x w`` patch, turned by ``angle``, into each image.

    The patch is the axis-aligned rectangle centred at ``c_s`` of some source image; its pixels
    are read by nearest neighbour. Only the patch's bounding box is touched, one sample at a
    time (a patch covers a few percent of the image, so this is far cheaper than whole-image
    tensor arithmetic), after a single host read of the parameters.

    Args:
        images: ``(B, 3, H, W)`` float, the images pasted into.
        cut: ``cut(i, r0, r1, c0, c1) -> (3, r1 - r0, c1 - c0)``: rows ``r0:r1`` and columns
            ``c0:c1`` of sample ``i``'s source (jittered or otherwise changed as the forger wants).
        sizes: ``(B, 2)`` patch ``(h, w)`` in pixels.
        src_centres, dst_centres: ``(B, 2)`` centres ``(y, x)`` in pixel coordinates (pixel ``i``
            has its centre at ``i``).
        angles: ``(B,)`` degrees, counter-clockwise on screen; None = axis-aligned.
        active: ``(B,)`` bool, samples to paste into (default all).

    Returns:
        ``(out, masks)``: ``out`` ``(B, 3, H, W)`` equal to ``images`` outside the masks;
        ``masks`` ``(B, 1, H, W)`` float in {0, 1}.
    """
    b, _, hgt, wid = images.shape
    dev = images.device
    if angles is None:
        angles = torch.zeros(b, device=dev)
    if active is None:
        active = torch.ones(b, dtype=torch.bool, device=dev)
    table = torch.cat([sizes.float(), src_centres.float(), dst_centres.float(), angles.float().view(b, 1),
                       active.float().view(b, 1)], 1).tolist()  # the one host round trip
    out = images.clone()
    masks = torch.zeros(b, 1, hgt, wid, device=dev, dtype=images.dtype)
    for i, (h, w, sy, sx, ty, tx, angle, on) in enumerate(table):
        if not on:
            continue
        rad = math.radians(angle)
        cos, sin = math.cos(rad), math.sin(rad)
        ey, ex = (abs(cos) * h + abs(sin) * w) / 2, (abs(sin) * h + abs(cos) * w) / 2  # bounding-box half sizes
        y0, y1 = _span(ty, ey, hgt)
        x0, x1 = _span(tx, ex, wid)
        r0, r1 = _span(sy, h / 2, hgt)
        c0, c1 = _span(sx, w / 2, wid)
        dy = torch.arange(y0, y1, device=dev, dtype=torch.float32).view(-1, 1) - ty  # (Y, 1)
        dx = torch.arange(x0, x1, device=dev, dtype=torch.float32).view(1, -1) - tx  # (1, X)
        # local = R(-theta) (p - c); screen y points down, so "counter-clockwise" flips the sign of sin.
        ly = cos * dy + sin * dx  # (Y, X)
        lx = cos * dx - sin * dy
        inside = (ly.abs() < h / 2) & (lx.abs() < w / 2)  # (Y, X)
        rows = (sy + ly).round().clamp(r0, r1 - 1).long() - r0
        cols = (sx + lx).round().clamp(c0, c1 - 1).long() - c0
        patch = cut(i, r0, r1, c0, c1)  # (3, R, C)
        region = out[i, :, y0:y1, x0:x1]
        out[i, :, y0:y1, x0:x1] = torch.where(inside, patch[:, rows, cols], region)
        masks[i, 0, y0:y1, x0:x1] = inside.to(images.dtype)
    return out, masks


def _draw_union(images: torch.Tensor, generator: torch.Generator | None, p_scar: float,
                area, aspect, scar_width, scar_length, scar_angle):
    """Sizes, centres and angles for a batch in which each sample is a rectangle or a scar."""
    b, _, h, w = images.shape
    dev = images.device
    scar = coin(p_scar, (b,), generator, dev)  # (B,) which samples get a scar
    rect_sizes = sample_rectangles(b, h, w, generator, dev, area, aspect)
    scar_sizes = sample_scars(b, h, w, generator, dev, scar_width, scar_length)
    scar_angles = uniform(*scar_angle, (b,), generator, dev)
    sizes = torch.where(scar[:, None], scar_sizes, rect_sizes)
    angles = torch.where(scar, scar_angles, torch.zeros_like(scar_angles))
    src = sample_corners(sizes, h, w, generator)  # source patch is always cut axis-aligned
    dst = torch.where(scar[:, None], sample_centres(sizes, angles, h, w, generator), sample_corners(sizes, h, w, generator))
    return sizes, src, dst, angles, scar


def cutpaste_union(images: torch.Tensor, generator: torch.Generator | None = None, p_scar: float = 0.5,
                   area: tuple[float, float] = (0.02, 0.15), aspect: tuple[float, float] = (0.3, 3.3),
                   scar_width: tuple[float, float] = (2.0, 16.0), scar_length: tuple[float, float] = (10.0, 25.0),
                   scar_angle: tuple[float, float] = (-45.0, 45.0), jitter: float = 0.1, p_normal: float = 0.0,
                   return_kinds: bool = False):
    """CutPaste or CutPaste-Scar per sample (scar with probability ``p_scar``).

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1].
        generator: random source on the images' device (None = torch's global one).
        p_scar: probability of a scar (0 = CutPaste only, 1 = scars only).
        area, aspect: rectangle area fraction and ``w / h`` range.
        scar_width, scar_length: scar sizes in pixels *at 256 px* (scaled to the image).
        scar_angle: scar rotation range in degrees.
        jitter: colour jitter strength of the pasted patch (0 = none); contrast pulls towards
            the patch's own mean grey, as if the patch were jittered after cutting it out.
        p_normal: probability of leaving a sample untouched (mask all zero).
        return_kinds: also return ``(B,)`` long, 0 = rectangle, 1 = scar.

    Returns:
        :class:`Forged` with ``masks`` = 1 on the pasted patch (and the kinds, if asked).
    """
    check_images(images)
    check_generator(generator, images.device)
    b, dev = images.shape[0], images.device
    sizes, src, dst, angles, scar = _draw_union(images, generator, p_scar, area, aspect,
                                                scar_width, scar_length, scar_angle)
    active = ~coin(p_normal, (b,), generator, dev) if p_normal > 0 else None
    draws = jitter_factors(b, jitter, jitter, jitter, min(jitter, 0.5), generator, dev)

    def cut(i: int, r0: int, r1: int, c0: int, c1: int) -> torch.Tensor:
        patch = images[i:i + 1, :, r0:r1, c0:c1]
        return apply_jitter(patch, draws.select(slice(i, i + 1)))[0] if jitter else patch[0]

    out, masks = paste_patches(images, cut, sizes, src, dst, angles, active)
    result = Forged(out, masks, images)
    return (result, scar.long()) if return_kinds else result


def cutpaste(images: torch.Tensor, generator: torch.Generator | None = None, **kwargs) -> Forged:
    """CutPaste: a rectangle of the image, colour-jittered, pasted elsewhere.
    Keyword arguments as :func:`cutpaste_union` (without ``p_scar``)."""
    return cutpaste_union(images, generator, p_scar=0.0, **kwargs)


def cutpaste_scar(images: torch.Tensor, generator: torch.Generator | None = None, **kwargs) -> Forged:
    """CutPaste-Scar: a thin rotated strip of the image pasted elsewhere.
    Keyword arguments as :func:`cutpaste_union` (without ``p_scar``)."""
    return cutpaste_union(images, generator, p_scar=1.0, **kwargs)


def cutpaste_3way(images: torch.Tensor, generator: torch.Generator | None = None,
                  **kwargs) -> tuple[Forged, torch.Tensor]:
    """The 3-way task's batch: the normal images, their CutPaste and their scar versions.

    Returns:
        ``(forged, classes)``: ``forged.images`` is ``(3B, 3, H, W)`` (normal, CutPaste, scar, in
        that order), ``classes`` ``(3B,)`` long in {0, 1, 2}.
    """
    b = images.shape[0]
    cp = cutpaste(images, generator, **kwargs)
    scar = cutpaste_scar(images, generator, **kwargs)
    classes = torch.arange(3, device=images.device).repeat_interleave(b)
    return Forged(torch.cat([images, cp.images, scar.images]), torch.cat([torch.zeros_like(cp.masks), cp.masks, scar.masks]),
                  torch.cat([images, images, images])), classes


class CutPasteUnion:
    """Callable forger: :func:`cutpaste_union` with its parameters fixed.

    Example:
        >>> forger = CutPasteUnion(p_scar=0.5)
        >>> out = forger(torch.rand(8, 3, 64, 64), generator=torch.Generator().manual_seed(0))
        >>> out.images.shape, out.masks.shape
        (torch.Size([8, 3, 64, 64]), torch.Size([8, 1, 64, 64]))
    """

    def __init__(self, p_scar: float = 0.5, area: tuple[float, float] = (0.02, 0.15),
                 aspect: tuple[float, float] = (0.3, 3.3), scar_width: tuple[float, float] = (2.0, 16.0),
                 scar_length: tuple[float, float] = (10.0, 25.0), scar_angle: tuple[float, float] = (-45.0, 45.0),
                 jitter: float = 0.1, p_normal: float = 0.0):
        if not 0 <= p_scar <= 1 or not 0 <= p_normal <= 1:
            raise ValueError(f"p_scar and p_normal must be probabilities, got {p_scar} and {p_normal}.")
        self.params = dict(p_scar=p_scar, area=tuple(area), aspect=tuple(aspect), scar_width=tuple(scar_width),
                           scar_length=tuple(scar_length), scar_angle=tuple(scar_angle), jitter=jitter,
                           p_normal=p_normal)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> Forged:
        return cutpaste_union(images, generator, **self.params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


class CutPaste(CutPasteUnion):
    """Callable CutPaste forger (rectangles only); see :func:`cutpaste`."""

    def __init__(self, area: tuple[float, float] = (0.02, 0.15), aspect: tuple[float, float] = (0.3, 3.3),
                 jitter: float = 0.1, p_normal: float = 0.0):
        super().__init__(p_scar=0.0, area=area, aspect=aspect, jitter=jitter, p_normal=p_normal)


class CutPasteScar(CutPasteUnion):
    """Callable CutPaste-Scar forger (thin rotated strips only); see :func:`cutpaste_scar`."""

    def __init__(self, scar_width: tuple[float, float] = (2.0, 16.0), scar_length: tuple[float, float] = (10.0, 25.0),
                 scar_angle: tuple[float, float] = (-45.0, 45.0), jitter: float = 0.1, p_normal: float = 0.0):
        super().__init__(p_scar=1.0, scar_width=scar_width, scar_length=scar_length, scar_angle=scar_angle,
                         jitter=jitter, p_normal=p_normal)


__all__ = ["CutPaste", "CutPasteScar", "CutPasteUnion", "cutpaste", "cutpaste_3way", "cutpaste_scar",
           "cutpaste_union", "paste_patches", "sample_centres", "sample_corners", "sample_rectangles",
           "sample_scars"]
