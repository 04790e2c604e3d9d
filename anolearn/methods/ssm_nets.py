"""SSM's mask-aware restoration network: a U-Net with a mask block at every decoder scale.

Huang, Xu, Wang, Wang and Zhang, "Self-Supervised Masking for Unsupervised Anomaly Detection
and Localization", IEEE TMM 25, 2023; structure from the official code
(``MediaBrain-SJTU/SSM``, ``models/unet_multi.py``).

The input has 4 channels: the masked image ``x * M`` (3) and the mask ``M`` (1, 1 = visible).
The encoder-decoder is :class:`anolearn.nn.UNet` (widths 64-128-256-512-512, nearest-neighbour
upsampling + 1 x 1 convolution). A **mask block** runs on the bottleneck and after each of the
4 up blocks (5 in all). With ``m`` the mask resized (nearest neighbour) to the features' size,

    y = conv3x3( ReLU( BN( conv3x3( concat(BN(f), m) ) ) ) ),        f <- f + m * y,

a residual correction of the features ``f`` that the mask both informs (it is an input) and
gates (``m * y``). As in the code, ``m = 1`` on *visible* pixels, so the correction acts where
the image is known -- there the network can tell its features how the true image looks.
The head is one 3 x 3 convolution to 4 channels with ``tanh``: channels 0-2 are the restored
image, channel 3 the predicted mask (SSM's "two heads" share everything but their output channel).

One deviation, a parameter: the official ``forward`` receives 4 channels but feeds only the 3
image channels to the encoder (the mask reaches the network only through the mask blocks), so
a hidden (zeroed) pixel and a truly black pixel look the same to the encoder. By default we give
the encoder all 4 channels, the "conditional autoencoder" of the paper; ``encoder_mask=False``
is the code's network.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.unet import UNet


class MaskBlock(nn.Module):
    """Mask-conditioned residual block: ``f + m * conv(ReLU(BN(conv(cat(BN(f), m)))))``.

    Args:
        channels: feature channels ``C``.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.norm_in = nn.BatchNorm2d(channels)
        self.conv1 = nn.Conv2d(channels + 1, channels, 3, padding=1)
        self.norm1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, f: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``f (B, C, h, w)``, ``mask (B, 1, H, W)`` (1 = visible) -> ``(B, C, h, w)``."""
        m = F.interpolate(mask.to(f.dtype), size=f.shape[-2:], mode="nearest")  # (B, 1, h, w)
        y = self.conv1(torch.cat([self.norm_in(f), m], 1))
        y = self.conv2(F.relu(self.norm1(y)))
        return f + m * y


class SSMNet(nn.Module):
    """The SSM restoration network.

    Args:
        base_width: channels of the first U-Net level (64 in the paper's code).
        depth: number of halvings (4 in the code: 128 x 128 -> 8 x 8).
        encoder_mask: feed the mask to the encoder as a 4th channel (default) or only to the
            mask blocks (``False``, the official code).

    Example::

        >>> net = SSMNet(base_width=8, depth=3)
        >>> image, mask = net(torch.rand(2, 4, 32, 32))
        >>> image.shape, mask.shape
        (torch.Size([2, 3, 32, 32]), torch.Size([2, 1, 32, 32]))
    """

    def __init__(self, base_width: int = 64, depth: int = 4, encoder_mask: bool = True):
        super().__init__()
        self.encoder_mask = encoder_mask
        self.unet = UNet(4 if encoder_mask else 3, 4, base_width, depth, up_mode="upsample", out_activation="tanh",
                         scale_block=MaskBlock)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, 4, H, W)`` = masked image (3) + mask (1) -> restored image ``(B, 3, H, W)``, mask ``(B, 1, H, W)``."""
        if x.dim() != 4 or x.shape[1] != 4:
            raise ValueError(f"SSMNet takes (B, 4, H, W) inputs (masked image + mask), got {tuple(x.shape)}.")
        mask = x[:, 3:]  # (B, 1, H, W)
        out = self.unet(x if self.encoder_mask else x[:, :3], cond=mask)  # (B, 4, H, W)
        return out[:, :3], out[:, 3:]


__all__ = ["MaskBlock", "SSMNet"]
