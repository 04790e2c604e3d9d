"""CutSwap: swap two patches that the network finds equally important.

Qin, Gu, Yu and Zhang, "Multilevel Saliency-Guided Self-Supervised Learning for Image Anomaly
Detection", arXiv 2311.18332, 2023 (Signal, Image and Video Processing, 2024). CutPaste moves
a random patch anywhere, which often produces an obvious seam on the background. CutSwap makes
the forgery *subtle but meaningful*: both patches come from the most salient part of the image,
so they carry "highly similar context information with dense semantic correlations" (the
abstract), and the negative sample is made by **swapping** them. Per the abstract:

1. LayerCAM maps at several levels of a pretrained CNN are the saliency maps;
2. each map's values are clustered (k-means), giving several centroids;
3. on a map, a pixel pair is drawn from the cluster with the **highest centroid**;
4. the patches centred on the two pixels swap places.

Only the abstract of the paper was reachable, so everything concrete below is our
reconstruction, and a parameter:

* **levels** -- the maps are a list (finest first), by default LayerCAM on EfficientNet-Lite0
  blocks 2, 4 and 10 (strides 4, 8, 16; :class:`anolearn.saliency.LayerCAM`); ``levels`` picks
  which of them are used. We leave out the last stage (block 15, stride 32): at the book's
  128 px it is a 4 x 4 map, and on 30 synthetic object images only 27 % of the pixels swapped
  from its top cluster lay on the object, against 48 / 63 / 79 % for blocks 2 / 4 / 10 (the
  object covers 22 % of the image). Pass ``saliency=LayerCAM(layers=(2, 4, 10, 15))`` to use
  all four. ``mode="random"`` draws one level per sample (one swap per image); ``mode="all"``
  swaps one pair on *each* level in turn ("on each map"), so an image can have several swaps;
* **clustering** -- k-means of the 1-D saliency values per map, ``k = 3``
  (:func:`anolearn.saliency.kmeans`, deterministic starts);
* **patches** -- squares of side ``s = round(U(side) * min(H, W))``, ``side = (0.05, 0.2)``, the
  same size for both, entirely inside the image (a centre is only eligible if its patch fits);
* **minimum distance** -- the two centres are at least ``min_distance * s`` apart in the
  Chebyshev (max-coordinate) distance; the default ``1.0`` is the smallest distance at which
  the two squares cannot overlap, so the swap is a clean exchange;
* **fallback** -- if the top cluster has no valid pair (too small, or too compact for the
  minimum distance) we widen it to the two highest clusters, then three, ... down to every
  valid pixel (a plain random swap), trying ``tries`` times per step. The step used is
  returned with ``return_info=True``. A flat map (no saliency) is one cluster holding every
  pixel, so it also gives a random swap;
* **mask** -- 1 on both squares, the whole forged region. Where the two patches happen to hold
  the same pixels (a flat background) the mask is 1 although nothing visible changed; the
  anomaly is in the *placement*, not in the pixel values. Outside the mask the image is an
  exact copy of the input.

Everything is batched: one LayerCAM pass, one batched k-means per level, one multinomial draw
per step for all images, one gather for the swap.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ..imageops import check_images
from ..saliency.cluster import kmeans
from ..saliency.foreground import as_saliency_source
from .draws import check_generator, coin, uniform
from .result import Forged

#: EfficientNet-Lite0 blocks whose LayerCAM maps CutSwap uses by default (strides 4, 8, 16).
DEFAULT_LAYERS = (2, 4, 10)
_DEFAULT_CAM = None


def _default_layercam():
    global _DEFAULT_CAM
    if _DEFAULT_CAM is None:
        from ..saliency.layercam import LayerCAM

        _DEFAULT_CAM = LayerCAM(layers=DEFAULT_LAYERS)
    return _DEFAULT_CAM


def saliency_levels(images: torch.Tensor, saliency=None) -> list[torch.Tensor]:
    """Evaluate a (multilevel) saliency source: a list of ``(B, 1, H, W)`` maps at the images' size.

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1].
        saliency: None or ``"layercam"`` (multilevel LayerCAM on EfficientNet-Lite0 blocks 2, 4, 10,
            built once),
            a callable ``images -> map or list of maps``, a precomputed ``(B, 1, H, W)`` tensor
            or a list of them, or a name accepted by :func:`anolearn.saliency.as_saliency_source`.
    """
    if saliency is None or (isinstance(saliency, str) and saliency == "layercam"):
        maps = _default_layercam()(images)
    elif isinstance(saliency, (list, tuple)):
        maps = list(saliency)
    elif isinstance(saliency, torch.Tensor):
        maps = [saliency]
    else:
        maps = as_saliency_source(saliency)(images)
    maps = [maps] if isinstance(maps, torch.Tensor) else list(maps)
    out = []
    for m in maps:
        if m.dim() != 4 or m.shape[1] != 1 or m.shape[0] != images.shape[0]:
            raise ValueError(f"Saliency maps must be (B, 1, H, W) with B = {images.shape[0]}, got {tuple(m.shape)}.")
        m = m.detach().to(device=images.device, dtype=torch.float32)
        if m.shape[-2:] != images.shape[-2:]:
            m = F.interpolate(m, size=images.shape[-2:], mode="bilinear", align_corners=False)
        out.append(m)
    return out


def sample_pairs(labels: torch.Tensor, k: int, sides: torch.Tensor, min_distance: float,
                 generator: torch.Generator | None, tries: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two patch centres per image from its most salient cluster, widening it when needed.

    Args:
        labels: ``(B, H, W)`` long cluster labels, ``k - 1`` = the highest centroid.
        k: number of clusters.
        sides: ``(B,)`` long patch sides ``s``.
        min_distance: minimum Chebyshev distance between the centres, in units of ``s``.
        generator: random source.
        tries: draws of the first centre per fallback step.

    Returns:
        ``(p1, p2, step)``: centres ``(B, 2)`` long ``(y, x)``; ``step`` ``(B,)`` long, 0 if the pair
        came from the top cluster, ``j`` if from the top ``j + 1`` clusters, ``-1`` if no valid
        pair exists (the image is too small for the patch).
    """
    b, h, w = labels.shape
    dev = labels.device
    ys = torch.arange(h, device=dev).view(1, h, 1)
    xs = torch.arange(w, device=dev).view(1, 1, w)
    half = (sides // 2).view(b, 1, 1)
    s = sides.view(b, 1, 1)
    fits = (ys >= half) & (ys <= h - s + half) & (xs >= half) & (xs <= w - s + half)  # (B, H, W) patch inside
    dmin = (min_distance * sides.float()).view(b, 1, 1)
    p1 = torch.zeros(b, 2, dtype=torch.long, device=dev)
    p2 = torch.zeros(b, 2, dtype=torch.long, device=dev)
    step = torch.full((b,), -1, dtype=torch.long, device=dev)
    for j in range(k):
        cand = (labels >= k - 1 - j) & fits  # (B, H, W)
        for _ in range(tries):
            todo = (step < 0) & cand.flatten(1).any(dim=1)  # (B,)
            if not bool(todo.any()):
                break
            weights = cand.flatten(1).float()
            weights[~todo] = 1.0  # rows we ignore still need a valid distribution
            first = torch.multinomial(weights, 1, generator=generator)[:, 0]  # (B,)
            fy, fx = first // w, first % w
            far = torch.maximum((ys - fy.view(b, 1, 1)).abs(), (xs - fx.view(b, 1, 1)).abs()) >= dmin
            partner = (cand & far).flatten(1)  # (B, H*W)
            ok = todo & partner.any(dim=1)
            pw = partner.float()
            pw[~ok] = 1.0
            second = torch.multinomial(pw, 1, generator=generator)[:, 0]
            new1 = torch.stack([fy, fx], 1)
            new2 = torch.stack([second // w, second % w], 1)
            p1 = torch.where(ok[:, None], new1, p1)
            p2 = torch.where(ok[:, None], new2, p2)
            step = torch.where(ok, torch.full_like(step, j), step)
        if not bool((step < 0).any()):
            break
    return p1, p2, step


def swap_patches(images: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor,
                 sides: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Exchange the ``s x s`` squares centred at ``p1`` and ``p2`` (top-left corner ``p - s // 2``).

    Args:
        images: ``(B, C, H, W)``.
        p1, p2: ``(B, 2)`` long centres ``(y, x)``; both squares must lie inside the image.
        sides: ``(B,)`` long.

    Returns:
        ``(swapped, masks)``: ``(B, C, H, W)`` and ``(B, 1, H, W)`` float in {0, 1} (both squares).
        If the squares overlap, the second square's pixels win in the overlap.
    """
    b, c, h, w = images.shape
    dev = images.device
    ys = torch.arange(h, device=dev).view(1, h, 1)
    xs = torch.arange(w, device=dev).view(1, 1, w)
    s = sides.view(b, 1, 1)
    a = p1 - (sides // 2)[:, None]  # (B, 2) top-left corners
    z = p2 - (sides // 2)[:, None]
    ay, ax, zy, zx = (t.view(b, 1, 1) for t in (a[:, 0], a[:, 1], z[:, 0], z[:, 1]))
    in1 = (ys >= ay) & (ys < ay + s) & (xs >= ax) & (xs < ax + s)  # (B, H, W) first square
    in2 = (ys >= zy) & (ys < zy + s) & (xs >= zx) & (xs < zx + s)
    sy = torch.where(in2, ys - zy + ay, torch.where(in1, ys - ay + zy, ys.expand(b, h, w)))
    sx = torch.where(in2, xs - zx + ax, torch.where(in1, xs - ax + zx, xs.expand(b, h, w)))
    index = (sy * w + sx).view(b, 1, -1).expand(b, c, -1)  # (B, C, H*W)
    swapped = images.reshape(b, c, -1).gather(2, index).view(b, c, h, w)
    return swapped, (in1 | in2).unsqueeze(1).to(images.dtype)


def cutswap(images: torch.Tensor, generator: torch.Generator | None = None,
            saliency: str | Callable | torch.Tensor | Sequence[torch.Tensor] | None = None,
            levels: Sequence[int] | None = None, mode: str = "random", k: int = 3,
            side: tuple[float, float] = (0.05, 0.2), min_distance: float = 1.0, p_normal: float = 0.0,
            tries: int = 3, return_info: bool = False):
    """CutSwap forgeries: swap two patches from the most salient cluster of a saliency map.

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1].
        generator: random source on the images' device (None = torch's global one).
        saliency: the (multilevel) saliency source, see :func:`saliency_levels`; default
            multilevel LayerCAM.
        levels: indices of the maps to use (None = all).
        mode: ``"random"`` (one level per sample) or ``"all"`` (one swap per level, in turn).
        k: number of k-means clusters per map.
        side: patch side range as fractions of ``min(H, W)``.
        min_distance: minimum Chebyshev distance between the two centres, in patch sides.
        p_normal: probability of leaving a sample untouched (mask all zero).
        tries: draws per fallback step (see :func:`sample_pairs`).
        return_info: also return a dict with ``p1``, ``p2`` ``(L, B, 2)``, ``sides``, ``steps``
            ``(L, B)`` and ``levels`` ``(L, B)`` (``L`` = 1 in random mode).

    Returns:
        :class:`Forged` (and the info dict, if asked).

    Example:
        >>> x = torch.rand(2, 3, 64, 64)
        >>> sal = torch.zeros(2, 1, 64, 64); sal[:, :, 16:48, 16:48] = 1.0
        >>> out = cutswap(x, torch.Generator().manual_seed(0), saliency=sal)
        >>> out.masks.shape
        torch.Size([2, 1, 64, 64])
    """
    check_images(images)
    check_generator(generator, images.device)
    if mode not in ("random", "all"):
        raise ValueError(f"mode must be 'random' or 'all', got {mode!r}.")
    if not 0 < side[0] <= side[1] <= 1:
        raise ValueError(f"side must satisfy 0 < low <= high <= 1, got {side}.")
    if min_distance < 0:
        raise ValueError(f"min_distance must be >= 0, got {min_distance}.")
    b, _, h, w = images.shape
    dev = images.device
    maps = saliency_levels(images, saliency)
    chosen = list(range(len(maps))) if levels is None else [int(i) for i in levels]
    if not chosen or any(not -len(maps) <= i < len(maps) for i in chosen):
        raise ValueError(f"levels {levels} do not index the {len(maps)} saliency maps.")
    maps = [maps[i] for i in chosen]
    # Largest side first: both patches must fit along one axis at the minimum distance.
    smax = max(1, round(side[1] * min(h, w)))
    if max(h, w) - smax < min_distance * smax and not min_distance == 0:
        raise ValueError(f"Two {smax} px patches {min_distance} sides apart do not fit in {h} x {w} images; "
                         "lower side or min_distance.")

    if mode == "random":
        pick = torch.randint(len(maps), (b,), generator=generator, device=dev)  # (B,) level per sample
        stacked = torch.stack(maps)  # (L, B, 1, H, W)
        rounds = [(stacked[pick, torch.arange(b, device=dev)], torch.tensor(chosen, device=dev)[pick])]
    else:
        rounds = [(m, torch.full((b,), lvl, device=dev)) for m, lvl in zip(maps, chosen)]

    out = images
    masks = torch.zeros(b, 1, h, w, device=dev, dtype=images.dtype)
    info = {"p1": [], "p2": [], "sides": [], "steps": [], "levels": []}
    for m, lvl in rounds:
        labels, _ = kmeans(m, k)  # (B, H, W), label k - 1 = highest centroid
        sides = (uniform(*side, (b,), generator, dev) * min(h, w)).round().clamp(1, min(h, w)).long()
        p1, p2, steps = sample_pairs(labels, k, sides, min_distance, generator, tries)
        swapped, region = swap_patches(out, p1, p2, sides)
        region = region * (steps >= 0).view(b, 1, 1, 1).to(region.dtype)  # no pair: unchanged
        out = torch.where(region > 0, swapped, out)
        masks = torch.maximum(masks, region)
        for key, val in zip(info, (p1, p2, sides, steps, lvl)):
            info[key].append(val)
    if p_normal > 0:
        keep = coin(p_normal, (b, 1, 1, 1), generator, dev)
        masks = torch.where(keep, torch.zeros_like(masks), masks)
        out = torch.where(keep, images, out)
    out = torch.where(masks > 0, out, images)  # exact copy of the input outside the mask
    result = Forged(out, masks)
    if return_info:
        return result, {key: torch.stack(val) for key, val in info.items()}
    return result


class CutSwap:
    """Callable CutSwap forger: :func:`cutswap` with its parameters fixed.

    Args:
        saliency: None / ``"layercam"`` (multilevel LayerCAM, EfficientNet-Lite0 blocks 2, 4 and
            10, built on first use), a :class:`~anolearn.saliency.LayerCAM`, or any callable
            ``images -> (B, 1, H, W)`` map or list of maps.
        Other arguments: as :func:`cutswap`.

    Example:
        >>> forger = CutSwap(saliency="spectral_residual", k=3)
        >>> out = forger(torch.rand(4, 3, 64, 64), generator=torch.Generator().manual_seed(0))
        >>> out.labels.tolist()
        [1, 1, 1, 1]
    """

    def __init__(self, saliency=None, levels: Sequence[int] | None = None, mode: str = "random", k: int = 3,
                 side: tuple[float, float] = (0.05, 0.2), min_distance: float = 1.0, p_normal: float = 0.0,
                 tries: int = 3):
        if mode not in ("random", "all"):
            raise ValueError(f"mode must be 'random' or 'all', got {mode!r}.")
        if not 0 <= p_normal <= 1:
            raise ValueError(f"p_normal must be a probability, got {p_normal}.")
        if saliency is None or (isinstance(saliency, str) and saliency == "layercam"):
            from ..saliency.layercam import LayerCAM

            saliency = LayerCAM(layers=DEFAULT_LAYERS)  # its own backbone, built lazily on the images' device
        self.saliency = saliency
        self.params = dict(levels=None if levels is None else tuple(levels), mode=mode, k=k, side=tuple(side),
                           min_distance=min_distance, p_normal=p_normal, tries=tries)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None,
                 saliency=None) -> Forged:
        """Forge ``images``; ``saliency`` (precomputed maps) overrides the source for this call."""
        return cutswap(images, generator, saliency=self.saliency if saliency is None else saliency, **self.params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"CutSwap(saliency={self.saliency!r}, {args})"


__all__ = ["DEFAULT_LAYERS", "CutSwap", "cutswap", "saliency_levels", "sample_pairs", "swap_patches"]
