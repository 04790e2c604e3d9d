"""LayerCAM: where a pretrained classifier looks, at any depth of the network.

Jiang, Zhang, Hou, Cheng and Wei, "LayerCAM: Exploring Hierarchical Class Activation Maps for
Localization", IEEE TIP 2021. Let ``A^k`` be channel ``k`` of a layer's activation
``(C, h, w)`` and ``y^c`` the logit of class ``c``. Three generations of class activation maps:

* **CAM** (Zhou et al. 2016) needs a global-average-pooling classifier: ``M = sum_k w_k^c A^k``
  with ``w^c`` the last linear layer's weights -- only at the last layer.
* **Grad-CAM** (Selvaraju et al. 2017) works at any layer with one weight per channel, the
  spatially averaged gradient: ``w_k^c = mean_ij dy^c / dA^k_ij``,
  ``M = ReLU(sum_k w_k^c A^k)``. At shallow layers the channel-wide weight mixes positive and
  negative evidence and the map becomes noise.
* **LayerCAM** weights every *location* separately and keeps only positive evidence:

  .. math::

      w^{kc}_{ij} = \\mathrm{ReLU}\\Big(\\frac{\\partial y^c}{\\partial A^k_{ij}}\\Big), \\qquad
      M^c_{ij} = \\mathrm{ReLU}\\Big(\\sum_k w^{kc}_{ij} \\, A^k_{ij}\\Big).

  Shallow layers now give fine, object-shaped maps; deep layers coarse, semantic ones.
  CutSwap (chapter 6) uses one map per level -- "multilevel saliency".

Each map is upsampled bilinearly to the input size (``align_corners=False``) and min-max
normalised per image to [0, 1]. Min-max normalisation is affine and bilinear upsampling is
linear with weights summing to one, so normalising before or after upsampling gives the same map
(``pytorch_grad_cam`` normalises, upsamples with OpenCV and normalises again; the tests check
that our maps match it).

Details and choices:

* target class ``c``: the top-1 predicted class per image by default (as the official code and
  CutSwap's description), or given per image;
* the gradients come from one backward pass of ``sum_b y^{c_b}_b`` (each image's score only
  depends on its own activations because the backbone is in eval mode), via
  ``torch.autograd.grad`` on the hooked activations, so the frozen weights get no ``.grad``;
  this works inside a ``torch.no_grad()`` block too (a forger may be called there);
* the paper fuses shallow-layer maps with ``tanh(gamma * M / max M)`` before combining levels;
  we return the plain per-level maps and offer a simple mean over levels
  (:meth:`LayerCAM.fused`), since CutSwap clusters each level on its own;
* images are processed in chunks of ``batch_size`` to bound memory.

The backbone is :func:`anolearn.backbones.get_backbone` (EfficientNet-Lite0 by default, whose
``classify`` returns logits and the hooked features in one pass).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..backbones import FeatureExtractor, get_backbone
from ..imageops import check_images
from .common import minmax_normalize


def class_activation_maps(backbone: FeatureExtractor, images: torch.Tensor,
                          target: torch.Tensor | Sequence[int] | int | None = None,
                          kind: str = "layercam", levels: Sequence[int] | None = None,
                          size: tuple[int, int] | None = None, normalize: bool = True,
                          batch_size: int = 32) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Gradient-based class activation maps at the backbone's hooked layers.

    Args:
        backbone: a :class:`~anolearn.backbones.FeatureExtractor` (its ``layers`` are the levels).
        images: ``(B, 3, H, W)`` float in [0, 1], on the backbone's device.
        target: class per image (``(B,)`` long, a list, or one int for all); None = top-1 prediction.
        kind: ``"layercam"`` (element-wise positive gradients) or ``"gradcam"`` (channel-mean
            gradients).
        levels: indices into ``backbone.layers`` to return (None = all, finest first).
        size: output ``(H, W)``; None = the input size (pass a layer's own ``(h_l, w_l)`` to see
            the raw, un-upsampled map of that one level).
        normalize: min-max normalise each map per image (after upsampling).
        batch_size: images per forward/backward pass.

    Returns:
        ``(maps, target)``: ``maps`` a list (one per level) of ``(B, 1, H, W)`` float tensors, in
        [0, 1] if ``normalize``; ``target`` ``(B,)`` long, the classes used.
    """
    check_images(images)
    if kind not in ("layercam", "gradcam"):
        raise ValueError(f"kind must be 'layercam' or 'gradcam', got {kind!r}.")
    n_layers = len(backbone.layers)
    levels = list(range(n_layers)) if levels is None else [int(i) for i in levels]
    bad = [i for i in levels if not -n_layers <= i < n_layers]
    if bad:
        raise ValueError(f"levels {bad} out of range: the backbone hooks {n_layers} layers {backbone.layers}.")
    b = images.shape[0]
    if target is not None:
        target = torch.as_tensor(target, device=images.device, dtype=torch.long).reshape(-1)
        if target.numel() == 1:
            target = target.expand(b)
        if target.numel() != b:
            raise ValueError(f"target must have one class per image ({b}), got {target.numel()}.")
    out_size = tuple(size) if size is not None else tuple(images.shape[-2:])
    maps: list[list[torch.Tensor]] = [[] for _ in levels]
    used: list[torch.Tensor] = []
    with torch.enable_grad():
        for start in range(0, b, batch_size):
            x = images[start:start + batch_size].detach().requires_grad_(True)
            logits, feats = backbone.classify(x)  # (n, K), [(n, C_l, h_l, w_l)]
            c = logits.argmax(dim=1) if target is None else target[start:start + batch_size]
            score = logits.gather(1, c[:, None]).sum()  # sum_b y^{c_b}_b
            chosen = [feats[i] for i in levels]
            grads = torch.autograd.grad(score, chosen)
            for j, (a, g) in enumerate(zip(chosen, grads)):
                a, g = a.detach(), g.detach()
                if kind == "layercam":
                    cam = (F.relu(g) * a).sum(dim=1, keepdim=True)  # (n, 1, h_l, w_l)
                else:
                    cam = (g.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1, keepdim=True)
                cam = F.relu(cam)
                if cam.shape[-2:] != out_size:
                    cam = F.interpolate(cam, size=out_size, mode="bilinear", align_corners=False)
                maps[j].append(minmax_normalize(cam) if normalize else cam)
            used.append(c.detach())
    return [torch.cat(m) for m in maps], torch.cat(used)


def layercam(backbone: FeatureExtractor, images: torch.Tensor,
             target: torch.Tensor | Sequence[int] | int | None = None,
             levels: Sequence[int] | None = None, size: tuple[int, int] | None = None,
             normalize: bool = True, batch_size: int = 32) -> list[torch.Tensor]:
    """Multilevel LayerCAM maps: one ``(B, 1, H, W)`` map in [0, 1] per chosen level.

    Example:
        >>> bb = get_backbone("efficientnet_lite0", layers=(2, 4, 10))
        >>> maps = layercam(bb, torch.rand(2, 3, 64, 64))
        >>> [tuple(m.shape) for m in maps]
        [(2, 1, 64, 64), (2, 1, 64, 64), (2, 1, 64, 64)]
    """
    return class_activation_maps(backbone, images, target, "layercam", levels, size, normalize, batch_size)[0]


def gradcam(backbone: FeatureExtractor, images: torch.Tensor,
            target: torch.Tensor | Sequence[int] | int | None = None,
            levels: Sequence[int] | None = None, size: tuple[int, int] | None = None,
            normalize: bool = True, batch_size: int = 32) -> list[torch.Tensor]:
    """Grad-CAM maps (channel-averaged gradients) at the same levels, for comparison."""
    return class_activation_maps(backbone, images, target, "gradcam", levels, size, normalize, batch_size)[0]


class LayerCAM:
    """Callable multilevel saliency source built on a pretrained backbone.

    Args:
        backbone: a :class:`~anolearn.backbones.FeatureExtractor`, or None to build
            ``get_backbone(name, layers)`` lazily on the images' device at the first call.
        name, layers: backbone name and hooked layers used when ``backbone`` is None
            (EfficientNet-Lite0 blocks 2, 4, 10, 15: strides 4, 8, 16, 32).
        levels: which hooked layers to return (indices; None = all).
        target: fixed class for every image, or None for each image's top-1 prediction.
        batch_size: images per forward/backward pass.

    Calling it returns a list of ``(B, 1, H, W)`` maps in [0, 1], finest level first;
    :meth:`fused` returns their mean, renormalised, as one ``(B, 1, H, W)`` map.

    Example:
        >>> cam = LayerCAM(layers=(2, 4, 10))
        >>> maps = cam(torch.rand(2, 3, 64, 64))
        >>> len(maps), tuple(cam.fused(torch.rand(2, 3, 64, 64)).shape)
        (3, (2, 1, 64, 64))
    """

    def __init__(self, backbone: FeatureExtractor | None = None, name: str = "efficientnet_lite0",
                 layers: Sequence[int | str] | None = (2, 4, 10, 15), levels: Sequence[int] | None = None,
                 target: int | None = None, batch_size: int = 32):
        self.backbone = backbone
        self.name = backbone.name if backbone is not None else name
        self.layers = tuple(backbone.layers) if backbone is not None else (tuple(layers) if layers else None)
        self.levels = None if levels is None else tuple(levels)
        self.target = target
        self.batch_size = batch_size

    def _get_backbone(self, device: torch.device) -> FeatureExtractor:
        if self.backbone is None:
            self.backbone = get_backbone(self.name, layers=self.layers, device=device)
        elif next(self.backbone.parameters()).device != device:
            self.backbone = self.backbone.to(device)
        return self.backbone

    def __call__(self, images: torch.Tensor) -> list[torch.Tensor]:
        check_images(images)
        bb = self._get_backbone(images.device)
        return layercam(bb, images, self.target, self.levels, batch_size=self.batch_size)

    def fused(self, images: torch.Tensor) -> torch.Tensor:
        """Mean of the per-level maps, min-max normalised: ``(B, 1, H, W)`` in [0, 1]."""
        return minmax_normalize(torch.stack(self(images)).mean(dim=0))

    def __repr__(self) -> str:
        return f"LayerCAM(name={self.name!r}, layers={self.layers}, levels={self.levels}, target={self.target})"


__all__ = ["LayerCAM", "class_activation_maps", "gradcam", "layercam"]
