"""torchvision ResNet-18 and Wide-ResNet-50-2, when their ImageNet weights are on disk.

These are the backbones most anomaly-detection papers use (PatchCore and PaDiM use
Wide-ResNet-50-2; CutPaste uses ResNet-18). Their weights are downloaded by torchvision on
first use, which needs the internet; anolearn never downloads at run time. Readers with the
internet run ``python data_scripts/fetch_torchvision_weights.py`` once, which puts the files
in torch's cache (``torch.hub.get_dir()/checkpoints``); afterwards these functions load them
offline. Without them you get a clear error, never a silently random network.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ..paths import FETCH_COMMANDS
from .features import FeatureExtractor

DEFAULT_LAYERS = ("layer1", "layer2", "layer3", "layer4")


class BackboneWeightsMissing(FileNotFoundError):
    """Pretrained weights are not in the torch cache; the message names the script that fetches them."""


def weights_path(weights) -> Path:
    """Where torchvision caches the file of a weights enum (e.g. ``ResNet18_Weights.IMAGENET1K_V1``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / weights.url.rsplit("/", 1)[-1]


def _build(arch: str, weights_enum, layers: Sequence[str], pretrained: bool) -> FeatureExtractor:
    import torchvision

    model = getattr(torchvision.models, arch)(weights=None)
    if pretrained:
        path = weights_path(weights_enum)
        if not path.is_file():
            raise BackboneWeightsMissing(
                f"ImageNet weights for {arch} are not on this machine (expected {path}). With the internet, run "
                f"`{FETCH_COMMANDS['torchvision_weights']}` once; offline, use the default backbone "
                "'efficientnet_lite0', whose weights install with the package. (Pass pretrained=False "
                "only if you really want a randomly initialised network.)"
            )
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return FeatureExtractor(model, layers, name=arch, pretrained=pretrained)


def resnet18(layers: Sequence[str] = DEFAULT_LAYERS, pretrained: bool = True) -> FeatureExtractor:
    """torchvision ResNet-18 hooked at ``layers`` (strides 4, 8, 16, 32)."""
    from torchvision.models import ResNet18_Weights

    return _build("resnet18", ResNet18_Weights.IMAGENET1K_V1, layers, pretrained)


def wide_resnet50(layers: Sequence[str] = DEFAULT_LAYERS, pretrained: bool = True) -> FeatureExtractor:
    """torchvision Wide-ResNet-50-2 hooked at ``layers`` (strides 4, 8, 16, 32)."""
    from torchvision.models import Wide_ResNet50_2_Weights

    return _build("wide_resnet50_2", Wide_ResNet50_2_Weights.IMAGENET1K_V1, layers, pretrained)
