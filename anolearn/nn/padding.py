"""How convolutions see the image border: zeros (PyTorch's default) or a mirror.

A 3 x 3 convolution with ``padding=1`` reads one pixel beyond the border. With zero padding
that pixel is black, so to every layer the image sits inside a black frame: a sharp dark edge
that no normal image has in its interior. A network trained to flag thin dark or bright lines
(scratches, cracks) can learn to flag the frame too, and its anomaly maps then light up a thin
square along the border of every image, normal ones included. Reflection padding continues
the image as its mirror image, which has no such edge.

Example::

    >>> net = use_padding(torch.nn.Conv2d(3, 8, 3, padding=1), "reflect")
    >>> net.padding_mode
    'reflect'
"""
from __future__ import annotations

from torch import nn

PADDING_MODES = ("zeros", "reflect", "replicate")


def use_padding(module: nn.Module, mode: str = "reflect") -> nn.Module:
    """Set the padding of every padded ``Conv2d`` in ``module`` to ``mode`` (in place; returns it).

    Transposed convolutions are left alone (PyTorch supports only zeros there), and so are
    convolutions without padding.
    """
    if mode not in PADDING_MODES:
        raise ValueError(f"padding mode must be one of {PADDING_MODES}, got {mode!r}.")
    for m in module.modules():
        if isinstance(m, nn.Conv2d) and any(p > 0 for p in m.padding):
            m.padding_mode = mode
    return module


__all__ = ["PADDING_MODES", "use_padding"]
