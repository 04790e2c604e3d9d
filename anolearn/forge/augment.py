"""Batched photometric and geometric augmentations for forging, in plain torch.

DRAEM (Zavrtanik et al., ICCV 2021) does not paste raw textures: before blending a texture
into a normal image, its official code passes the texture through **three** augmentations
drawn without replacement, in random order, from a list of ten (imgaug operations):

====  =========================  ===================================================
 #    DRAEM / imgaug              here (``x`` in [0, 1], one draw per sample)
====  =========================  ===================================================
 1    GammaContrast(0.5, 2.0)    ``x ** g``, ``g ~ U(0.5, 2)`` per channel
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
====  =========================  ===================================================

Every operation draws its parameters per sample from a ``torch.Generator``, works on a
whole batch at once and keeps values in [0, 1]. :func:`draem_augment` applies three of them
to each sample; the only host round trip is one read of the ``(B, 3)`` table of choices, so
that each operation runs once per step on the samples that chose it. With ``where`` (a mask
of the pixels that will be used, as in DRAEM's blend) the chain is evaluated exactly at those
pixels only: whole images up to the last step that reads a whole image (sharpness and rotation
read a neighbourhood, autocontrast and equalize a histogram), then the remaining pointwise
steps on the masked pixels alone. The whole images can be dense tensors or palettes of
distinct colours (:mod:`anolearn.forge.palette`); the loop that runs the chains
(:func:`_run_chains`) does not mind which.

Deviations from imgaug, for speed and simplicity: we work in float RGB, not uint8 (the
histogram operations quantise to 256 levels internally, as PIL does); brightness changes the
luma of the YCbCr space only (imgaug picks one of six colour spaces at random); hue and
saturation are shifted in HSV with hue as a fraction of a full turn (OpenCV's 0-180 hue,
which imgaug uses, maps the same way).

The module also holds :func:`color_jitter` (torchvision's ColorJitter, batched, used by
CutPaste and AnoSeg; :func:`jitter_factors` and :func:`apply_jitter` split it into drawing and
applying, so a patch can be jittered with the draw of its whole image), :func:`rotate` and the small helpers every forger shares for checking
inputs and drawing random numbers.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

# One input check for every image function of the library (saliency maps and forgers alike).
from ..imageops import check_images

_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as torchvision's rgb_to_grayscale


# ----------------------------------------------------------------------------- shared helpers
def check_generator(generator: torch.Generator | None, device: torch.device) -> None:
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


# ----------------------------------------------------------------------------- colour spaces
def luma(images: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W) -> (B, 1, H, W)``: BT.601 grey value."""
    r, g, b = images.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


def rgb_to_hsv(images: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in [0, 1] -> HSV, all three in [0, 1] (hue as a fraction of a turn)."""
    return torch.stack(_hsv(images), 1)


def _hsv(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r, g, b = images.unbind(1)
    maxc = torch.maximum(torch.maximum(r, g), b)  # (B, H, W)
    delta = maxc - torch.minimum(torch.minimum(r, g), b)
    s = delta / maxc.clamp_min(1e-12)  # 0 where the pixel is black (delta is 0 there too)
    d = delta.clamp_min(1e-12)  # grey pixels: every numerator below is 0, so hue is 0
    # hue * 6 = (g - b) / d if r is the maximum, else 2 + (b - r) / d if g is, else 4 + (r - g) / d;
    # the branch is chosen with 0/1 weights (torch.where is several times slower on the CPU)
    is_r = (maxc == r).to(images.dtype)
    is_g = (maxc == g).to(images.dtype).mul_(1.0 - is_r)
    is_b = (1.0 - is_r).sub_(is_g)
    h = (g - b).mul_(is_r).add_((b - r).mul_(is_g)).add_((r - g).mul_(is_b)).div_(d)
    h = h.add_(is_g.mul_(2.0)).add_(is_b.mul_(4.0)).div_(6.0)
    return h.add_((h < 0).to(h.dtype)), s, maxc  # negative hues wrap round: h + 1


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_hsv`, branch-free: channel ``n`` in (R, G, B) = (5, 3, 1) is
    ``v - v s clamp(min(k, 4 - k), 0, 1)`` with ``k = (n + 6 h) mod 6``."""
    return _rgb(hsv[:, 0:1], hsv[:, 1:2], hsv[:, 2:3])


def _rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` hue in [0, 1), saturation, value -> ``(B, 3, H, W)`` RGB."""
    n = torch.tensor([5.0, 3.0, 1.0], device=h.device, dtype=h.dtype).view(1, 3, 1, 1)
    k = n + 6.0 * h  # (B, 3, H, W) in [n, n + 6)
    k.sub_((k >= 6.0).to(k.dtype).mul_(6.0))  # mod 6 (in place: big allocations are slow on the CPU)
    t = torch.minimum(k, 4.0 - k).clamp_(0, 1).mul_(v * s)
    return t.neg_().add_(v)  # v - v s clamp(min(k, 4 - k), 0, 1)


# ----------------------------------------------------------------------------- colour jitter
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
        grey_mean: ``(B,)`` grey level contrast pulls towards; default the mean grey of each
            image after the brightness change (torchvision). A patch cut from a bigger image
            can pass that image's value.

    Returns:
        ``(B, 3, H, W)`` float in [0, 1].
    """
    b = images.shape[0]
    x = images

    def col(t: torch.Tensor, dims: int = 4) -> torch.Tensor:
        return t.to(x.dtype).view(b, *([1] * (dims - 1)))

    if jitter.brightness is not None:
        x = (x * col(jitter.brightness)).clamp_(0, 1)
    if jitter.contrast is not None:
        mean = luma(x).mean((1, 2, 3)) if grey_mean is None else grey_mean
        c = col(jitter.contrast)
        x = (c * x + (1 - c) * col(mean)).clamp_(0, 1)
    if jitter.saturation is not None:
        s = col(jitter.saturation)
        x = (s * x + (1 - s) * luma(x)).clamp_(0, 1)
    if jitter.hue is not None:
        h, s, v = _hsv(x)
        x = _rgb(((h + col(jitter.hue, 3)) % 1.0).unsqueeze(1), s.unsqueeze(1), v.unsqueeze(1)).clamp_(0, 1)
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


# ----------------------------------------------------------------------------- geometry
def _normalised(i: torch.Tensor, n: int, align_corners: bool) -> torch.Tensor:
    """Pixel indices (float) along an axis of ``n`` pixels -> grid_sample's [-1, 1] coordinates."""
    if align_corners:
        return i * (2.0 / (n - 1)) - 1.0 if n > 1 else i
    return (2.0 * i + 1.0) / n - 1.0


def _affine_points(theta: torch.Tensor, xn: torch.Tensor, yn: torch.Tensor) -> torch.Tensor:
    """``theta @ (x, y, 1)`` for normalised coordinates ``xn``, ``yn`` of shapes ``(1 or B, P, Q)``
    broadcasting to ``(B, P, Q)``; returns ``(B, P, Q, 2)`` as ``(x, y)``."""
    b = theta.shape[0]
    shape = (b, max(xn.shape[1], yn.shape[1]), max(xn.shape[2], yn.shape[2]))
    grid = torch.empty(*shape, 2, device=theta.device, dtype=theta.dtype)
    coef = theta.reshape(b, 6, 1, 1).unbind(1)  # theta[k, j] as (B, 1, 1) views, at 3 k + j
    for k in range(2):  # grid[..., k] = theta[k, 0] x + theta[k, 1] y + theta[k, 2]
        torch.add(coef[3 * k] * xn + coef[3 * k + 2], coef[3 * k + 1] * yn, out=grid[..., k])
    return grid


def affine_grid(theta: torch.Tensor, height: int, width: int, align_corners: bool = False) -> torch.Tensor:
    """``F.affine_grid(theta, (B, C, H, W), align_corners)`` built by broadcasting.

    The sampling point of output pixel ``(y, x)`` is ``theta @ (x_n, y_n, 1)``, a sum of a
    per-column and a per-row term, so the grid is two outer sums instead of torch's
    ``(B, H W, 3) x (B, 3, 2)`` matrix product (several times faster on the CPU; same values
    up to float rounding).

    Args:
        theta: ``(B, 2, 3)`` affine maps in normalised coordinates.
        height, width: output size.
        align_corners: as :func:`torch.nn.functional.affine_grid`.

    Returns:
        ``(B, H, W, 2)`` sampling grid as ``(x, y)`` in [-1, 1] coordinates.
    """
    kw = dict(device=theta.device, dtype=theta.dtype)
    xn = _normalised(torch.arange(width, **kw), width, align_corners).view(1, 1, width)
    yn = _normalised(torch.arange(height, **kw), height, align_corners).view(1, height, 1)
    return _affine_points(theta, xn, yn)


def _rotation_theta(degrees: torch.Tensor, height: int, width: int, dtype: torch.dtype) -> torch.Tensor:
    """``(B, 2, 3)`` maps (output -> input, normalised coordinates) turning an image about its centre."""
    t = torch.deg2rad(degrees.to(dtype))
    cos, sin = torch.cos(t), torch.sin(t)
    # affine_grid maps output to input in normalised coordinates; rotating in *pixels* on a
    # non-square image needs the aspect correction S^-1 R S with S = diag(W/2, H/2).
    theta = torch.zeros(degrees.shape[0], 2, 3, device=degrees.device, dtype=dtype)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * height / width
    theta[:, 1, 0], theta[:, 1, 1] = sin * width / height, cos
    return theta


def rotate(images: torch.Tensor, degrees: torch.Tensor, padding_mode: str = "zeros",
           mode: str = "bilinear") -> torch.Tensor:
    """Rotate each image about its centre by its own angle (counter-clockwise on screen).

    Args:
        images: ``(B, C, H, W)`` float.
        degrees: ``(B,)`` angles in degrees.
        padding_mode: what fills the corners: ``"zeros"`` (black, as imgaug's default that
            DRAEM uses), ``"border"`` or ``"reflection"``.
        mode: ``"bilinear"`` or ``"nearest"``.

    Returns:
        ``(B, C, H, W)``.
    """
    _, _, h, w = images.shape
    grid = affine_grid(_rotation_theta(degrees, h, w, images.dtype), h, w, align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(images, grid, mode=mode, padding_mode=padding_mode, align_corners=False)


# ----------------------------------------------------------------------------- the ten DRAEM operations
def _level_bins(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, ...)`` float in [0, 1] -> ``(B, C, N)`` int32: each value's 8-bit level
    ``round(255 clamp(x, 0, 1))`` (as PIL quantises), plus ``256 (C i + j)`` for channel ``j`` of
    image ``i``, so that one ``bincount`` or one table lookup serves every channel at once. The
    numbers are made in float, where they are exact integers (below 2**24), and cast once to
    int32: fewer and smaller temporaries than long levels."""
    b, c = x.shape[:2]
    dtype = x.dtype if b * c * 256 <= 2 ** 24 else torch.float64
    offset = torch.arange(b * c, device=x.device, dtype=dtype).view(b, c, 1) * 256
    levels = torch.clamp(x.reshape(b, c, -1).to(dtype), 0, 1).mul_(255).round_()
    return levels.add_(offset).to(torch.int32)


def _histograms(x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """``(B, 3, ...)`` float in [0, 1] -> ``(B, 3, 256)`` long: pixels per 8-bit level in each
    channel; ``weights`` ``(B, N)`` (or ``(B, 3, N)``, channel by channel) counts each of the
    ``N`` values of an image that many times (a palette's colours, weighted by how many pixels
    carry them)."""
    b, c = x.shape[:2]
    if weights is not None:
        weights = (weights.unsqueeze(1) if weights.dim() == 2 else weights).expand(b, c, -1).reshape(-1)
    counts = torch.bincount(_level_bins(x).reshape(-1), weights=weights, minlength=b * c * 256).view(b, c, 256)
    # weighted sums of integer counts below 2**24 are exact in float
    return counts if weights is None else counts.round().long()


def _apply_lut(x: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """Map the 8-bit levels of ``x`` ``(B, 3, ...)`` through ``(B, 3, 256)`` integer tables;
    returns ``x``'s dtype and shape, in [0, 1]."""
    table = lut.reshape(-1).to(x.dtype) / 255.0  # scale the 256 entries, not the pixels
    return table.index_select(0, _level_bins(x).reshape(-1)).view(x.shape)


def gamma_contrast(x: torch.Tensor, generator: torch.Generator | None = None,
                   gamma: tuple[float, float] = (0.5, 2.0)) -> torch.Tensor:
    """``x ** g`` with ``g ~ U(gamma)`` per sample and channel."""
    g = uniform(*gamma, (x.shape[0], 3, 1, 1), generator, x.device, x.dtype)
    return torch.clamp(x, 0, 1).pow_(g)


def multiply_add_brightness(x: torch.Tensor, generator: torch.Generator | None = None,
                            mul: tuple[float, float] = (0.8, 1.2),
                            add: tuple[float, float] = (-30 / 255, 30 / 255)) -> torch.Tensor:
    """Luma ``Y -> m Y + a``; in YCbCr a change of ``Y`` alone moves R, G and B by the same amount."""
    b = x.shape[0]
    m = uniform(*mul, (b, 1, 1, 1), generator, x.device, x.dtype)
    a = uniform(*add, (b, 1, 1, 1), generator, x.device, x.dtype)
    y = luma(x)
    return (x + (m * y + a).clamp_(0, 1)).sub_(y).clamp_(0, 1)


def sharpness(x: torch.Tensor, generator: torch.Generator | None = None,
              factor: tuple[float, float] = (0.0, 2.0)) -> torch.Tensor:
    """PIL ``ImageEnhance.Sharpness``: ``s + f (x - s)``, ``s`` = x smoothed by
    ``[[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13`` (border pixels keep their value)."""
    b = x.shape[0]
    inner = x[..., 1:-1, 1:-1]
    # the kernel is a 3 x 3 box sum plus 4 x the centre; the box sum is separable
    rows = (x[..., :-2, :] + x[..., 1:-1, :]).add_(x[..., 2:, :])  # (B, 3, H - 2, W)
    smooth = (rows[..., :-2] + rows[..., 1:-1]).add_(rows[..., 2:])  # (B, 3, H - 2, W - 2) box sum
    smooth.add_(inner, alpha=4.0).mul_(1.0 / 13.0)  # in place: fewer large allocations
    f = uniform(*factor, (b, 1, 1, 1), generator, x.device, x.dtype)
    out = x.clone()
    out[..., 1:-1, 1:-1] = smooth.lerp_(inner, f).clamp_(0, 1)
    return out


def hue_saturation(x: torch.Tensor, generator: torch.Generator | None = None,
                   value: tuple[float, float] = (-50 / 255, 50 / 255)) -> torch.Tensor:
    """Add ``U(value)`` of a turn to the hue and, independently drawn, ``U(value)`` to the saturation."""
    b = x.shape[0]
    dh = uniform(*value, (b, 1, 1), generator, x.device, x.dtype)
    ds = uniform(*value, (b, 1, 1), generator, x.device, x.dtype)
    h, s, v = _hsv(x.clamp(0, 1))
    return _rgb(((h + dh) % 1.0).unsqueeze(1), (s + ds).clamp_(0, 1).unsqueeze(1), v.unsqueeze(1)).clamp_(0, 1)


def solarize(x: torch.Tensor, generator: torch.Generator | None = None, p: float = 0.5,
             threshold: tuple[float, float] = (32 / 255, 128 / 255)) -> torch.Tensor:
    """With probability ``p``: invert every value at or above ``t ~ U(threshold)``."""
    b = x.shape[0]
    on = coin(p, (b, 1, 1, 1), generator, x.device)
    t = uniform(*threshold, (b, 1, 1, 1), generator, x.device, x.dtype)
    return torch.where(on & (x >= t), 1.0 - x, x)


def posterize(x: torch.Tensor, generator: torch.Generator | None = None,
              bits: tuple[int, int] = (1, 8)) -> torch.Tensor:
    """Keep the ``n ~ U{bits}`` most significant bits of each 8-bit value (PIL's posterize)."""
    n = torch.randint(bits[0], bits[1] + 1, (x.shape[0], 1, 1, 1), generator=generator, device=x.device)
    step = (2.0 ** (8 - n)).to(x.dtype)  # (B, 1, 1, 1) levels per bin
    levels = (x.clamp(0, 1) * 255).round_()
    return torch.floor(levels / step).mul_(step / 255.0)


def invert(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``1 - x`` (no random parameter; ``generator`` is accepted for a uniform signature)."""
    return 1.0 - x


def _autocontrast_lut(hist: torch.Tensor, generator: torch.Generator | None = None,
                      cutoff: tuple[float, float] = (0.0, 0.2)) -> torch.Tensor:
    """Autocontrast's ``(B, 3, 256)`` look-up table from the ``(B, 3, 256)`` histograms."""
    n = hist.sum(-1, keepdim=True)  # (B, 3, 1)
    c = uniform(*cutoff, (hist.shape[0], 1, 1), generator, hist.device, torch.float32)
    cut = (n.float() * c).floor().long()  # pixels to ignore at each end
    cdf = hist.cumsum(-1)
    lo = (cdf > cut).float().argmax(-1, keepdim=True)  # first level kept
    tail = n - cdf + hist  # pixels at or above each level
    hi = 255 - (tail.flip(-1) > cut).float().argmax(-1, keepdim=True)  # last level kept
    ramp = torch.arange(256, device=hist.device).view(1, 1, 256)
    scale = 255.0 / (hi - lo).clamp_min(1).float()
    lut = ((ramp - lo).float() * scale).round().clamp(0, 255).long()
    return torch.where(hi > lo, lut, ramp.expand_as(lut))  # flat channel: leave unchanged


def autocontrast(x: torch.Tensor, generator: torch.Generator | None = None,
                 cutoff: tuple[float, float] = (0.0, 0.2)) -> torch.Tensor:
    """PIL ``ImageOps.autocontrast``: per channel, ignore a fraction ``c ~ U(cutoff)`` of the
    darkest and of the brightest pixels and stretch the remaining range to [0, 1]."""
    return _apply_lut(x, _autocontrast_lut(_histograms(x), generator, cutoff))


def _equalize_lut(hist: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Equalize's ``(B, 3, 256)`` look-up table from the ``(B, 3, 256)`` histograms."""
    n = hist.sum(-1, keepdim=True)
    ramp = torch.arange(256, device=hist.device).view(1, 1, 256)
    last = torch.where(hist > 0, ramp, torch.zeros_like(ramp)).amax(-1, keepdim=True)  # brightest used level
    step = (n - hist.gather(-1, last)) // 255  # (B, 3, 1)
    below = hist.cumsum(-1) - hist
    lut = ((below + step // 2) // step.clamp_min(1)).clamp(max=255)
    return torch.where(step > 0, lut, ramp.expand_as(lut))


def equalize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """PIL ``ImageOps.equalize`` per channel: level ``i -> (n_below(i) + step // 2) // step`` with
    ``step = (N - count of the brightest used level) // 255``."""
    return _apply_lut(x, _equalize_lut(_histograms(x)))


def affine_rotate(x: torch.Tensor, generator: torch.Generator | None = None,
                  degrees: tuple[float, float] = (-45.0, 45.0)) -> torch.Tensor:
    """Rotate by ``U(degrees)`` about the centre; corners filled with black (imgaug's default)."""
    angles = uniform(*degrees, (x.shape[0],), generator, x.device, x.dtype)
    return rotate(x, angles, padding_mode="zeros").clamp(0, 1)


# ----------------------------------------------------------------------------- whole image in, some pixels out
# Sharpness and rotation need their whole input image, but their output at a pixel is a small
# stencil of it. When only some output pixels are wanted (draem_augment's ``where``), these
# compute just those, reading the input through a *reader* with three methods:
#   locate(yy, xx) -> loc       where pixels (yy, xx) (B, L) are stored,
#   shift(loc, dy, dx) -> loc   where their neighbours (yy + dy, xx + dx) are,
#   read(loc) -> (B, C, L)      the values stored there.
# A dense image is read with one flat index_select (DenseReader); a palette or level-table image
# (anolearn.forge.palette) looks its pixels up in the bank, so the same stencil code serves all.
class DenseReader:
    """Reads pixels of a dense ``(B, C, H, W)`` batch, or of its images ``rows`` (a slice or a
    list of indices); locations are flat pixel indices."""

    def __init__(self, x: torch.Tensor, rows: slice | list[int] | None = None):
        _, self.c, self.h, self.w = x.shape
        self.dtype, self.device = x.dtype, x.device
        if isinstance(rows, slice):
            x = x[rows]
        # read in place, one flat index_select: channel c of pixel loc of image i sits at
        # (i C + c) H W + loc of the flattened batch (the listed rows of it, for a list)
        index = torch.arange(x.shape[0], device=x.device) if rows is None or isinstance(rows, slice) else \
            torch.tensor(rows, device=x.device)
        self.b, self._flat = index.numel(), x.reshape(-1)
        channels = torch.arange(self.c, device=x.device)
        self._start = (index.view(-1, 1, 1) * self.c + channels.view(1, -1, 1)) * (self.h * self.w)  # (n, C, 1)

    def locate(self, yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        return yy * self.w + xx

    def shift(self, loc: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
        return loc + (dy * self.w + dx)

    def read(self, loc: torch.Tensor) -> torch.Tensor:
        at = loc.unsqueeze(1) + self._start  # (n, C, L)
        return self._flat.index_select(0, at.view(-1)).view(at.shape)


def _reader(x):
    return DenseReader(x) if isinstance(x, torch.Tensor) else x


def _sharpness_at(x, ys: torch.Tensor, xs: torch.Tensor, generator: torch.Generator | None = None,
                  factor: tuple[float, float] = (0.0, 2.0)) -> torch.Tensor:
    """:func:`sharpness` of ``x`` (a ``(B, 3, H, W)`` batch or a reader) at pixels ``(ys, xs)``
    ``(B, L)``: ``(B, 3, 1, L)``, with the same draws and float operations as the full version."""
    x = _reader(x)
    b, h, w, n = x.b, x.h, x.w, ys.shape[1]
    f = uniform(*factor, (b, 1, 1, 1), generator, x.device, x.dtype).view(b, 1, 1)
    if h < 3 or w < 3:
        return x.read(x.locate(ys, xs)).unsqueeze(2)
    centre = x.locate(ys.clamp(1, h - 2), xs.clamp(1, w - 2))  # border pixels keep their value (below)
    # the 3 x 3 neighbourhood of every pixel in one read: (B, 3, 9 L), neighbour (dy, dx) at block 3 (dy + 1) + dx + 1
    near = x.read(torch.cat([x.shift(centre, dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], 1)).view(b, -1, 9, n)
    rows = [(near[:, :, dx] + near[:, :, 3 + dx]).add_(near[:, :, 6 + dx]) for dx in range(3)]
    smooth = (rows[0] + rows[1]).add_(rows[2])  # the same sums, in the same order, as sharpness
    inner = near[:, :, 4]
    out = smooth.add_(inner, alpha=4.0).mul_(1.0 / 13.0).lerp_(inner, f).clamp_(0, 1)
    # border pixels keep their own value; read it where it differs from the clamped centre's
    # (no host round trip to skip this: the padding slots sit at pixel 0, so nearly every call has some)
    border = ((ys == 0) | (ys == h - 1) | (xs == 0) | (xs == w - 1)).unsqueeze(1)
    return torch.where(border, x.read(x.locate(ys, xs)), out).unsqueeze(2)


def bilinear_at(x, gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
    """``F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)`` at
    ``(B, L)`` normalised points ``(gx, gy)``, reading only the four neighbours of each point.

    ``x`` is a ``(B, C, H, W)`` batch or a reader. Point ``(gx, gy)`` sits at pixel coordinates
    ``u = (gx + 1) W / 2 - 1/2``, ``v = (gy + 1) H / 2 - 1/2``; with ``(i, j) = (floor v, floor u)``
    and ``(dv, du)`` the remainders, the value is
    ``(1 - dv)(1 - du) x[i, j] + (1 - dv) du x[i, j + 1] + dv (1 - du) x[i + 1, j] + dv du x[i + 1, j + 1]``,
    neighbours outside the image counting as 0. The arithmetic follows torch's compiled CPU
    kernel, fused multiply-adds included, so on x86 CPUs it gives the very floats of
    ``grid_sample`` (the tests check); elsewhere the last bit may differ. Returns ``(B, C, L)``.
    """
    x = _reader(x)
    h, w, n = x.h, x.w, gx.shape[1]
    u = torch.addcmul(torch.full_like(gx, -0.5), gx + 1.0, torch.full_like(gx, w / 2))  # pixel coordinates
    v = torch.addcmul(torch.full_like(gy, -0.5), gy + 1.0, torch.full_like(gy, h / 2))
    j0, i0 = u.floor(), v.floor()
    du, dv = u - j0, v - i0
    eu, ev = 1.0 - du, 1.0 - dv
    # the four corners nw, ne, sw, se at once, as (B, 4, L)
    ii = i0.long().unsqueeze(1) + torch.tensor([0, 0, 1, 1], device=i0.device).view(1, 4, 1)
    jj = j0.long().unsqueeze(1) + torch.tensor([0, 1, 0, 1], device=j0.device).view(1, 4, 1)
    inside = (ii >= 0) & (ii < h) & (jj >= 0) & (jj < w)  # zero padding: weight 0 outside
    weights = torch.stack([ev * eu, ev * du, dv * eu, dv * du], 1).mul_(inside)
    loc = x.locate(ii.clamp_(0, h - 1).view(x.b, -1), jj.clamp_(0, w - 1).view(x.b, -1))  # corner-major
    vals = x.read(loc).view(x.b, -1, 4, n)  # the four neighbours in one read
    out = vals[:, :, 0] * weights[:, 0:1]
    for k in (1, 2, 3):
        out = torch.addcmul(out, vals[:, :, k], weights[:, k:k + 1])
    return out


def _rotate_at(x, ys: torch.Tensor, xs: torch.Tensor, generator: torch.Generator | None = None,
               degrees: tuple[float, float] = (-45.0, 45.0)) -> torch.Tensor:
    """:func:`affine_rotate` of ``x`` (a ``(B, 3, H, W)`` batch or a reader) at pixels
    ``(ys, xs)`` ``(B, L)``: ``(B, 3, 1, L)``."""
    x = _reader(x)
    b, h, w = x.b, x.h, x.w
    angles = uniform(*degrees, (b,), generator, x.device, x.dtype)
    theta = _rotation_theta(angles, h, w, x.dtype)
    xn = _normalised(xs.to(x.dtype), w, False).view(b, 1, -1)
    yn = _normalised(ys.to(x.dtype), h, False).view(b, 1, -1)
    grid = _affine_points(theta, xn, yn)  # (B, 1, L, 2): the full grid's values at those pixels
    return bilinear_at(x, grid[:, 0, :, 0], grid[:, 0, :, 1]).clamp_(0, 1).unsqueeze(2)


#: The ten operations, in the order of DRAEM's ``augmenters`` list.
DRAEM_AUGMENTATIONS: dict[str, Callable[..., torch.Tensor]] = {
    "gamma_contrast": gamma_contrast,
    "brightness": multiply_add_brightness,
    "sharpness": sharpness,
    "hue_saturation": hue_saturation,
    "solarize": solarize,
    "posterize": posterize,
    "invert": invert,
    "autocontrast": autocontrast,
    "equalize": equalize,
    "rotate": affine_rotate,
}


#: How each operation uses its input, for :func:`draem_augment` with ``where``. A pointwise
#: operation needs only the pixel itself. A histogram operation needs its whole input image to
#: build its look-up table, then is pointwise. Sharpness and rotation need their whole input but
#: can give just some output pixels. Anything else (an operation not listed here) is run on
#: whole images.
_POINTWISE = (gamma_contrast, multiply_add_brightness, hue_saturation, solarize, posterize, invert)
_HISTOGRAM = ((autocontrast, _autocontrast_lut), (equalize, _equalize_lut))
_AT_PIXELS = ((sharpness, _sharpness_at), (affine_rotate, _rotate_at))


#: The pointwise operations that act on each channel alone (brightness and hue mix them).
_PER_CHANNEL = (gamma_contrast, solarize, posterize, invert)


def _per_channel(fn: Callable[..., torch.Tensor]) -> bool:
    """True if ``fn`` maps each channel's value through a function of that value alone (given
    its random draws): the per-channel pointwise operations and the histogram operations."""
    base = fn.func if isinstance(fn, functools.partial) and not fn.args else fn
    return any(base is op for op in _PER_CHANNEL) or any(base is op for op, _ in _HISTOGRAM)


def _kind(fn: Callable[..., torch.Tensor]) -> tuple[str, Callable[..., torch.Tensor] | None]:
    """``(kind, helper)`` of an operation: ``("pointwise", None)``, ``("histogram", lut_builder)``,
    ``("at_pixels", pixelwise_version)`` or ``("image", None)``; a ``functools.partial`` of a listed
    operation with keyword arguments is recognised (its keywords go to the helper)."""
    base, kwargs = fn, {}
    if isinstance(fn, functools.partial) and not fn.args:
        base, kwargs = fn.func, dict(fn.keywords)
    if any(base is op for op in _POINTWISE):
        return "pointwise", None
    for kind, pairs in (("histogram", _HISTOGRAM), ("at_pixels", _AT_PIXELS)):
        for op, helper in pairs:
            if base is op:
                return kind, functools.partial(helper, **kwargs)
    return "image", None


def _runs(column: list[int], start: int, stop: int):
    """Maximal ``(a, b, value)`` runs of equal values in ``column[start:stop]``."""
    a = start
    while a < stop:
        b = a + 1
        while b < stop and column[b] == column[a]:
            b += 1
        yield a, b, column[a]
        a = b


def _dense_steps(row: list[int], kinds: list[str]) -> int:
    """How many leading steps of a chain must run on whole images when only some output pixels
    are wanted: every step before a histogram or sharpness/rotation step (they read their whole
    input), and every step up to an unknown operation."""
    need = 0
    for step, k in enumerate(row):
        if kinds[k] == "image":
            need = step + 1
        elif kinds[k] != "pointwise":
            need = max(need, step)
    return need


def _wanted_pixels(where: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Bookkeeping of the wanted pixels of a ``(B, 1, H, W)`` mask (bool, or 0/1 floats).

    Returns ``(rows, pos, slot, where_px, counts)``: wanted pixel ``n`` is flat pixel ``pos[n]``
    of image ``rows[n]``, stored in slot ``slot[n]`` of its image's packed list; ``where_px``
    ``(B, L)`` lists each image's wanted flat pixels (padded with pixel 0 up to ``L``, the largest
    count); ``counts`` (a list) says how many each image has.
    """
    b = where.shape[0]
    hw = where[0].numel() if b else 1
    wanted = where if where.dtype == torch.bool else where > 0.5
    flat = _nonzero(wanted.reshape(-1))  # sorted: each row's pixels are contiguous
    rows = torch.div(flat, hw, rounding_mode="floor")
    pos = flat - rows * hw
    counts = torch.bincount(rows, minlength=b)
    slot = torch.arange(rows.numel(), device=where.device) - (torch.cumsum(counts, 0) - counts)[rows]
    count_list = counts.tolist()  # host round trip
    length = max(count_list, default=0) or 1
    where_px = torch.zeros(b, length, device=where.device, dtype=torch.long)
    where_px.view(-1)[rows * length + slot] = pos
    return rows, pos, slot, where_px, count_list


def _nonzero(flags: torch.Tensor) -> torch.Tensor:
    """``flags.nonzero().squeeze(1)`` for a 1-D bool tensor, faster when few are set.

    A mask is mostly empty (a DRAEM mask covers about 5 % of its image), so the flags are first
    read eight at a time as 64-bit words: only the words with some flag set are unpacked.
    """
    if flags.numel() % 8 or flags.numel() < 64 or flags.storage_offset() % 8 or not flags.is_contiguous():
        return flags.nonzero().squeeze(1)
    hit = flags.view(torch.int64).nonzero().squeeze(1)  # words with a flag set
    inner = flags.view(-1, 8).index_select(0, hit).view(-1).nonzero().squeeze(1)  # 8 flags per such word
    return (hit * 8).index_select(0, inner // 8).add_(inner % 8)


def _take(t: torch.Tensor, rows: slice | list[int]) -> torch.Tensor:
    """Rows of ``t``: a view for a slice, a copy for a list of indices."""
    return t[rows] if isinstance(rows, slice) else t.index_select(0, torch.tensor(rows, device=t.device))


def _put(t: torch.Tensor, rows: slice | list[int], value: torch.Tensor) -> None:
    """Write ``value`` into rows ``rows`` of ``t`` (in place)."""
    if isinstance(rows, slice):
        t[rows] = value
    else:
        t.index_copy_(0, torch.tensor(rows, device=t.device), value)


def _groups(column: list[int], start: int, stop: int) -> list[tuple[int, slice | list[int]]]:
    """For each operation in ``column[start:stop]``, the rows that use it: ``(k, rows)``, rows as
    a slice when they are neighbours, else as a list (one call per operation, not per run)."""
    members: dict[int, list[int]] = {}
    for i in range(start, stop):
        members.setdefault(column[i], []).append(i)
    return [(k, slice(r[0], r[-1] + 1) if r[-1] - r[0] + 1 == len(r) else r) for k, r in members.items()]


class _WholeImages:
    """What every form of whole images offers :func:`_run_chains` besides ``apply``, ``reader``
    and ``histograms``: where the wanted pixels of some rows are, and their values packed
    ``(n, 3, length)``, read through the form's own reader (``where_px`` lists each row's wanted
    flat pixels, ``w`` is the width)."""

    def wanted(self, rows: slice | list[int], length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ys, xs)``, each ``(n, length)``: the first ``length`` wanted pixels of these rows."""
        px = _take(self.where_px, rows)[:, :length]
        return torch.div(px, self.w, rounding_mode="floor"), px % self.w

    def pack(self, rows: slice | list[int], length: int) -> torch.Tensor:
        reader = self.reader(rows)
        return reader.read(reader.locate(*self.wanted(rows, length)))


class _DenseState(_WholeImages):
    """Whole images as a dense ``(B, 3, H, W)`` tensor, for :func:`_run_chains` (updated in place).
    Operations on whole images take runs of neighbouring rows (``any_rows`` False): a slice of
    the batch is a view, a list of rows would be a copy of whole images."""

    any_rows = False

    def __init__(self, x: torch.Tensor, where_px: torch.Tensor):
        self.x, self.where_px = x, where_px
        self.b, _, self.h, self.w = x.shape

    def apply(self, rows: slice, fn, kind: str, helper, generator) -> None:
        self.x[rows] = fn(self.x[rows], generator)

    def reader(self, rows: slice | list[int]) -> DenseReader:
        return DenseReader(self.x, rows)

    def histograms(self, rows: slice | list[int]) -> torch.Tensor:
        return _histograms(_take(self.x, rows))


def _run_chains(state, counts: list[int], packed: torch.Tensor,
                generator: torch.Generator | None, table: list[list[int]], fns: list, kinds: list[tuple]) -> None:
    """Run the chains of ``table`` (rows sorted by decreasing dense steps), exact at the wanted
    pixels, and write those into ``packed`` ``(B, 3, 1, L)``.

    A chain runs on whole images for its first ``d`` steps (:func:`_dense_steps`); from then on
    only the wanted pixels of each image are kept, packed (``L`` = the largest count; pointwise
    operations do not mind the odd shape). Step ``d`` reads the whole image it starts from: a
    histogram operation builds its table there, sharpness and rotation evaluate their stencil
    there. ``state`` holds the whole images (:class:`_DenseState`, or palettes in
    :mod:`anolearn.forge.palette`): it applies an operation to some rows, packs their wanted
    pixels, reads pixels for a stencil and counts histograms. Packed pixels (and palettes) are
    small, so all the rows that use an operation at a step are gathered into one call; dense
    whole images are worked on in runs of neighbouring rows (slices, no copies). ``counts`` (how many pixels
    each row wants) lets each call work on the first ``max(counts)`` slots of its rows only.
    """
    b, n_ops = len(table), len(table[0])
    kind_names = [k for k, _ in kinds]
    dense = [_dense_steps(row, kind_names) for row in table]  # non-increasing down the batch

    def width(rows: slice | list[int]) -> int:  # packed slots in use among these rows
        return max(1, max(counts[rows] if isinstance(rows, slice) else [counts[i] for i in rows]))

    def pack(rows: list[int]) -> None:  # their wanted pixels, from the whole images
        if rows:
            rows = slice(rows[0], rows[-1] + 1) if rows[-1] - rows[0] + 1 == len(rows) else rows
            n = width(rows)
            _put(packed[:, :, 0, :n], rows, state.pack(rows, n))

    for step in range(n_ops):
        column = [row[step] for row in table]
        n_dense = sum(1 for d in dense if d > step)  # rows 0..n_dense-1 still whole
        n_switch = sum(1 for d in dense if d == step)  # rows that become packed at this step
        if state.any_rows:  # all the rows that use an operation, in one call
            whole = _groups(column, 0, n_dense)
        else:  # runs of neighbouring rows: slices of the batch, no copies
            whole = [(k, slice(a, z)) for a, z, k in _runs(column, 0, n_dense)]
        for k, rows in whole:
            state.apply(rows, fns[k], *kinds[k], generator)
        # the rows that switch to packed pixels at this step, except those whose step reads a
        # stencil of the whole image: their wanted pixels, in one go
        pack([i for i in range(n_dense, n_dense + n_switch) if kind_names[column[i]] != "at_pixels"])
        for k, rows in _groups(column, n_dense, b):
            kind, helper = kinds[k]
            n = width(rows)
            if kind == "at_pixels":  # from the whole image (these rows are all switching)
                out = helper(state.reader(rows), *state.wanted(rows, n), generator)
                _put(packed[:, :, :, :n], rows, out)
                continue
            part = _take(packed[:, :, :, :n], rows)
            if kind == "histogram":  # table from the whole image (these rows are all switching)
                lut = helper(state.histograms(rows), generator)
                part = _apply_lut(part, lut)
            else:
                part = fns[k](part, generator)
            _put(packed[:, :, :, :n], rows, part)
    pack(list(range(sum(1 for d in dense if d == n_ops))))  # chains that ran on whole images throughout


def _augment_where(x: torch.Tensor, where: torch.Tensor, generator: torch.Generator | None,
                   table: list[list[int]], fns: list, kinds: list[tuple]) -> tuple[torch.Tensor, ...]:
    """:func:`_run_chains` on a dense batch ``x`` (modified in place).

    Returns:
        ``(packed, rows, pos, slot)``: ``packed`` ``(B, 3, 1, L)`` the finished wanted pixels;
        wanted pixel ``n`` is pixel ``pos[n]`` (flat index) of image ``rows[n]``, stored at
        ``packed[rows[n], :, 0, slot[n]]``.
    """
    rows, pos, slot, where_px, counts = _wanted_pixels(where)
    packed = torch.zeros(x.shape[0], x.shape[1], 1, where_px.shape[1], device=x.device, dtype=x.dtype)
    _run_chains(_DenseState(x, where_px), counts, packed, generator, table, fns, kinds)
    return packed, rows, pos, slot


def _where_order(table: list[list[int]], kinds: list[tuple]) -> list[int]:
    """Row order for :func:`_run_chains`: most whole-image steps first, then by the chain."""
    names = [k for k, _ in kinds]
    return sorted(range(len(table)), key=lambda i: (-_dense_steps(table[i], names), table[i]))


def draem_augment_pixels(images, where: torch.Tensor, generator: torch.Generator | None = None,
                         n_ops: int = 3, ops: dict[str, Callable[..., torch.Tensor]] | None = None,
                         return_choices: bool = False) -> tuple[torch.Tensor, ...]:
    """DRAEM's augmentation of exchangeable source images, wanted only where ``where`` is set,
    returned packed (what :func:`~anolearn.forge.draem.draem_forge` blends, with no full-size
    write-back).

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1] (overwritten with intermediate values if
            contiguous), or :class:`~anolearn.forge.palette.IndexedImages` (source images kept
            as palette and index: pointwise steps and histograms then cost per colour, and only
            the chains that need a whole image after a sharpness or rotation step are made dense).
        where: ``(B, 1, H, W)`` mask of the wanted pixels.
        generator: random source on the images' device.
        n_ops: operations per sample (DRAEM: 3).
        ops: name -> ``fn(x, generator)``; default :data:`DRAEM_AUGMENTATIONS`.
        return_choices: also return the ``(B, n_ops)`` table of operations (row ``i``: those
            applied to image ``i``, in order).

    With a dense batch, the draws are those of ``draem_augment(images, generator, n_ops,
    exchangeable=True, where=where)``.

    Returns:
        ``(packed, rows, pos, slot)`` (and the choices if asked): wanted pixel ``n`` is flat
        pixel ``pos[n]`` of image ``rows[n]`` and its augmented value is
        ``packed[rows[n], :, 0, slot[n]]`` (``packed`` is ``(B, 3, 1, L)``, ``L`` the largest
        number of wanted pixels in an image).
    """
    dense = isinstance(images, torch.Tensor)
    if dense:
        check_images(images)
    b, _, h, w = images.shape
    dev = images.device
    check_generator(generator, dev)
    fns = list((DRAEM_AUGMENTATIONS if ops is None else ops).values())
    if not 0 <= n_ops <= len(fns):
        raise ValueError(f"n_ops must be between 0 and {len(fns)}, got {n_ops}.")
    if where.shape != (b, 1, h, w):
        raise ValueError(f"where must be a (B, 1, H, W) mask matching the images {(b, 3, h, w)}, "
                         f"got {tuple(where.shape)}.")
    if b == 0 or n_ops == 0:
        rows, pos, slot, where_px, _ = _wanted_pixels(where)
        x = images if dense else images.dense()
        packed = _DenseState(x, where_px).pack(slice(0, b), where_px.shape[1]).unsqueeze(2) if b else x.new_zeros(0, 3, 1, 1)
        choices = torch.zeros(b, n_ops, device=dev, dtype=torch.long)
        return (packed, rows, pos, slot, choices) if return_choices else (packed, rows, pos, slot)
    table = torch.rand(b, len(fns), generator=generator, device=dev).argsort(1)[:, :n_ops].tolist()
    kinds = [_kind(fn) for fn in fns]
    table = [table[i] for i in _where_order(table, kinds)]
    if dense:
        out = _augment_where(images.contiguous(), where, generator, table, fns, kinds)
    else:
        from .palette import augment_indexed  # palette.py builds on this module

        out, table = augment_indexed(images, where, generator, table, fns, kinds)
    if return_choices:
        return (*out, torch.tensor(table, device=dev, dtype=torch.long).view(b, n_ops))
    return out


def draem_augment(images: torch.Tensor, generator: torch.Generator | None = None, n_ops: int = 3,
                  ops: dict[str, Callable[..., torch.Tensor]] | None = None,
                  return_choices: bool = False, inplace: bool = False, exchangeable: bool = False,
                  where: torch.Tensor | None = None):
    """Apply ``n_ops`` distinct operations, in random order, to every sample (DRAEM's recipe).

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1] (anomaly source images).
        generator: random source on the images' device.
        n_ops: operations per sample (DRAEM: 3), at most ``len(ops)``.
        ops: name -> ``fn(x, generator)``; default :data:`DRAEM_AUGMENTATIONS`.
        return_choices: also return the ``(B, n_ops)`` long table of operation indices
            (row ``i``: the operations applied to output ``i``, in order).
        inplace: write into ``images`` (saves a copy when the caller owns the tensor).
        exchangeable: the images are independent draws from a source, so which image gets which
            draw of operations does not matter. The table of draws is then sorted, and samples
            that share an operation are neighbours: each operation runs on slices of the batch
            instead of gathered copies (faster, same distribution).
        where: optional ``(B, 1, H, W)`` mask (bool or 0/1): only the pixels where it is set are
            wanted (DRAEM blends the source inside its Perlin mask only). The output is exact
            there and unspecified (but within [0, 1]) elsewhere. Steps that need whole images
            (sharpness, rotation, the histogram of autocontrast and equalize) still see whole
            images; the pointwise steps after them run on the wanted pixels alone. Implies the
            sorted table of ``exchangeable`` (rows are sorted by how many steps need whole images).

    Returns:
        ``(B, 3, H, W)`` float in [0, 1] (and the choices if asked).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> draem_augment(torch.rand(4, 3, 32, 32), g).shape
        torch.Size([4, 3, 32, 32])
    """
    check_images(images)
    check_generator(generator, images.device)
    ops = DRAEM_AUGMENTATIONS if ops is None else ops
    fns = list(ops.values())
    if not 0 <= n_ops <= len(fns):
        raise ValueError(f"n_ops must be between 0 and {len(fns)}, got {n_ops}.")
    b, dev = images.shape[0], images.device
    if where is not None and (where.dim() != 4 or where.shape[0] != b or where.shape[1] != 1
                              or where.shape[-2:] != images.shape[-2:]):
        raise ValueError(f"where must be a (B, 1, H, W) mask matching the images {tuple(images.shape)}, "
                         f"got {tuple(where.shape)}.")
    # n_ops distinct operations in random order: the first columns of a random permutation.
    choices = torch.rand(b, len(fns), generator=generator, device=dev).argsort(1)[:, :n_ops]
    table = choices.tolist()  # the one host round trip: which samples run which operation
    x = images if inplace else images.clone()
    if where is not None and n_ops > 0 and b > 0:
        x = x.contiguous()
        kinds = [_kind(fn) for fn in fns]
        order = _where_order(table, kinds)
        table = [table[i] for i in order]
        if not exchangeable:  # keep each image with its own draw: run in sorted order, put back
            perm = torch.tensor(order, device=dev, dtype=torch.long)
            y = x.index_select(0, perm)
            packed, rows, pos, slot = _augment_where(y, where.index_select(0, perm), generator, table, fns, kinds)
            y.view(b, 3, -1)[rows, :, pos] = packed[rows, :, 0, slot]  # finished pixels into their images
            x.index_copy_(0, perm, y)  # choices: unchanged
        else:
            packed, rows, pos, slot = _augment_where(x, where, generator, table, fns, kinds)
            x.view(b, 3, -1)[rows, :, pos] = packed[rows, :, 0, slot]
            choices = torch.tensor(table, device=dev, dtype=torch.long).view(b, n_ops)
        return (x, choices) if return_choices else x
    if exchangeable:
        table.sort()
        choices = torch.tensor(table, device=dev, dtype=torch.long).view(b, n_ops)
        for step in range(n_ops):
            column = [row[step] for row in table]
            for a, z, k in _runs(column, 0, b):  # neighbours that share this step's operation
                x[a:z] = fns[k](x[a:z], generator)
        return (x, choices) if return_choices else x
    for step in range(n_ops):
        for k, fn in enumerate(fns):
            rows = [i for i in range(b) if table[i][step] == k]
            if rows:
                idx = torch.tensor(rows, device=dev)
                x.index_copy_(0, idx, fn(x.index_select(0, idx), generator).to(x.dtype))
    return (x, choices) if return_choices else x


__all__ = [
    "DRAEM_AUGMENTATIONS", "DenseReader", "Jitter", "affine_grid", "affine_rotate", "apply_jitter", "bilinear_at", "jitter_factors", "autocontrast", "check_generator", "check_images", "coin",
    "color_jitter", "draem_augment", "draem_augment_pixels", "equalize", "gamma_contrast", "hsv_to_rgb", "hue_saturation", "invert",
    "luma", "multiply_add_brightness", "posterize", "rgb_to_hsv", "rotate", "sharpness", "solarize", "uniform",
]
