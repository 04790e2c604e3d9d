"""Spectral-residual saliency: what is *unexpected* in an image's spectrum stands out.

Hou and Zhang, "Saliency Detection: A Spectral Residual Approach", CVPR 2007. The log
amplitude spectrum of natural images is smooth on average (it falls roughly like ``1 / f``);
what an image *adds* to that smooth trend -- the spectral residual -- carries the unusual,
hence salient, parts. With ``F`` the 2-D Fourier transform of a small grey image ``I``:

.. math::

    A(f) = \\log |F[I](f)|, \\qquad P(f) = \\arg F[I](f),

    R(f) = A(f) - (h_3 * A)(f) \\qquad (h_3 = 3 \\times 3 \\text{ mean filter}),

    S(x) = g * \\big| F^{-1}[\\exp(R(f) + i P(f))] \\big|^2 .

The phase is kept, the amplitude replaced by ``exp(R)``: the inverse transform keeps the
places where the image departs from the "average" spectrum. ``g`` is a Gaussian that turns
scattered peaks into blobs. The paper works on a tiny image (64 px wide), which also makes
the map fast and favours object-sized structures over fine texture; we do the same and
upsample the result.

Choices (all parameters):

* working size: width ``size = 64`` px, height scaled to keep the aspect ratio (the paper);
  downsampling is bilinear with antialiasing;
* the mean filter replicates the spectrum's borders (as the widely circulated five-line
  reference code does);
* ``sigma = 2.5`` px at the working size for ``g`` (the paper only says a Gaussian; 2.5 px is
  the value of the circulated reference code);
* a noise floor inside the log, ``A = log(|F| + floor * mean|F|)`` with ``floor = 0.01``. The
  paper takes ``log |F|``; an exactly zero coefficient then gives ``-inf``, and drawn shapes
  whose size divides the image size (an 8 px square in a 64 px image) have many exact zeros
  (the nulls of a sinc) that turn into deep spikes of the log spectrum and swamp the residual.
  The floor removes them; on scikit-image's photographs at 64 px it touches fewer than 0.2 % of
  the coefficients;
* a perfectly flat image has nothing salient: its map is all zeros;
* the map is upsampled bilinearly to the input size and min-max normalised per image, so it
  lies in [0, 1] (a flat input gives an all-zero map).

Everything is batched: one ``torch.fft.fft2`` over the whole batch. On a texture the map is
busy everywhere (there is no single unexpected thing); on an object it lights up the object's
outline and details, which is why the foreground stand-in (:mod:`.foreground`) combines it
with a figure/ground mask.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..filters import gaussian_blur
from ..imageops import check_images, luma
from .common import minmax_normalize


def working_size(height: int, width: int, size: int) -> tuple[int, int]:
    """``(h, w)`` with ``w = size`` and ``h`` scaled to keep the aspect ratio (at least 1)."""
    return max(1, round(height * size / width)), size


def spectral_residual(images: torch.Tensor, size: int | None = 64, sigma: float = 2.5, avg: int = 3,
                      floor: float = 0.01, upsample: bool = True) -> torch.Tensor:
    """Spectral-residual saliency maps of a batch.

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1] (or ``(B, 1, H, W)`` grey).
        size: width of the working image in pixels (the paper: 64); ``None`` = full size.
        sigma: std of the Gaussian that smooths the squared reconstruction, in working pixels
            (0 = none).
        avg: side of the mean filter applied to the log amplitude (odd; the paper: 3).
        floor: noise floor added to ``|F|`` before the log, as a fraction of the image's mean
            amplitude (0 = the paper's plain ``log |F|``, up to a tiny constant).
        upsample: return maps at ``(H, W)`` (True) or at the working size (False).

    Returns:
        ``(B, 1, H, W)`` float in [0, 1], min-max normalised per image.

    Example:
        >>> x = torch.full((1, 3, 64, 64), 0.2); x[:, :, 28:36, 28:36] = 1.0
        >>> s = spectral_residual(x)
        >>> s.shape, float(s[0, 0, 32, 32]) > float(s[0, 0, 5, 5])
        (torch.Size([1, 1, 64, 64]), True)
    """
    if images.dim() == 4 and images.shape[1] == 1:
        gray = images
    else:
        check_images(images)
        gray = luma(images)  # (B, 1, H, W)
    if avg % 2 != 1 or avg < 1:
        raise ValueError(f"avg must be an odd positive window size, got {avg}.")
    b, _, h, w = gray.shape
    if size is not None and size != w:
        hs, ws = working_size(h, w, size)
        small = F.interpolate(gray, size=(hs, ws), mode="bilinear", align_corners=False, antialias=True)
    else:
        small = gray
    dtype = torch.float64 if small.dtype == torch.float64 else torch.float32
    spectrum = torch.fft.fft2(small.to(dtype))  # (B, 1, h, w) complex
    amp = spectrum.abs()  # (B, 1, h, w)
    log_amp = torch.log(amp + floor * amp.mean(dim=(-2, -1), keepdim=True) + 1e-12)  # A(f)
    r = avg // 2
    smooth = F.avg_pool2d(F.pad(log_amp, (r, r, r, r), mode="replicate"), avg, stride=1)  # h_3 * A
    residual = log_amp - smooth  # R(f)
    phase = torch.angle(spectrum)  # P(f)
    recon = torch.fft.ifft2(torch.polar(torch.exp(residual), phase))  # F^-1[exp(R + iP)]
    sal = recon.abs() ** 2  # (B, 1, h, w)
    sal = gaussian_blur(sal, sigma) if sigma > 0 else sal
    flat = (small.flatten(1).amax(1) - small.flatten(1).amin(1)) < 1e-6  # (B,) nothing to see
    sal = torch.where(flat.view(b, 1, 1, 1), torch.zeros_like(sal), minmax_normalize(sal))
    if upsample and sal.shape[-2:] != (h, w):
        sal = F.interpolate(sal, size=(h, w), mode="bilinear", align_corners=False)
        sal = minmax_normalize(sal)
    return sal.to(images.dtype)


class SpectralResidual:
    """Callable saliency source: :func:`spectral_residual` with its parameters fixed.

    Example:
        >>> source = SpectralResidual(size=64)
        >>> source(torch.rand(2, 3, 96, 96)).shape
        torch.Size([2, 1, 96, 96])
    """

    def __init__(self, size: int | None = 64, sigma: float = 2.5, avg: int = 3, floor: float = 0.01):
        self.params = dict(size=size, sigma=sigma, avg=avg, floor=floor)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return spectral_residual(images, **self.params)

    def __repr__(self) -> str:
        return f"SpectralResidual({', '.join(f'{k}={v}' for k, v in self.params.items())})"


__all__ = ["SpectralResidual", "spectral_residual", "working_size"]
