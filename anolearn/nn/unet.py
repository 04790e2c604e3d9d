"""A configurable U-Net: the reconstruction network of RIAD, SSM and DRAEM-style methods.

Ronneberger, Fischer and Brox, "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI 2015. An encoder halves the resolution ``depth`` times while widening
the features; a decoder doubles it back, and at every resolution it *concatenates* the
encoder's features of that resolution (the skip connections), so fine detail need not pass
through the narrow bottleneck::

    x ─ down_0 ─────────────────────────────────── concat ─ up_0 ─ head ─ y
          └ down_1 ───────────────────── concat ─ up_1 ┘
                 └ ... down_depth (bottleneck) ┘

Blocks (as the RIAD and SSM code, ``models/unet.py`` / ``models/unet_multi.py``):

* ``down_0``: 3 x 3 convolution, stride 1; ``down_l`` (l >= 1): 4 x 4 convolution, stride 2.
  Each is followed by batch norm + ReLU, then a 3 x 3 convolution + batch norm + ReLU.
  Width of level ``l``: ``min(base_width * 2^l, max_width)`` (64, 128, 256, 512, 512 for the
  papers' ``base_width = 64, depth = 4``; 128 x 128 inputs reach an 8 x 8 bottleneck).
* ``up_l``: upsampling by 2, either ``"upsample"`` (nearest neighbour + 1 x 1 convolution,
  SSM) or ``"transpose"`` (4 x 4 transposed convolution, stride 2, RIAD), then concatenation
  with the skip, then two 3 x 3 convolution + batch norm + ReLU.
* ``head``: a 3 x 3 convolution to ``out_channels`` and an output activation (``tanh`` in
  RIAD and SSM, whose targets lie in [0, 1] -- the network simply learns to stay positive).

**Hooks for conditioned decoders.** ``scale_block`` is a factory ``channels -> nn.Module``;
its modules are applied to the bottleneck and after every up block as ``x = block(x, cond)``,
where ``cond`` is the second argument of :meth:`UNet.forward`. SSM passes its mask-attention
block and the mask (:mod:`anolearn.methods.ssm_nets`); a plain U-Net passes nothing.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

UP_MODES = ("upsample", "transpose")
ACTIVATIONS = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "none": nn.Identity}


def conv_bn_relu(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """Convolution (padding 1) + batch norm + ReLU."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class DownBlock(nn.Module):
    """Encoder block: ``kernel x kernel`` convolution with ``stride`` (+BN+ReLU), then 3 x 3 (+BN+ReLU)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1):
        super().__init__()
        self.conv1 = conv_bn_relu(c_in, c_out, kernel, stride)
        self.conv2 = conv_bn_relu(c_out, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, c_in, H, W) -> (B, c_out, H / stride, W / stride)
        return self.conv2(self.conv1(x))


class UpBlock(nn.Module):
    """Decoder block: upsample ``x`` by 2 to ``c_out`` channels, concatenate the skip (``c_out``), two 3 x 3 convs."""

    def __init__(self, c_in: int, c_out: int, up_mode: str = "upsample"):
        super().__init__()
        if up_mode not in UP_MODES:
            raise ValueError(f"up_mode must be one of {UP_MODES}, got {up_mode!r}.")
        self.up_mode = up_mode
        if up_mode == "transpose":
            self.up = nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)
        else:
            self.up = nn.Conv2d(c_in, c_out, 1)  # after a nearest-neighbour doubling
        self.conv1 = conv_bn_relu(2 * c_out, c_out)
        self.conv2 = conv_bn_relu(c_out, c_out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if self.up_mode == "upsample":
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.up(x)  # (B, c_out, 2h, 2w)
        return self.conv2(self.conv1(torch.cat([x, skip], 1)))


class UNet(nn.Module):
    """Encoder-decoder with skip connections.

    Args:
        in_channels: input channels (3 for an RGB image, 4 for image + mask, ...).
        out_channels: output channels of the head.
        base_width: channels of the first level (64 in RIAD/SSM; small values train fast on a CPU).
        depth: number of halvings; inputs must have ``H`` and ``W`` divisible by ``2^depth``.
        max_width: cap on the channel count (default ``8 * base_width``).
        up_mode: ``"upsample"`` (nearest + 1 x 1 conv) or ``"transpose"`` (transposed conv).
        out_activation: ``"tanh"``, ``"sigmoid"`` or ``"none"``.
        scale_block: optional factory ``channels -> module``; the modules run on the bottleneck and
            after each up block as ``block(features, cond)`` (see the module docstring).

    Example::

        >>> net = UNet(3, 3, base_width=8, depth=3)
        >>> net(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, base_width: int = 64, depth: int = 4,
                 max_width: int | None = None, up_mode: str = "upsample", out_activation: str = "tanh",
                 scale_block: Callable[[int], nn.Module] | None = None):
        super().__init__()
        if depth < 1 or base_width < 1:
            raise ValueError(f"depth and base_width must be >= 1, got depth={depth}, base_width={base_width}.")
        if out_activation not in ACTIVATIONS:
            raise ValueError(f"out_activation must be one of {tuple(ACTIVATIONS)}, got {out_activation!r}.")
        max_width = max_width or 8 * base_width
        self.depth = depth
        self.widths = [min(base_width * 2**level, max_width) for level in range(depth + 1)]
        w = self.widths
        self.down = nn.ModuleList([DownBlock(in_channels, w[0], 3, 1)]
                                  + [DownBlock(w[lv - 1], w[lv], 4, 2) for lv in range(1, depth + 1)])
        # up[i] takes level (depth - i) up to level (depth - i - 1)
        self.up = nn.ModuleList([UpBlock(w[lv + 1], w[lv], up_mode) for lv in reversed(range(depth))])
        self.scale_blocks = None
        if scale_block is not None:
            self.scale_blocks = nn.ModuleList([scale_block(w[lv]) for lv in reversed(range(depth + 1))])
        self.head = nn.Sequential(nn.Conv2d(w[0], out_channels, 3, padding=1), ACTIVATIONS[out_activation]())

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, in_channels, H, W)`` -> ``(B, out_channels, H, W)``; ``cond`` goes to the scale blocks."""
        factor = 2**self.depth
        if x.dim() != 4 or x.shape[-2] % factor or x.shape[-1] % factor:
            raise ValueError(f"UNet(depth={self.depth}) needs (B, C, H, W) inputs with H and W divisible by "
                             f"{factor}, got {tuple(x.shape)}; resize the images or lower depth.")
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = skips.pop()  # bottleneck (B, w[depth], H / 2^depth, W / 2^depth)
        if self.scale_blocks is not None:
            x = self.scale_blocks[0](x, cond)
        for i, block in enumerate(self.up):
            x = block(x, skips.pop())
            if self.scale_blocks is not None:
                x = self.scale_blocks[i + 1](x, cond)
        return self.head(x)


__all__ = ["ACTIVATIONS", "UP_MODES", "DownBlock", "UNet", "UpBlock", "conv_bn_relu"]
