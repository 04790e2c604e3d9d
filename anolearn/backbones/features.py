"""Multi-scale features from a pretrained CNN, collected with forward hooks.

Many anomaly detectors compare an image with normal images in the feature space of an
ImageNet-pretrained CNN: early stages keep fine spatial detail (stride 4-8), late stages see
larger context (stride 16-32). :class:`FeatureExtractor` wraps any classifier, registers a
forward hook on each named layer and returns their outputs as a list, finest first::

    images (B, 3, H, W) in [0, 1]  ->  ImageNet normalisation  ->  CNN  ->  [f_1, ..., f_L]
    f_l: (B, C_l, H / s_l, W / s_l)

The classifier's logits remain available (:meth:`FeatureExtractor.classify`) because
LayerCAM (chapter 5) needs both the activations and the gradient of a class score.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_normalize(images: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` in [0, 1] -> ImageNet-standardised, on the images' device and dtype."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return (images - mean) / std


class _AllLayersSeen(Exception):
    """Raised by the last forward hook to end a forward pass early (see :meth:`FeatureExtractor.forward`)."""


class FeatureExtractor(nn.Module):
    """A frozen classifier that returns the outputs of chosen layers.

    Args:
        model: a classifier ``(B, 3, H, W) -> (B, num_classes)`` expecting ImageNet-normalised input.
        layers: module names inside ``model`` (as in ``model.named_modules()``), finest first.
        name: a short name for printing (``"efficientnet_lite0"``).
        pretrained: whether ``model`` holds pretrained weights (printed, and checked by methods).

    Shapes:
        ``forward(images)``: images ``(B, 3, H, W)`` float in [0, 1] -> list of ``(B, C_l, h_l, w_l)``.
    """

    def __init__(self, model: nn.Module, layers: Sequence[str], name: str = "backbone", pretrained: bool = True):
        super().__init__()
        modules = dict(model.named_modules())
        missing = [layer for layer in layers if layer not in modules]
        if missing:
            raise ValueError(f"{name} has no layer(s) {missing}; some valid names: {list(modules)[1:12]} ...")
        self.model = model.eval()
        self.layers = tuple(layers)
        self.name = name
        self.pretrained = pretrained
        for p in self.model.parameters():
            p.requires_grad_(False)
        self._outputs: dict[str, torch.Tensor] = {}
        self._stop_early = False
        self._handles = [modules[layer].register_forward_hook(self._hook(layer)) for layer in self.layers]

    def _hook(self, layer: str):
        def save(_module, _inputs, output):
            self._outputs[layer] = output
            if self._stop_early and len(self._outputs) == len(self.layers):
                raise _AllLayersSeen  # every hooked layer has run: the rest of the network is not needed

        return save

    def train(self, mode: bool = True) -> "FeatureExtractor":
        # The backbone stays in eval mode: its BatchNorm statistics are ImageNet's, not ours.
        return super().train(False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        self._outputs.clear()
        # Stop the forward pass once the deepest hooked layer has run: for early layers this
        # skips most of the network's cost (its deeper blocks and classifier head).
        self._stop_early = True
        try:
            self.model(imagenet_normalize(images))
        except _AllLayersSeen:
            pass
        finally:
            self._stop_early = False
        return [self._outputs[layer] for layer in self.layers]

    def classify(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits ``(B, num_classes)`` and the hooked features, in one pass (gradients allowed)."""
        self._outputs.clear()
        logits = self.model(imagenet_normalize(images))
        return logits, [self._outputs[layer] for layer in self.layers]

    @torch.no_grad()
    def channels(self, size: int = 64) -> list[int]:
        """Number of channels of each hooked layer (probed with one blank image)."""
        device = next(self.model.parameters()).device
        return [f.shape[1] for f in self(torch.zeros(1, 3, size, size, device=device))]

    def extra_repr(self) -> str:
        return f"name={self.name}, layers={self.layers}, pretrained={self.pretrained}"
