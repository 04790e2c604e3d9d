"""Min-max normalisation, shared by the saliency modules.

Every saliency function in :mod:`anolearn.saliency` returns maps of shape ``(B, 1, H, W)``
with values in [0, 1], min-max normalised per image, so that maps from different sources
(spectral residual, LayerCAM, a foreground detector) can be compared and swapped. Their input
checks and the luma of an image come from :mod:`anolearn.imageops`.
"""
from __future__ import annotations

import torch


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


__all__ = ["minmax_normalize"]
