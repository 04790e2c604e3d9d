"""ResNet's basic block (He, Zhang, Ren and Sun, CVPR 2016), shared by the from-scratch encoders
of CutPaste/CutSwap (:mod:`anolearn.methods.cutpaste_nets`) and AnoSeg
(:mod:`anolearn.methods.anoseg_nets`).

Two 3 x 3 convolutions with BatchNorm, and a shortcut that adds the input back:

    y = ReLU( BN(conv(ReLU(BN(conv(x))))) + s(x) ),

where ``s`` is the identity, or a strided 1 x 1 convolution with BatchNorm when the block
changes the number of channels or the resolution (ResNet's "option B" projection).
"""
from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Residual block ``(B, c_in, H, W) -> (B, c_out, H / stride, W / stride)``."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))
