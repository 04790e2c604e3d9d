"""SGSF's Saliency Augmentation Module (SAM): DRAEM forgeries placed on the object.

Xing, Sun and Li, "Self-Supervised Guided Segmentation Framework for Unsupervised Anomaly
Detection", arXiv 2209.12440, 2022 (journal version "NIGSF", IEEE TCSVT 2024). DRAEM
(:mod:`.draem`) forges anomalies anywhere in the image; on an object photographed against a
plain background, most of them land on the background, where real defects never occur. SAM
"introduces a saliency map to generate a saliency Perlin noise map, and develops an adaptive
segmentation strategy to generate irregular masks in the saliency region" (the abstract); the
forged samples are then made as in DRAEM.

**What is known and what is ours.** Only the abstract and a third-party reading of the journal
version were reachable: saliency maps come from the salient-object detector CPD, the Perlin
noise is "saliency" noise, the threshold is "adaptive", masks lie "in the saliency region",
the anomaly source is DTD as in DRAEM, and forged : normal samples = 3 : 1. No equation for the
saliency Perlin map or the adaptive threshold was found. The algorithm below is our
reconstruction, every choice a parameter:

1. saliency ``S`` in [0, 1] (``(B, 1, H, W)``) from a pluggable source; default the CPD stand-in
   :func:`anolearn.saliency.foreground_saliency` (see there for what it can and cannot do);
2. Perlin noise ``P`` in [-1, 1] exactly as DRAEM draws it (:func:`.perlin.perlin_noise`:
   ``2**a x 2**b`` cells, ``a, b ~ U{0..5}``, turned by ``U(-90, 90)`` degrees);
3. **saliency Perlin map** ``SP = P * S`` (product form): high only where the noise is high
   *and* the pixel is salient;
4. **salient region** ``R = {S >= region_threshold}`` (0.5: the object for a near-binary map);
5. **adaptive threshold** ``tau`` computed from ``SP`` inside ``R`` (``rule``):

   * ``"quantile"`` (default): ``tau`` = the ``1 - c`` quantile of ``SP`` over ``R``, with the
     coverage ``c ~ U(coverage)``, ``coverage = (0.1, 0.5)``: the mask takes the top ``c`` of the
     salient region, so it is never empty and scales with the object;
   * ``"relative"``: ``tau = t * max_R SP`` (``t = relative``, 0.5): DRAEM's 0.5 threshold
     applied to the noise rescaled to the region's peak;
   * ``"fixed"``: ``tau = threshold`` (0.5), DRAEM's rule on ``SP`` itself (dim saliency then
     shrinks or empties the mask);
6. mask ``M = 1[SP >= tau] * 1[R]``: irregular (a level set of smooth noise) and inside ``R``;
7. DRAEM blend with an augmented anomaly-source image ``A`` and opacity ``beta ~ U(0.1, 1)``:
   ``I_a = I + beta M (A - I)`` (untouched outside ``M``);
8. with probability ``p_normal = 0.25`` the sample stays normal (forged : normal = 3 : 1).

**Fallback when saliency is flat.** On textures there is no object: the stand-in returns an
all-zero map, and a real detector returns something weak and arbitrary. A map whose range is
below ``flat_eps``, or whose region ``R`` covers less than ``min_region`` of the image, is
treated as *no guidance*: the mask is DRAEM's own, ``M = 1[P > fallback_threshold]`` over the
whole image (``fallback="draem"``), or the quantile rule over the whole image
(``fallback="quantile"``). SAM on a texture is therefore plain DRAEM forging (the same
mask distribution, though not the same draws: the two forgers use the generator in a
different order).

Batched: one saliency pass (only on the samples that get forged), one Perlin draw, one sort
per batch for the quantiles, one blend.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..imageops import check_images
from ..saliency.foreground import as_saliency_source
from .augment import draem_augment
from .draws import check_generator, coin, uniform
from .perlin import perlin_noise
from .result import Forged
from .sources import AnomalySource, resolve_source

RULES = ("quantile", "relative", "fixed")


def saliency_perlin_masks(noise: torch.Tensor, saliency: torch.Tensor, generator: torch.Generator | None = None,
                          region_threshold: float = 0.5, rule: str = "quantile",
                          coverage: tuple[float, float] = (0.1, 0.5), relative: float = 0.5, threshold: float = 0.5,
                          flat_eps: float = 1e-3, min_region: float = 0.005, fallback: str = "draem",
                          fallback_threshold: float = 0.5) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """SAM's masks from Perlin noise and saliency (steps 3-6 of the module docstring).

    Args:
        noise: ``(B, H, W)`` or ``(B, 1, H, W)`` Perlin noise ``P`` in [-1, 1].
        saliency: ``(B, 1, H, W)`` saliency ``S`` in [0, 1].
        generator: random source (draws the coverage of the quantile rule).
        region_threshold: ``R = S >= region_threshold``.
        rule: ``"quantile"``, ``"relative"`` or ``"fixed"`` (how ``tau`` is chosen).
        coverage: range of the fraction of ``R`` the quantile rule covers.
        relative: ``t`` of the relative rule.
        threshold: ``tau`` of the fixed rule.
        flat_eps, min_region: a map with range ``< flat_eps`` or region area ``< min_region`` (as a
            fraction of the image) is flat.
        fallback: ``"draem"`` (``M = P > fallback_threshold``) or ``"quantile"`` (quantile rule with
            ``R`` = the whole image) for flat maps.
        fallback_threshold: DRAEM's Perlin threshold.

    Returns:
        ``(masks, info)``: ``masks`` ``(B, 1, H, W)`` float in {0, 1}; ``info`` holds ``weighted``
        (``SP``, ``(B, 1, H, W)``), ``region`` (``(B, 1, H, W)`` bool, the region actually used),
        ``flat`` (``(B,)`` bool) and ``tau`` (``(B,)``).
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}.")
    if fallback not in ("draem", "quantile"):
        raise ValueError(f"fallback must be 'draem' or 'quantile', got {fallback!r}.")
    if not 0 < coverage[0] <= coverage[1] <= 1:
        raise ValueError(f"coverage must satisfy 0 < low <= high <= 1, got {coverage}.")
    p = noise if noise.dim() == 4 else noise.unsqueeze(1)  # (B, 1, H, W)
    s = saliency.to(p.dtype)
    if s.shape != p.shape:
        raise ValueError(f"noise {tuple(p.shape)} and saliency {tuple(s.shape)} must have the same shape.")
    b = p.shape[0]
    dev = p.device
    region = s >= region_threshold  # (B, 1, H, W)
    spread = s.flatten(1).amax(1) - s.flatten(1).amin(1)
    flat = (spread < flat_eps) | (region.flatten(1).float().mean(1) < min_region)  # (B,)
    guided = ~flat

    weighted = p * s  # SP = P * S
    # Flat maps with the quantile fallback: rank the plain noise over the whole image.
    use_sp = torch.where(flat.view(b, 1, 1, 1), p, weighted)
    use_r = torch.where(flat.view(b, 1, 1, 1), torch.ones_like(region), region)
    c = uniform(*coverage, (b,), generator, dev, p.dtype)  # (B,) coverage (drawn for every rule: same stream)
    scores = use_sp.masked_fill(~use_r, float("-inf")).flatten(1)  # (B, N)
    n_region = use_r.flatten(1).sum(1)  # (B,)
    if rule == "quantile" or fallback == "quantile":
        ranked = scores.sort(dim=1, descending=True).values  # (B, N)
        k = (c * n_region).ceil().clamp(min=1).long() - 1  # index of the last pixel kept
        tau_q = ranked.gather(1, k[:, None])[:, 0]
    if rule == "quantile":
        tau = tau_q
    elif rule == "relative":
        tau = relative * scores.amax(1)
    else:
        tau = torch.full((b,), threshold, device=dev, dtype=p.dtype)
    if fallback == "quantile":
        tau = torch.where(flat, tau_q, tau)
    masks = (use_sp >= tau.view(b, 1, 1, 1)) & use_r
    if fallback == "draem":
        masks = torch.where(flat.view(b, 1, 1, 1), p > fallback_threshold, masks)
        tau = torch.where(flat, torch.full_like(tau, fallback_threshold), tau)
    region_used = torch.where(guided.view(b, 1, 1, 1), region, torch.ones_like(region))
    return masks.to(p.dtype), {"weighted": weighted, "region": region_used, "flat": flat, "tau": tau}


def sam_forge(images: torch.Tensor, generator: torch.Generator | None = None,
              saliency: str | Callable[[torch.Tensor], torch.Tensor] | torch.Tensor | None = "foreground",
              source: AnomalySource | str | torch.Tensor = "auto", p_normal: float = 0.25,
              beta: tuple[float, float] = (0.1, 1.0), exponents: tuple[int, int] = (0, 5),
              noise_rotation: tuple[float, float] | None = (-90.0, 90.0), n_augment: int = 3,
              region_threshold: float = 0.5, rule: str = "quantile", coverage: tuple[float, float] = (0.1, 0.5),
              relative: float = 0.5, threshold: float = 0.5, flat_eps: float = 1e-3, min_region: float = 0.005,
              fallback: str = "draem", fallback_threshold: float = 0.5, return_info: bool = False):
    """Forge SGSF-style anomalies: DRAEM blends inside saliency-restricted Perlin masks.

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1].
        generator: random source on the images' device (None = torch's global one).
        saliency: a name (``"foreground"``, ``"spectral_residual"``, ``"layercam"``, ``"none"``), a
            callable ``images -> (B, 1, H, W)`` in [0, 1] (e.g. a real salient-object detector), or
            precomputed ``(B, 1, H, W)`` maps.
        source: anomaly source (see :func:`anolearn.forge.sources.resolve_source`).
        p_normal: probability of leaving a sample normal (SGSF: forged : normal = 3 : 1).
        beta: range of the texture's opacity inside the mask.
        exponents, noise_rotation: DRAEM's Perlin lattice exponents and noise rotation.
        n_augment: augmentations of each anomaly-source image (DRAEM: 3).
        Other arguments: as :func:`saliency_perlin_masks`.
        return_info: also return a dict with ``saliency``, ``noise``, ``weighted``, ``region``
            (``(B, 1, H, W)``), ``flat`` and ``tau`` (``(B,)``); zeros / False for normal samples.

    Returns:
        :class:`Forged` (and the info dict, if asked).

    Example:
        >>> x = torch.rand(4, 3, 64, 64)
        >>> sal = torch.zeros(4, 1, 64, 64); sal[:, :, 16:48, 16:48] = 1.0
        >>> out = sam_forge(x, torch.Generator().manual_seed(0), saliency=sal, source="textures", p_normal=0.0)
        >>> bool((out.masks * (1 - sal)).max() == 0)  # every forged pixel is in the salient square
        True
    """
    check_images(images)
    check_generator(generator, images.device)
    if not 0 <= p_normal <= 1:
        raise ValueError(f"p_normal must be a probability, got {p_normal}.")
    if not 0 <= beta[0] <= beta[1] <= 1:
        raise ValueError(f"beta must satisfy 0 <= low <= high <= 1, got {beta}.")
    src = resolve_source(source)
    b, _, h, w = images.shape
    dev = images.device
    normal = coin(p_normal, (b,), generator, dev)
    idx = (~normal).nonzero().squeeze(1)  # host round trip: the samples to forge
    n = idx.numel()
    masks = torch.zeros(b, 1, h, w, device=dev, dtype=images.dtype)
    info = {"saliency": torch.zeros_like(masks), "noise": torch.zeros_like(masks), "weighted": torch.zeros_like(masks),
            "region": torch.zeros_like(masks, dtype=torch.bool), "flat": torch.zeros(b, dtype=torch.bool, device=dev),
            "tau": torch.zeros(b, device=dev, dtype=images.dtype)}
    if n == 0:
        out = Forged(images, masks, images)
        return (out, info) if return_info else out

    x = images.index_select(0, idx)  # (n, 3, H, W)
    if isinstance(saliency, torch.Tensor):
        if saliency.shape[0] != b:
            raise ValueError(f"The precomputed saliency has {saliency.shape[0]} maps for {b} images.")
        sal = saliency.index_select(0, idx.to(saliency.device))
    else:
        sal = as_saliency_source(saliency)(x)
    sal = sal.detach().to(device=dev, dtype=images.dtype)
    if sal.shape[-2:] != (h, w):
        sal = F.interpolate(sal, size=(h, w), mode="bilinear", align_corners=False)
    sal = sal.clamp(0, 1)
    noise = perlin_noise((n, h, w), generator=generator, device=dev, exponents=exponents,
                         rotation=noise_rotation).to(images.dtype).unsqueeze(1)  # (n, 1, H, W)
    m, parts = saliency_perlin_masks(noise, sal, generator, region_threshold, rule, coverage, relative, threshold,
                                     flat_eps, min_region, fallback, fallback_threshold)
    anomaly = src.sample(n, h, w, generator=generator, device=dev).to(images.dtype)  # (n, 3, H, W)
    if n_augment:
        anomaly = draem_augment(anomaly, generator, n_ops=n_augment)
    opacity = uniform(*beta, (n, 1, 1, 1), generator, dev, images.dtype)
    forged = torch.addcmul(x, opacity * m, anomaly - x)  # I + beta M (A - I): exactly I outside M
    out = images.index_copy(0, idx, forged)
    masks.index_copy_(0, idx, m)
    result = Forged(out, masks, images)
    if not return_info:
        return result
    for key, val in (("saliency", sal), ("noise", noise), *parts.items()):
        info[key] = info[key].index_copy(0, idx, val.to(info[key].dtype))
    return result, info


class SaliencyAugment:
    """Callable SAM forger: :func:`sam_forge` with its parameters fixed.

    The saliency source is a parameter: a name, or any callable ``images -> (B, 1, H, W)`` in
    [0, 1] -- plug a real salient-object detector in here. Precomputed maps for one call can be
    passed as ``forger(images, generator, saliency=maps)``.

    Example:
        >>> forger = SaliencyAugment(saliency="foreground", source="textures", p_normal=0.25)
        >>> out = forger(torch.rand(4, 3, 64, 64), generator=torch.Generator().manual_seed(0))
        >>> out.masks.shape
        torch.Size([4, 1, 64, 64])
    """

    def __init__(self, saliency: str | Callable[[torch.Tensor], torch.Tensor] | None = "foreground",
                 source: AnomalySource | str | torch.Tensor = "auto", p_normal: float = 0.25,
                 beta: tuple[float, float] = (0.1, 1.0), exponents: tuple[int, int] = (0, 5),
                 noise_rotation: tuple[float, float] | None = (-90.0, 90.0), n_augment: int = 3,
                 region_threshold: float = 0.5, rule: str = "quantile", coverage: tuple[float, float] = (0.1, 0.5),
                 relative: float = 0.5, threshold: float = 0.5, flat_eps: float = 1e-3, min_region: float = 0.005,
                 fallback: str = "draem", fallback_threshold: float = 0.5):
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}.")
        if not 0 <= p_normal <= 1:
            raise ValueError(f"p_normal must be a probability, got {p_normal}.")
        self.saliency = as_saliency_source(saliency)
        self.source = resolve_source(source)
        self.params = dict(p_normal=p_normal, beta=tuple(beta), exponents=tuple(exponents),
                           noise_rotation=None if noise_rotation is None else tuple(noise_rotation),
                           n_augment=n_augment, region_threshold=region_threshold, rule=rule,
                           coverage=tuple(coverage), relative=relative, threshold=threshold, flat_eps=flat_eps,
                           min_region=min_region, fallback=fallback, fallback_threshold=fallback_threshold)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None,
                 saliency: torch.Tensor | None = None) -> Forged:
        return sam_forge(images, generator, saliency=self.saliency if saliency is None else saliency,
                         source=self.source, **self.params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"SaliencyAugment(saliency={self.saliency!r}, source={self.source!r}, {args})"


__all__ = ["RULES", "SaliencyAugment", "saliency_perlin_masks", "sam_forge"]
