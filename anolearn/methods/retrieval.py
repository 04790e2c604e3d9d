"""Contrast sets: the normal training images most similar to a given image.

SGSF's journal version (NIGSF, Xing, Sun, Zeng and Li, IEEE TCSVT 2024) guides its
segmentation network with a *similar normal image*. For an image ``A`` it ranks every normal
training image ``C_j`` by the cosine similarity of their features,

    sim(A, C_j) = <f(A), f(C_j)> / (||f(A)|| ||f(C_j)||),

and keeps the top ``n`` (``n = 4``, the paper's ablation optimum; its implementation section
says 5) as the **contrast set**. During training a normal image is drawn from the contrast
set of each training image -- never the image itself, which would make "compare with a
normal image" trivial -- and at test time the most similar training image (or the whole set)
guides the segmentation.

Which features the paper uses is not stated in our sources. We use an ImageNet-pretrained
EfficientNet-Lite0 (offline weights, :func:`anolearn.backbones.get_backbone`) at block 10
(stride 16), average-pooled to a coarse ``grid x grid`` layout and flattened: ``grid = 1`` is
global average pooling (appearance only); ``grid = 4`` (default) also keeps *where* things are,
so an object in the same pose ranks above the same object turned, which matters because the
guidance is compared pixel by pixel. The features of a training set are computed once per fit
and kept (the "cache once per dataset").
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_BACKBONES: dict[tuple, torch.nn.Module] = {}


def retrieval_backbone(name: str = "efficientnet_lite0", layer: int | str = 10, pretrained: bool = True,
                       device: torch.device | str = "cpu") -> torch.nn.Module:
    """A frozen backbone hooked at one layer, built once per ``(name, layer, pretrained, device)``."""
    from ..backbones import get_backbone

    key = (name, layer, pretrained, str(device))
    if key not in _BACKBONES:
        _BACKBONES[key] = get_backbone(name, layers=(layer,), pretrained=pretrained, device=device).eval()
    return _BACKBONES[key]


@torch.no_grad()
def retrieval_features(images: torch.Tensor, backbone: torch.nn.Module | None = None, grid: int = 4,
                       size: int | None = 224, batch_size: int = 32) -> torch.Tensor:
    """L2-normalised retrieval features.

    Args:
        images: ``(N, 3, H, W)`` float in [0, 1].
        backbone: a module ``images -> [features (N, C, h, w)]`` (default: EfficientNet-Lite0 block 10).
        grid: average-pool the feature map to ``grid x grid`` cells (1 = global average pooling).
        size: resize images to ``size x size`` first (None = as given).
        batch_size: images per backbone call.

    Returns:
        ``(N, C * grid^2)`` float32, unit length per row, on the images' device.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"retrieval_features needs (N, 3, H, W) images, got {tuple(images.shape)}.")
    backbone = backbone or retrieval_backbone(device=images.device)
    out = []
    for chunk in images.split(batch_size):
        if size:
            chunk = F.interpolate(chunk.float(), size=(size, size), mode="bilinear", align_corners=False)
        f = backbone(chunk)[-1].float()  # (b, C, h, w)
        out.append(F.adaptive_avg_pool2d(f, grid).flatten(1))  # (b, C grid^2)
    return F.normalize(torch.cat(out), dim=1)


def cosine_topk(query: torch.Tensor, bank: torch.Tensor, k: int,
                exclude: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` bank rows most similar to each query row.

    Args:
        query: ``(Q, D)`` features; bank: ``(N, D)`` features (normalised or not).
        k: how many to keep (``k <= N``, or ``N - 1`` with ``exclude``).
        exclude: ``(Q,)`` long, a bank index each query may not return (its own copy), or None.

    Returns:
        ``(similarities (Q, k), indices (Q, k))``, most similar first.
    """
    q, b = F.normalize(query.float(), dim=1), F.normalize(bank.float(), dim=1)
    sim = q @ b.T  # (Q, N) cosine similarities
    limit = sim.shape[1] - (exclude is not None)
    if not 1 <= k <= limit:
        raise ValueError(f"k must be between 1 and {limit} for a bank of {sim.shape[1]} images, got {k}.")
    if exclude is not None:
        sim = sim.scatter(1, exclude.view(-1, 1).to(sim.device), float("-inf"))
    return sim.topk(k, dim=1)


def contrast_sets(features: torch.Tensor, n: int = 4) -> torch.Tensor:
    """Contrast set of every training image: the ``n`` most similar *other* training images.

    Args:
        features: ``(N, D)`` retrieval features of the training images.
        n: set size (SGSF: 4); capped at ``N - 1``.

    Returns:
        ``(N, min(n, N - 1))`` long indices into the training set, most similar first; row ``i``
        never contains ``i``.
    """
    if features.shape[0] < 2:
        raise ValueError("A contrast set needs at least 2 training images.")
    own = torch.arange(features.shape[0], device=features.device)
    return cosine_topk(features, features, min(n, features.shape[0] - 1), exclude=own)[1]


__all__ = ["contrast_sets", "cosine_topk", "retrieval_backbone", "retrieval_features"]
