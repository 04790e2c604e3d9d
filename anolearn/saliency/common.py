"""Small helpers shared by the saliency modules: checking inputs and normalising maps.

Every saliency function in :mod:`anolearn.saliency` returns maps of shape ``(B, 1, H, W)``
with values in [0, 1], min-max normalised per image, so that maps from different sources
(spectral residual, LayerCAM, a foreground detector) can be compared and swapped.
"""
from __future__ import annotations

import torch

_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights, as torchvision's rgb_to_grayscale


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


def to_gray(images: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB -> ``(B, 1, H, W)`` luma (BT.601)."""
    w = torch.tensor(_LUMA, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return (images * w).sum(dim=1, keepdim=True)


def minmax_normalize(maps: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Rescale each map to [0, 1]: ``(m - min) / (max - min)`` per image.

    Args:
        maps: ``(B, C, H, W)`` float.
        eps: a map whose range is below ``eps`` is flat; it becomes all zeros (there is
            nothing salient in it), never NaN.

    Returns:
        ``(B, C, H, W)`` float in [0, 1].
    """
    flat = maps.flatten(1)
    lo = flat.amin(dim=1).view(-1, *([1] * (maps.dim() - 1)))
    hi = flat.amax(dim=1).view(-1, *([1] * (maps.dim() - 1)))
    span = hi - lo
    return torch.where(span > eps, (maps - lo) / span.clamp_min(eps), torch.zeros_like(maps))


__all__ = ["check_images", "check_maps", "minmax_normalize", "to_gray"]
