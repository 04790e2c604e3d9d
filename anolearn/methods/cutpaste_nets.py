"""The networks of CutPaste-style training: an encoder, and an MLP head that classifies forgeries.

CutPaste (Li et al., CVPR 2021) trains a ResNet-18 followed by an MLP projection head to tell
normal images from forged ones, then throws the head's decision away and keeps the
**encoder's pooled embedding** for density estimation (:mod:`.gde`)::

    image (B, 3, H, W) --encoder--> f (B, D) --head--> logits (B, K)
                                    ^ used at test time (GDE)   ^ used only for training (cross-entropy)

Encoders here:

* :class:`ResNetEncoder` -- ResNet-18's layout (7 x 7 stem, max pool, four stages of two
  basic blocks at strides 4, 8, 16, 32, global average pooling), trained **from scratch**, as in
  CutPaste's headline results. ``width`` scales every stage (``width=64`` *is* ResNet-18, 11.2 M
  parameters, ``D = 512``); ``blocks`` sets the depth per stage. The book's quick profile uses a
  narrow and shallow version so that it trains on a CPU in seconds; the full profile uses
  ResNet-18 itself.
* :class:`PretrainedEncoder` -- an ImageNet-pretrained backbone from :mod:`anolearn.backbones`,
  fine-tuned (CutPaste's other setting; the paper uses ImageNet ResNet-18, offline we default
  to EfficientNet-Lite0, whose weights install with the package). Its BatchNorm statistics stay
  ImageNet's (the backbone stays in eval mode); its weights are trained.

:class:`ProjectionHead` is ``[Linear -> BatchNorm -> ReLU] x len(hidden)`` followed by a linear
classifier with ``K`` outputs. The paper says only "MLP projection head"; a public
re-implementation uses eight 512-unit layers and a 128-unit one. We default to two layers
(512, 128): the head is discarded after training, and a shorter one trains faster.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..nn.resnet_block import BasicBlock


class ResNetEncoder(nn.Module):
    """ResNet-18-style encoder, randomly initialised.

    Args:
        width: channels of the first stage; stages have ``width * (1, 2, 4, 8)`` channels
            (64 = ResNet-18).
        blocks: basic blocks per stage ((2, 2, 2, 2) = ResNet-18).

    Shapes:
        ``forward(images (B, 3, H, W) in [0, 1])`` -> ``(B, 8 * width)`` pooled embedding.
        ``feature_map(images)`` -> ``(B, 8 * width, H / 32, W / 32)`` before pooling.
    """

    def __init__(self, width: int = 64, blocks: Sequence[int] = (2, 2, 2, 2)):
        super().__init__()
        if width < 1 or len(blocks) != 4 or min(blocks) < 1:
            raise ValueError(f"need width >= 1 and four stages of >= 1 block, got width={width}, blocks={blocks}.")
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        stages, c_in = [], width
        for i, n in enumerate(blocks):
            c_out = width * 2**i
            layers = [BasicBlock(c_in, c_out, 1 if i == 0 else 2)] + [BasicBlock(c_out, c_out) for _ in range(n - 1)]
            stages.append(nn.Sequential(*layers))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.dim = c_in
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        # Inputs in [0, 1] are centred to [-1, 1]; BatchNorm does the rest.
        return self.stages(self.stem(images * 2 - 1))  # (B, D, H/32, W/32)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.feature_map(images).mean((2, 3))  # (B, D)


class PretrainedEncoder(nn.Module):
    """An ImageNet backbone from :mod:`anolearn.backbones`, fine-tuned, pooled at one layer.

    Args:
        backbone: ``"efficientnet_lite0"`` (offline weights), ``"resnet18"`` or ``"wide_resnet50"``
            (need ``data_scripts/fetch_torchvision_weights.py`` once).
        layer: the hooked layer whose output is pooled (None = the backbone's deepest default stage).
        pretrained: load ImageNet weights (False = same architecture, random weights).
        finetune_blocks: fine-tune only the last ``finetune_blocks`` blocks up to the hooked layer
            (EfficientNet-Lite0 only; None = every weight). The frozen blocks are the package's
            weights, so a checkpoint then holds only the fine-tuned blocks (see
            :meth:`~anolearn.methods.base.AnomalyMethod.frozen_keys`): 2 blocks are about 1.1 M
            weights instead of about 4.7 M (the whole network, its ImageNet classifier included).
    """

    def __init__(self, backbone: str = "efficientnet_lite0", layer: int | str | None = None, pretrained: bool = True,
                 finetune_blocks: int | None = None):
        super().__init__()
        from ..backbones import get_backbone

        if layer is None:
            layer = 15 if backbone == "efficientnet_lite0" else "layer4"
        self.extractor = get_backbone(backbone, layers=(layer,), pretrained=pretrained)
        if finetune_blocks is None:
            trainable = list(self.extractor.parameters())  # FeatureExtractor freezes; CutPaste fine-tunes
        else:
            if backbone != "efficientnet_lite0":
                raise ValueError(f"finetune_blocks is implemented for efficientnet_lite0, not {backbone!r}.")
            if not 1 <= finetune_blocks <= int(layer) + 1:
                raise ValueError(f"finetune_blocks must be between 1 and {int(layer) + 1}, got {finetune_blocks}.")
            blocks = self.extractor.model._blocks[int(layer) + 1 - finetune_blocks:int(layer) + 1]
            trainable = list(blocks.parameters())
        for p in trainable:
            p.requires_grad_(True)
        self.dim = self.extractor.channels()[0]

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        return self.extractor(images)[0]  # (B, D, h, w)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.feature_map(images).mean((2, 3))  # (B, D)


class ProjectionHead(nn.Module):
    """MLP head: ``[Linear, BatchNorm1d, ReLU]`` per hidden size, then a linear classifier.

    Shapes: ``(B, D)`` -> logits ``(B, num_classes)``.
    """

    def __init__(self, dim: int, num_classes: int, hidden: Sequence[int] = (512, 128)):
        super().__init__()
        layers, c = [], dim
        for h in hidden:
            layers += [nn.Linear(c, h, bias=False), nn.BatchNorm1d(h), nn.ReLU(inplace=True)]
            c = h
        self.mlp = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.mlp(features))


def build_encoder(encoder: str = "scratch", width: int = 64, blocks: Sequence[int] = (2, 2, 2, 2),
                  pretrained: bool = True, finetune_blocks: int | None = None) -> nn.Module:
    """``"scratch"`` -> :class:`ResNetEncoder`; a backbone name -> :class:`PretrainedEncoder`."""
    if encoder == "scratch":
        if finetune_blocks is not None:
            raise ValueError("finetune_blocks needs a pretrained encoder (encoder='efficientnet_lite0').")
        return ResNetEncoder(width, blocks)
    from ..backbones import BACKBONES

    if encoder not in BACKBONES:
        raise ValueError(f"Unknown encoder {encoder!r}; choose 'scratch' or one of {BACKBONES}.")
    return PretrainedEncoder(encoder, pretrained=pretrained, finetune_blocks=finetune_blocks)


__all__ = ["BasicBlock", "PretrainedEncoder", "ProjectionHead", "ResNetEncoder", "build_encoder"]
