"""DRAEM's two networks: the reconstructive autoencoder and the discriminative U-Net.

Zavrtanik, Kristan and Skocaj, "DRAEM -- A discriminatively trained reconstruction embedding
for surface anomaly detection", ICCV 2021 (official code ``VitjanZ/DRAEM``, ``model_unet.py``).

Both are one class, :class:`DraemNet`: an encoder of ``double_conv`` blocks and max-pooling, and
a decoder of bilinear upsampling and ``double_conv`` blocks. The reconstructive network
``(3 -> 3, width 128, depth 4)`` has no skip connections (an autoencoder: the image is rebuilt
from the bottleneck alone); the discriminative network ``(6 -> 2, width 64, depth 5)``
concatenates the encoder's features of each level in the decoder (a U-Net). SGSF reuses the
class for its extractor and segmenter (:mod:`anolearn.methods.sgsf_nets`).
One deviation from the code: the decoder's widths shrink inside the first convolution after
upsampling rather than in the second (the same layer types and counts).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def double_conv(c_in: int, c_out: int) -> nn.Sequential:
    """DRAEM's block: two (3 x 3 convolution + batch norm + ReLU)."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                         nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class DraemNet(nn.Module):
    """DRAEM's encoder-decoder, with (discriminative) or without (reconstructive) skip connections.

    Encoder: ``double_conv`` at level 0, then ``depth`` times max-pool + ``double_conv``; widths
    ``min(base_width 2^l, 8 base_width)``. Decoder: bilinear upsampling x2 + 3 x 3 conv/BN/ReLU to
    the next width, concatenation with the encoder's features of that level (``skips=True``), then
    ``double_conv``; a final 3 x 3 convolution to ``out_channels`` (no activation). DRAEM uses
    ``(3 -> 3, 128, depth 4, no skips)`` and ``(6 -> 2, 64, depth 5, skips)``.

    Args:
        in_channels, out_channels: channels of input and output.
        base_width: width of level 0.
        depth: number of halvings (``H, W`` must be divisible by ``2^depth``).
        skips: concatenate encoder features in the decoder (U-Net) or not (autoencoder).
    """

    def __init__(self, in_channels: int, out_channels: int, base_width: int = 64, depth: int = 5, skips: bool = True):
        super().__init__()
        if depth < 1 or base_width < 1:
            raise ValueError(f"depth and base_width must be >= 1, got {depth} and {base_width}.")
        self.depth, self.skips = depth, skips
        self.widths = [min(base_width * 2**lv, 8 * base_width) for lv in range(depth + 1)]
        w = self.widths
        self.enc = nn.ModuleList([double_conv(in_channels, w[0])] + [double_conv(w[lv - 1], w[lv])
                                                                       for lv in range(1, depth + 1)])
        levels = list(reversed(range(1, depth + 1)))  # decoder step i goes from level lv to lv - 1
        self.up = nn.ModuleList([nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                                               nn.Conv2d(w[lv], w[lv - 1], 3, padding=1), nn.BatchNorm2d(w[lv - 1]),
                                               nn.ReLU(inplace=True)) for lv in levels])
        self.dec = nn.ModuleList([double_conv(w[lv - 1] * (2 if skips else 1), w[lv - 1]) for lv in levels])
        self.head = nn.Conv2d(w[0], out_channels, 3, padding=1)

    def check(self, x: torch.Tensor) -> None:
        f = 2**self.depth
        if x.dim() != 4 or x.shape[-2] % f or x.shape[-1] % f:
            raise ValueError(f"{type(self).__name__}(depth={self.depth}) needs (B, C, H, W) inputs with H and W "
                             f"divisible by {f}, got {tuple(x.shape)}.")

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Encoder features, level 0 (full resolution) to ``depth`` (bottleneck)."""
        self.check(x)
        feats = [self.enc[0](x)]
        for block in self.enc[1:]:
            feats.append(block(F.max_pool2d(feats[-1], 2)))
        return feats

    def decode(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """Decode encoder features; returns the output and ``{level: decoder features}`` (the bottleneck
        at ``depth``, every decoder block's output at its level)."""
        x = feats[-1]
        out = {self.depth: x}
        for i, (up, dec) in enumerate(zip(self.up, self.dec)):
            lv = self.depth - 1 - i
            x = up(x)
            x = dec(torch.cat([x, feats[lv]], 1) if self.skips else x)
            out[lv] = x
        return self.head(x), out

    def forward(self, x: torch.Tensor, return_features: bool = False):
        """``(B, in, H, W) -> (B, out, H, W)`` (and the decoder features, if asked)."""
        y, feats = self.decode(self.encode(x))
        return (y, feats) if return_features else y


def draem_init(module: nn.Module) -> None:
    """DRAEM's ``weights_init``: conv weights ``N(0, 0.02)``, batch-norm scales ``N(1, 0.02)``, biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


__all__ = ["DraemNet", "double_conv", "draem_init"]
