"""DRAEM's ten source augmentations, batched, in plain torch.

DRAEM (Zavrtanik et al., ICCV 2021) does not paste raw textures: before blending a texture
into a normal image, its official code passes the texture through **three** augmentations
drawn without replacement, in random order, from a list of ten imgaug operations. Each is a
short function below, given its parameters; :data:`DRAEM_AUGMENTATIONS` pairs each with the
ranges DRAEM's code draws them from:

====  ==========================  ===================================================
 #    DRAEM / imgaug              here (``x`` in [0, 1], one draw per sample)
====  ==========================  ===================================================
 1    GammaContrast(0.5, 2.0)     ``x ** g``, ``g ~ U(0.5, 2)`` per channel
 2    MultiplyAndAddToBrightness  luma ``Y' = m Y + a``, ``m ~ U(0.8, 1.2)``,
      (mul 0.8-1.2, add -30..30)  ``a ~ U(-30, 30) / 255``; every channel moves by ``Y' - Y``
 3    EnhanceSharpness            PIL's sharpness: blend with the 3 x 3 "smooth" filtered
                                  image, factor ``f ~ U(0, 2)`` (0 = blurred, 2 = sharpened)
 4    AddToHueAndSaturation       hue += ``U(-50, 50) / 255`` of a turn, saturation +=
      (-50..50, per channel)      ``U(-50, 50) / 255`` (independent draws)
 5    Solarize(p 0.5, 32..128)    with p = 0.5: ``x -> 1 - x`` where ``x >= t``,
                                  ``t ~ U(32, 128) / 255``
 6    Posterize                   keep the ``n ~ U{1..8}`` most significant bits of the
                                  8-bit value
 7    Invert                      ``1 - x``
 8    Autocontrast                per channel, clip ``c ~ U(0, 20)`` % of the darkest and of
                                  the brightest pixels, stretch the rest to [0, 1] (PIL)
 9    Equalize                    per-channel histogram equalisation (PIL's look-up table)
10    Affine(rotate -45..45)      rotation about the centre, bilinear, zero (black) fill
====  ==========================  ===================================================

:func:`draem_augment` gives each sample ``n_ops`` distinct operations in random order and runs
each operation once per step, on the samples that chose it. Every parameter is drawn per
sample from the ``torch.Generator`` passed in, in a fixed order (step by step, operation by
operation), so a seed gives the same augmentations on every run.

Deviations from imgaug, for speed and simplicity: we work in float RGB, not uint8 (the
histogram operations quantise to 256 levels internally, as PIL does); brightness changes the
luma of the YCbCr space only (imgaug picks one of six colour spaces at random); hue and
saturation are shifted in HSV with hue as a fraction of a full turn (OpenCV's 0-180 hue,
which imgaug uses, maps the same way).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from ..imageops import check_images, luma
from .color import hsv_channels, rgb_from_hsv
from .draws import check_generator, coin, uniform
from .geometry import rotate


# ----------------------------------------------------------------------------- 8-bit levels
def level_index(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, ...)`` float in [0, 1] -> ``(B, C, N)`` int32: each value's 8-bit level
    ``round(255 clamp(x, 0, 1))`` (as PIL quantises), plus ``256 (C i + j)`` for channel ``j`` of
    image ``i``, so that one ``bincount`` (or one table look-up) serves every channel at once.
    (Made in float, where these integers are exact below 2**24, and cast once.)"""
    b, c = x.shape[:2]
    dtype = x.dtype if b * c * 256 <= 2 ** 24 else torch.float64
    offset = torch.arange(b * c, device=x.device, dtype=dtype).view(b, c, 1) * 256
    levels = torch.clamp(x.reshape(b, c, -1).to(dtype), 0, 1).mul_(255).round_()
    return levels.add_(offset).to(torch.int32)


def histograms(x: torch.Tensor) -> torch.Tensor:
    """``(B, 3, ...)`` float in [0, 1] -> ``(B, 3, 256)`` long: pixels per 8-bit level, per channel."""
    b, c = x.shape[:2]
    return torch.bincount(level_index(x).reshape(-1), minlength=b * c * 256).view(b, c, 256)


def apply_lut(x: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """Map the 8-bit levels of ``x`` ``(B, 3, ...)`` through ``(B, 3, 256)`` integer tables
    (PIL's ``Image.point``); returns ``x``'s dtype and shape, in [0, 1]."""
    table = lut.reshape(-1).to(x.dtype) / 255.0  # scale the 256 entries, not the pixels
    return table.index_select(0, level_index(x).reshape(-1)).view(x.shape)


def autocontrast_lut(hist: torch.Tensor, cutoff: torch.Tensor) -> torch.Tensor:
    """PIL autocontrast's ``(B, 3, 256)`` look-up tables from the ``(B, 3, 256)`` histograms,
    ignoring a fraction ``cutoff`` ``(B, 1, 1, 1)`` of the pixels at each end."""
    n = hist.sum(-1, keepdim=True)  # (B, 3, 1)
    cut = (n.float() * cutoff.view(-1, 1, 1).float()).floor().long()  # pixels to ignore at each end
    cdf = hist.cumsum(-1)
    lo = (cdf > cut).float().argmax(-1, keepdim=True)  # first level kept
    tail = n - cdf + hist  # pixels at or above each level
    hi = 255 - (tail.flip(-1) > cut).float().argmax(-1, keepdim=True)  # last level kept
    ramp = torch.arange(256, device=hist.device).view(1, 1, 256)
    scale = 255.0 / (hi - lo).clamp_min(1).float()
    lut = ((ramp - lo).float() * scale).round().clamp(0, 255).long()
    return torch.where(hi > lo, lut, ramp.expand_as(lut))  # flat channel: leave unchanged


def equalize_lut(hist: torch.Tensor) -> torch.Tensor:
    """PIL equalize's ``(B, 3, 256)`` look-up tables from the ``(B, 3, 256)`` histograms: level
    ``i -> (n_below(i) + step // 2) // step``, ``step = (N - count of the brightest used level) // 255``."""
    n = hist.sum(-1, keepdim=True)
    ramp = torch.arange(256, device=hist.device).view(1, 1, 256)
    last = torch.where(hist > 0, ramp, torch.zeros_like(ramp)).amax(-1, keepdim=True)  # brightest used level
    step = (n - hist.gather(-1, last)) // 255  # (B, 3, 1)
    below = hist.cumsum(-1) - hist
    lut = ((below + step // 2) // step.clamp_min(1)).clamp(max=255)
    return torch.where(step > 0, lut, ramp.expand_as(lut))


# ----------------------------------------------------------------------------- the ten operations
# Each takes images (B, 3, H, W) in [0, 1] and its parameters, one per sample: (B, 1, 1, 1)
# tensors ((B, 3, 1, 1) for gamma, one per channel), and returns images in [0, 1].
def gamma_contrast(x: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """imgaug ``GammaContrast``: ``x ** gamma``, a gamma per sample and channel."""
    return torch.clamp(x, 0, 1).pow_(gamma)


def multiply_add_brightness(x: torch.Tensor, mul: torch.Tensor, add: torch.Tensor) -> torch.Tensor:
    """imgaug ``MultiplyAndAddToBrightness``: luma ``Y -> mul Y + add``. In YCbCr a change of
    ``Y`` alone moves R, G and B by the same amount."""
    y = luma(x)
    return (x + (mul * y + add).clamp_(0, 1)).sub_(y).clamp_(0, 1)


def sharpness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """PIL ``ImageEnhance.Sharpness``: ``s + factor (x - s)``, ``s`` = x smoothed by
    ``[[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13`` (border pixels keep their value)."""
    inner = x[..., 1:-1, 1:-1]
    # the kernel is a 3 x 3 box sum plus 4 x the centre; the box sum is separable
    rows = (x[..., :-2, :] + x[..., 1:-1, :]).add_(x[..., 2:, :])  # (B, 3, H - 2, W)
    smooth = (rows[..., :-2] + rows[..., 1:-1]).add_(rows[..., 2:])  # (B, 3, H - 2, W - 2) box sum
    smooth.add_(inner, alpha=4.0).mul_(1.0 / 13.0)
    out = x.clone()
    out[..., 1:-1, 1:-1] = smooth.lerp_(inner, factor).clamp_(0, 1)
    return out


def hue_saturation(x: torch.Tensor, hue: torch.Tensor, saturation: torch.Tensor) -> torch.Tensor:
    """imgaug ``AddToHueAndSaturation``: add ``hue`` (a fraction of a turn) to the hue and
    ``saturation`` to the saturation, in HSV."""
    h, s, v = hsv_channels(x.clamp(0, 1))
    return rgb_from_hsv((h + hue) % 1.0, (s + saturation).clamp_(0, 1), v).clamp_(0, 1)


def solarize(x: torch.Tensor, on: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """imgaug ``Solarize``: where ``on`` (bool), invert every value at or above ``threshold``."""
    return torch.where(on & (x >= threshold), 1.0 - x, x)


def posterize(x: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """PIL ``ImageOps.posterize``: keep the ``bits`` (long) most significant bits of each 8-bit value."""
    step = (2.0 ** (8 - bits)).to(x.dtype)  # levels per bin
    levels = (x.clamp(0, 1) * 255).round_()
    return torch.floor(levels / step).mul_(step / 255.0)


def invert(x: torch.Tensor) -> torch.Tensor:
    """imgaug ``Invert``: ``1 - x``."""
    return 1.0 - x


def autocontrast(x: torch.Tensor, cutoff: torch.Tensor) -> torch.Tensor:
    """PIL ``ImageOps.autocontrast``: per channel, ignore a fraction ``cutoff`` of the darkest and
    of the brightest pixels and stretch the remaining range to [0, 1]."""
    return apply_lut(x, autocontrast_lut(histograms(x), cutoff))


def equalize(x: torch.Tensor) -> torch.Tensor:
    """PIL ``ImageOps.equalize``: per-channel histogram equalisation (see :func:`equalize_lut`)."""
    return apply_lut(x, equalize_lut(histograms(x)))


def affine_rotate(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """imgaug ``Affine(rotate=...)``: turn by ``degrees`` about the centre, bilinear, corners black."""
    return rotate(x, degrees.view(-1), padding_mode="zeros").clamp(0, 1)


# ----------------------------------------------------------------------------- random parameters
class Uniform(NamedTuple):
    """``U(low, high)``, ``channels`` numbers per sample."""

    low: float
    high: float
    channels: int = 1

    def draw(self, n: int, generator, device, dtype) -> torch.Tensor:
        return uniform(self.low, self.high, (n, self.channels, 1, 1), generator, device, dtype)


class Coin(NamedTuple):
    """True with probability ``p``, one per sample."""

    p: float

    def draw(self, n: int, generator, device, dtype) -> torch.Tensor:
        return coin(self.p, (n, 1, 1, 1), generator, device)


class Integers(NamedTuple):
    """An integer uniform in ``low..high`` (inclusive), one per sample."""

    low: int
    high: int

    def draw(self, n: int, generator, device, dtype) -> torch.Tensor:
        return torch.randint(self.low, self.high + 1, (n, 1, 1, 1), generator=generator, device=device)


class Augmentation:
    """An operation and the distributions of its parameters: ``aug(x, generator)`` draws one
    set per sample (:meth:`draw`, in the order the parameters are listed) and applies
    ``aug.fn(x, **parameters)``.

    Example:
        >>> aug = Augmentation(gamma_contrast, gamma=Uniform(0.5, 2.0, channels=3))
        >>> aug(torch.rand(2, 3, 8, 8), torch.Generator().manual_seed(0)).shape
        torch.Size([2, 3, 8, 8])
    """

    def __init__(self, fn: Callable[..., torch.Tensor], **params: Uniform | Coin | Integers):
        self.fn, self.params = fn, params

    def draw(self, n: int, generator: torch.Generator | None, device: torch.device | str,
             dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
        """The parameters of ``n`` samples: name -> ``(n, channels, 1, 1)``."""
        return {name: dist.draw(n, generator, device, dtype) for name, dist in self.params.items()}

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.fn(x, **self.draw(x.shape[0], generator, x.device, x.dtype))

    def __repr__(self) -> str:
        return f"Augmentation({self.fn.__name__}, {', '.join(f'{k}={v}' for k, v in self.params.items())})"


#: The ten operations, in the order of DRAEM's ``augmenters`` list, with its ranges.
DRAEM_AUGMENTATIONS: dict[str, Augmentation] = {
    "gamma_contrast": Augmentation(gamma_contrast, gamma=Uniform(0.5, 2.0, channels=3)),
    "brightness": Augmentation(multiply_add_brightness, mul=Uniform(0.8, 1.2), add=Uniform(-30 / 255, 30 / 255)),
    "sharpness": Augmentation(sharpness, factor=Uniform(0.0, 2.0)),
    "hue_saturation": Augmentation(hue_saturation, hue=Uniform(-50 / 255, 50 / 255),
                                   saturation=Uniform(-50 / 255, 50 / 255)),
    "solarize": Augmentation(solarize, on=Coin(0.5), threshold=Uniform(32 / 255, 128 / 255)),
    "posterize": Augmentation(posterize, bits=Integers(1, 8)),
    "invert": Augmentation(invert),
    "autocontrast": Augmentation(autocontrast, cutoff=Uniform(0.0, 0.2)),
    "equalize": Augmentation(equalize),
    "rotate": Augmentation(affine_rotate, degrees=Uniform(-45.0, 45.0)),
}


def draem_augment(images: torch.Tensor, generator: torch.Generator | None = None, n_ops: int = 3,
                  ops: dict[str, Augmentation] | None = None, return_choices: bool = False):
    """Apply ``n_ops`` distinct operations, in random order, to every sample (DRAEM's recipe).

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1] (anomaly source images).
        generator: random source on the images' device.
        n_ops: operations per sample (DRAEM: 3), at most ``len(ops)``.
        ops: name -> :class:`Augmentation`; default :data:`DRAEM_AUGMENTATIONS`.
        return_choices: also return the ``(B, n_ops)`` long table of operation indices
            (row ``i``: the operations applied to image ``i``, in order).

    Returns:
        ``(B, 3, H, W)`` float in [0, 1] (and the choices if asked).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> draem_augment(torch.rand(4, 3, 32, 32), g).shape
        torch.Size([4, 3, 32, 32])
    """
    check_images(images)
    check_generator(generator, images.device)
    augs = list((DRAEM_AUGMENTATIONS if ops is None else ops).values())
    if not 0 <= n_ops <= len(augs):
        raise ValueError(f"n_ops must be between 0 and {len(augs)}, got {n_ops}.")
    # n_ops distinct operations in random order: the first columns of a random permutation
    choices = torch.rand(images.shape[0], len(augs), generator=generator, device=images.device).argsort(1)[:, :n_ops]
    table = choices.tolist()  # one host round trip: which samples run which operation
    x = images.clone()
    for step in range(n_ops):
        for k, aug in enumerate(augs):  # each operation once per step, on the samples that chose it
            rows = [i for i, chain in enumerate(table) if chain[step] == k]
            if rows:
                x[rows] = aug(x[rows], generator)
    return (x, choices) if return_choices else x


__all__ = [
    "DRAEM_AUGMENTATIONS", "Augmentation", "Coin", "Integers", "Uniform", "affine_rotate", "apply_lut",
    "autocontrast", "autocontrast_lut", "draem_augment", "equalize", "equalize_lut", "gamma_contrast",
    "histograms", "hue_saturation", "invert", "level_index", "multiply_add_brightness", "posterize", "sharpness",
    "solarize",
]
