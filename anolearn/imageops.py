"""Small image helpers shared by the whole library: input checks and grey values.

Every image function of anolearn (forgers, saliency maps, losses) takes a batch ``(B, 3, H, W)``
of floats in [0, 1]; :func:`check_images` is the one check they all run, so a wrong input
fails with the same clear message everywhere. Saliency maps and masks are ``(B, 1, H, W)``
(:func:`check_maps`).

Two different "grey images" appear in the book, and they are not interchangeable:

* :func:`luma` -- the BT.601 luma ``Y = 0.299 R + 0.587 G + 0.114 B`` (:data:`LUMA_WEIGHTS`),
  the grey value of a colour as the eye weighs it, as torchvision's ``rgb_to_grayscale`` and
  PIL's ``convert("L")``. The DRAEM augmentations (brightness), ColorJitter (contrast,
  saturation) and the spectral-residual saliency use it;
* :func:`channel_mean` -- the plain mean of the channels, ``(R + G + B) / 3``, which RIAD's and
  SSM's code use before the gradient magnitude of MS-GMS (:mod:`anolearn.nn.msgms`).
"""
from __future__ import annotations

import torch

#: ITU-R BT.601 weights of R, G and B in the luma, as torchvision's ``rgb_to_grayscale``.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def check_images(images: torch.Tensor, name: str = "images") -> None:
    """Raise a clear error unless ``images`` is a floating ``(B, 3, H, W)`` tensor."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(images).__name__}.")
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"{name} must have shape (B, 3, H, W), got {tuple(images.shape)}.")
    if not images.is_floating_point():
        raise TypeError(f"{name} must be float in [0, 1], got dtype {images.dtype} "
                        "(convert uint8 images with images.float() / 255).")


def check_maps(maps: torch.Tensor, name: str = "saliency") -> None:
    """Raise a clear error unless ``maps`` is a floating ``(B, 1, H, W)`` tensor."""
    if not isinstance(maps, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(maps).__name__}.")
    if maps.dim() != 4 or maps.shape[1] != 1:
        raise ValueError(f"{name} must have shape (B, 1, H, W), got {tuple(maps.shape)}.")
    if not maps.is_floating_point():
        raise TypeError(f"{name} must be a float tensor, got dtype {maps.dtype}.")


def luma(images: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB -> ``(B, 1, H, W)``: the BT.601 luma ``0.299 R + 0.587 G + 0.114 B``.

    Works on any ``(B, 3, ...)`` tensor (e.g. ``(B, 3, 1, L)`` packed pixels)."""
    r, g, b = images[:, 0:1], images[:, 1:2], images[:, 2:3]
    return LUMA_WEIGHTS[0] * r + LUMA_WEIGHTS[1] * g + LUMA_WEIGHTS[2] * b


def channel_mean(images: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, 1, H, W)``: the plain mean over the channels (RIAD's and SSM's
    grey image; not the luma)."""
    return images.mean(1, keepdim=True)


__all__ = ["LUMA_WEIGHTS", "channel_mean", "check_images", "check_maps", "luma"]
