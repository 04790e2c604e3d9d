"""AnoSeg's synthetic anomalies: CutPaste from a *hard-augmented* copy of the image.

Song, Kong, Park, Kim and Kang, "AnoSeg: Anomaly Segmentation Network Using Self-Supervised
Learning", arXiv:2110.03396 (2021). Plain CutPaste moves a patch of the image to another place;
the patch still has the image's own colours and orientation, so it is often hard to see. AnoSeg
makes the patch *stranger* first. Its Fig. 3 describes the pipeline (each step with p = 0.5):

    x --rotation--> --perm--> --colour jitter--> x_hard;
    x_ano = x with a rotated rectangle of x_hard pasted in;  A = 0 inside the rectangle, 1 elsewhere.

* **rotation** by a multiple of 90 degrees (1, 2 or 3 quarter turns; non-square images can
  only take the half turn without changing shape, so they get that);
* **perm**: the four quadrants of the image re-tiled in a random order (never the identity);
* **colour jitter**: brightness 0.5, contrast 1.0, saturation 0.1, hue 0.5.

AnoSeg's reference map is **1 on normal pixels** and 0 on the anomaly (the opposite of DRAEM
and of this book's masks). :class:`~anolearn.forge.result.Forged` keeps ``masks`` = 1 on the
anomaly like every forger, and gives AnoSeg's view as ``Forged.normal_maps = 1 - masks``.

What the paper does not give and we chose (all parameters): the rotation angles, the
colour-jitter strengths (those of a third-party re-implementation), the patch geometry (as
CutPaste: area fraction ``U(0.02, 0.15)``, ``w / h`` log-uniform in ``[0.3, 3.3]``) and its turn
``U(-45, 45)`` degrees (with aspects both above and below 1 this covers every orientation).
The patch is cut axis-aligned from a random place of ``x_hard`` and turned as it is pasted
(the re-implementation copies the same place without turning, which does not match the
rotated rectangle of Fig. 3). For odd sizes the permutation acts on the largest even
top-left part and leaves the last row/column where it is.

Speed: :func:`hard_augment` never builds the whole hard-augmented copy. Rotation and
permutation only move pixels, so each pixel of the patch is followed back to the pixel of
``x`` it came from; colour jitter is applied to the patch alone, with the mean grey of the
whole copy for its contrast (a rearrangement does not change a mean). The result equals
cutting the patch out of :func:`hard_augmentations` (tested), at a fraction of the cost.
"""
from __future__ import annotations

import itertools
from typing import NamedTuple

import torch

from ..imageops import check_images, luma
from .color import Jitter, apply_jitter, jitter_factors
from .cutpaste import paste_patches, sample_centres, sample_corners, sample_rectangles
from .draws import check_generator, coin, uniform
from .result import Forged

#: The 23 non-identity orders of the quadrants (TL, TR, BL, BR).
_PERMUTATIONS = torch.tensor([p for p in itertools.permutations(range(4)) if p != (0, 1, 2, 3)])


def rotate90(images: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Turn each image by ``turns[i]`` quarter turns counter-clockwise (``(B,)`` long in 0..3).

    Odd ``turns`` need square images; 0 leaves the image unchanged.
    """
    h, w = images.shape[-2:]
    if h != w and bool((turns % 2 == 1).any()):
        raise ValueError(f"A quarter turn changes the shape of a {h} x {w} image; use turns 0 or 2.")
    out = images
    for k in ((1, 2, 3) if h == w else (2,)):
        sel = (turns == k).view(-1, 1, 1, 1)
        out = torch.where(sel, torch.rot90(images, k, dims=(-2, -1)), out)
    return out


def permute_quadrants(images: torch.Tensor, orders: torch.Tensor) -> torch.Tensor:
    """Re-tile the four quadrants: output quadrant ``q`` shows input quadrant ``orders[i, q]``.

    Args:
        images: ``(B, C, H, W)``.
        orders: ``(B, 4)`` long, a permutation of (0 = top-left, 1 = top-right, 2 = bottom-left,
            3 = bottom-right) per sample.

    Returns:
        ``(B, C, H, W)``; with odd ``H`` or ``W`` the last row/column stays in place.
    """
    b, c, h, w = images.shape
    hh, hw = h // 2, w // 2
    dev = images.device
    ys = torch.arange(2 * hh, device=dev).view(2 * hh, 1)
    xs = torch.arange(2 * hw, device=dev).view(1, 2 * hw)
    quadrant = (ys // hh) * 2 + xs // hw  # (2hh, 2hw) which output quadrant each pixel is in
    src_q = orders.gather(1, quadrant.view(1, -1).expand(b, -1)).view(b, 2 * hh, 2 * hw)  # (B, 2hh, 2hw)
    sy = (src_q // 2) * hh + ys % hh
    sx = (src_q % 2) * hw + xs % hw
    index = (sy * w + sx).view(b, 1, -1).expand(b, c, -1)
    out = images.clone()
    out[:, :, : 2 * hh, : 2 * hw] = images.reshape(b, c, -1).gather(2, index).view(b, c, 2 * hh, 2 * hw)
    return out


class _HardDraws(NamedTuple):
    turns: torch.Tensor  # (B,) long, quarter turns (0 = none)
    orders: torch.Tensor  # (B, 4) long, quadrant order (identity = none)
    jitter_on: torch.Tensor  # (B,) bool
    jitter: Jitter  # (B,) draws of each change


def _draw_hard(b: int, h: int, w: int, generator: torch.Generator | None, device: torch.device,
               p_rotate: float, p_permute: float, p_jitter: float, jitter) -> _HardDraws:
    rot = coin(p_rotate, (b,), generator, device)
    k = torch.randint(1, 4, (b,), generator=generator, device=device) if h == w else torch.full((b,), 2, device=device)
    perm = coin(p_permute, (b,), generator, device)
    pick = torch.randint(0, len(_PERMUTATIONS), (b,), generator=generator, device=device)
    identity = torch.arange(4, device=device).expand(b, 4)
    orders = torch.where(perm[:, None], _PERMUTATIONS.to(device)[pick], identity)
    jit = coin(p_jitter, (b,), generator, device)
    draws = jitter_factors(b, *jitter, generator=generator, device=device)
    return _HardDraws(torch.where(rot, k, torch.zeros_like(k)), orders, jit, draws)


def hard_augmentations(images: torch.Tensor, generator: torch.Generator | None = None,
                       p_rotate: float = 0.5, p_permute: float = 0.5, p_jitter: float = 0.5,
                       jitter: tuple[float, float, float, float] = (0.5, 1.0, 0.1, 0.5)) -> torch.Tensor:
    """The hard-augmented copy ``x_hard``: rotation, quadrant permutation, colour jitter, each
    applied to a sample with its own probability.

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1].
        generator: random source on the images' device.
        p_rotate, p_permute, p_jitter: probability of each step.
        jitter: (brightness, contrast, saturation, hue) strengths.

    Returns:
        ``(B, 3, H, W)`` float in [0, 1].
    """
    check_images(images)
    check_generator(generator, images.device)
    b, _, h, w = images.shape
    draws = _draw_hard(b, h, w, generator, images.device, p_rotate, p_permute, p_jitter, jitter)
    x = rotate90(images, draws.turns)
    if h >= 2 and w >= 2:
        x = permute_quadrants(x, draws.orders)
    return torch.where(draws.jitter_on.view(b, 1, 1, 1), apply_jitter(x, draws.jitter), x)


def _hard_region(image: torch.Tensor, turns: int, order: list[int], jitter: Jitter | None,
                 r0: int, r1: int, c0: int, c1: int) -> torch.Tensor:
    """Rows ``r0:r1``, columns ``c0:c1`` of one image's hard-augmented copy, computed without the
    rest of it: follow each pixel back through the permutation and the turn, then jitter (with
    the grey mean of the whole copy, which the two rearrangements leave unchanged)."""
    _, h, w = image.shape
    dev = image.device
    ys = torch.arange(r0, r1, device=dev).view(-1, 1).expand(r1 - r0, c1 - c0)
    xs = torch.arange(c0, c1, device=dev).view(1, -1).expand(r1 - r0, c1 - c0)
    hh, hw = h // 2, w // 2
    if order != [0, 1, 2, 3] and hh > 0 and hw > 0:  # undo the permutation (odd last row/column stay)
        tiled = (ys < 2 * hh) & (xs < 2 * hw)
        quad = ((ys // hh).clamp(max=1) * 2 + (xs // hw).clamp(max=1))
        src = torch.tensor(order, device=dev)[quad]
        ys = torch.where(tiled, (src // 2) * hh + ys % hh, ys)
        xs = torch.where(tiled, (src % 2) * hw + xs % hw, xs)
    # undo torch.rot90(x, k): out[i, j] = x[j, W-1-i] (k=1), x[H-1-i, W-1-j] (k=2), x[H-1-j, i] (k=3)
    if turns == 1:
        ys, xs = xs, w - 1 - ys
    elif turns == 2:
        ys, xs = h - 1 - ys, w - 1 - xs
    elif turns == 3:
        ys, xs = h - 1 - xs, ys
    region = image[:, ys, xs]  # (3, R, C)
    if jitter is None:
        return region
    grey = None
    if jitter.contrast is not None:  # contrast pulls towards the mean grey of the whole (brightened) copy
        full = image.unsqueeze(0)
        if jitter.brightness is not None:
            full = (full * jitter.brightness.view(1, 1, 1, 1)).clamp(0, 1)
        grey = luma(full).mean().view(1)
    return apply_jitter(region.unsqueeze(0), jitter, grey_mean=grey)[0]


def hard_augment(images: torch.Tensor, generator: torch.Generator | None = None, p_rotate: float = 0.5,
                 p_permute: float = 0.5, p_jitter: float = 0.5,
                 jitter: tuple[float, float, float, float] = (0.5, 1.0, 0.1, 0.5),
                 area: tuple[float, float] = (0.02, 0.15), aspect: tuple[float, float] = (0.3, 3.3),
                 angle: tuple[float, float] = (-45.0, 45.0), same_place: bool = False,
                 p_normal: float = 0.0, inside: bool = True) -> Forged:
    """AnoSeg's synthetic anomaly: a turned rectangle of the hard-augmented copy pasted into the image.

    Only the pasted rectangle of the hard-augmented copy is ever computed; the result is the
    same as cutting it from :func:`hard_augmentations` with the same generator state.

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1].
        generator: random source on the images' device (None = torch's global one).
        p_rotate, p_permute, p_jitter, jitter: see :func:`hard_augmentations`.
        area, aspect: patch area fraction of the image and ``w / h`` range (as CutPaste).
        angle: patch rotation range in degrees.
        same_place: cut the patch from the place it is pasted to (as a re-implementation does)
            instead of from a random place.
        p_normal: probability of leaving a sample untouched (mask all zero); AnoSeg mixes
            normal images in at a ratio the paper does not state.
        inside: keep the pasted rectangle inside the image (True) or place its centre anywhere
            and let the border clip it (False: every pixel equally likely to be forged, see
            :func:`~anolearn.forge.cutpaste.sample_centres`). The paper does not say.

    Returns:
        :class:`Forged`: ``masks`` 1 on the pasted patch; ``normal_maps`` is AnoSeg's target ``A``.

    Example:
        >>> out = hard_augment(torch.rand(4, 3, 64, 64), torch.Generator().manual_seed(0))
        >>> out.normal_maps.shape   # AnoSeg's map: 1 = normal
        torch.Size([4, 1, 64, 64])
    """
    check_images(images)
    check_generator(generator, images.device)
    b, _, h, w = images.shape
    dev = images.device
    draws = _draw_hard(b, h, w, generator, dev, p_rotate, p_permute, p_jitter, jitter)
    sizes = sample_rectangles(b, h, w, generator, dev, area, aspect)  # (B, 2)
    angles = uniform(*angle, (b,), generator, dev)
    dst = sample_centres(sizes, angles, h, w, generator, inside)
    src = dst if same_place else sample_corners(sizes, h, w, generator)
    active = ~coin(p_normal, (b,), generator, dev) if p_normal > 0 else None
    turns, orders, jitter_on = draws.turns.tolist(), draws.orders.tolist(), draws.jitter_on.tolist()

    def cut(i: int, r0: int, r1: int, c0: int, c1: int) -> torch.Tensor:
        jit = draws.jitter.select(slice(i, i + 1)) if jitter_on[i] else None
        return _hard_region(images[i], turns[i], orders[i], jit, r0, r1, c0, c1)

    out, masks = paste_patches(images, cut, sizes, src, dst, angles, active)
    return Forged(out, masks, images)


class HardAugment:
    """Callable forger: :func:`hard_augment` with its parameters fixed.

    Example:
        >>> forger = HardAugment(p_normal=0.5)
        >>> out = forger(torch.rand(4, 3, 64, 64), generator=torch.Generator().manual_seed(0))
    """

    def __init__(self, p_rotate: float = 0.5, p_permute: float = 0.5, p_jitter: float = 0.5,
                 jitter: tuple[float, float, float, float] = (0.5, 1.0, 0.1, 0.5),
                 area: tuple[float, float] = (0.02, 0.15), aspect: tuple[float, float] = (0.3, 3.3),
                 angle: tuple[float, float] = (-45.0, 45.0), same_place: bool = False, p_normal: float = 0.0,
                 inside: bool = True):
        for name, p in (("p_rotate", p_rotate), ("p_permute", p_permute), ("p_jitter", p_jitter),
                        ("p_normal", p_normal)):
            if not 0 <= p <= 1:
                raise ValueError(f"{name} must be a probability, got {p}.")
        self.params = dict(p_rotate=p_rotate, p_permute=p_permute, p_jitter=p_jitter, jitter=tuple(jitter),
                           area=tuple(area), aspect=tuple(aspect), angle=tuple(angle), same_place=same_place,
                           p_normal=p_normal, inside=inside)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> Forged:
        return hard_augment(images, generator, **self.params)

    def __repr__(self) -> str:
        return f"HardAugment({', '.join(f'{k}={v}' for k, v in self.params.items())})"


__all__ = ["HardAugment", "hard_augment", "hard_augmentations", "permute_quadrants", "rotate90"]
