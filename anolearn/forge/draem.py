"""DRAEM-style forgeries: a foreign texture blended into the image inside a Perlin blob.

Zavrtanik, Kristan and Skočaj, "DRAEM -- A discriminatively trained reconstruction embedding
for surface anomaly detection", ICCV 2021. To train a network that *segments* anomalies
without ever seeing one, DRAEM forges them: it thresholds Perlin noise into an irregular mask
``M``, takes an anomaly source image ``A`` (a DTD texture passed through three random
augmentations) and blends it into the normal image ``I`` with an opacity ``beta``:

    I_a = (1 - M) * I  +  (1 - beta) * M * I  +  beta * M * A.

Outside the mask the image is untouched; inside it, ``beta = 1`` replaces the pixels with the
texture and small ``beta`` leaves a faint, translucent stain. The network sees both, so it
learns to find subtle anomalies as well as blatant ones.

The recipe of the official code (``VitjanZ/DRAEM``, ``data_loader.py``), and what we do:

=====================  =====================================  ====================================
step                    DRAEM's code                           here (parameter)
=====================  =====================================  ====================================
leave normal            with probability 0.5                   ``p_normal=0.5``
mask                    Perlin, ``2**a x 2**b`` cells,          same (``exponents=(0, 5)``,
                        ``a, b ~ U{0..5}``, noise map turned    ``noise_rotation=(-90, 90)``,
                        by ``U(-90, 90)``, threshold 0.5        ``threshold=0.5``)
source                  a DTD image resized to 256 x 256       DTD if fetched, else built-in
                                                               textures (``source="auto"``)
source augmentation     3 of 10 imgaug operations              the same ten, batched (``n_augment``)
opacity                 ``beta ~ U(0, 0.8)`` weighting ``I``   ``beta ~ U(0.1, 1.0)`` weighting
                        (i.e. ``A`` weighted by 0.2 to 1)      ``A``, as the paper (``beta``)
image rotation          ``U(-90, 90)`` with probability 0.3    off by default (``p_rotate``)
=====================  =====================================  ====================================

Two notes. The paper writes ``beta ~ U(0.1, 1)`` on the texture; the code draws the weight
of the *image* from ``U(0, 0.8)``, which is a texture weight in ``U(0.2, 1)``; both are one
parameter away (``beta=(0.2, 1.0)`` reproduces the code). And a mask can come out empty when
the noise of a coarse lattice never exceeds 0.5 (about 5 % of draws at 256 px): DRAEM keeps
such samples as normal ones, and so do we (``Forged.labels`` reads 0 for them).

The image rotation of DRAEM's code is augmentation of the *normal* image, not part of the
anomaly; when ``p_rotate > 0`` the rotated clean images are returned as ``Forged.originals``
(the reconstruction target) and the mask contract holds against them.

This module is the forger as chapter 3 builds it: dense tensors, the source augmented as a
whole image (:func:`~anolearn.forge.augment.draem_augment`), the blend as the formula above.
``engine="fast"`` hands the second half (source, augmentation, opacity, blend) to
:mod:`anolearn.forge.fast`, which computes the very same forgeries only inside the masks
(about 5 % of the pixels): same random numbers, same float operations, about twice as fast
on the CPU (``benchmarks/forge_throughput.py``). ``engine="auto"`` (the default) uses it on the
CPU and the plain code on other devices.
"""
from __future__ import annotations

import torch

from ..imageops import check_images
from . import fast
from .augment import DRAEM_AUGMENTATIONS, draem_augment
from .draws import check_generator, coin, uniform
from .geometry import rotate
from .perlin import perlin_mask
from .result import Forged
from .sources import AnomalySource, resolve_source

#: The forger's engines: "plain" (this module), "fast" (anolearn.forge.fast, the same output),
#: "auto" (fast on the CPU, where it was measured faster, plain on other devices).
ENGINES = ("auto", "plain", "fast")


def blend(image: torch.Tensor, mask: torch.Tensor, anomaly: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """DRAEM's blend ``(1 - M) I + (1 - beta) M I + beta M A``.

    Args:
        image: ``(B, 3, H, W)`` the normal images ``I``.
        mask: ``(B, 1, H, W)`` in {0, 1}, the masks ``M``.
        anomaly: ``(B, 3, H, W)`` the augmented source images ``A``.
        beta: ``(B, 1, 1, 1)`` the opacities.

    Returns:
        ``(B, 3, H, W)``: ``I`` where ``M = 0``, ``(1 - beta) I + beta A`` where ``M = 1``.
    """
    out = (1 - mask) * image  # the three terms summed in place: fewer full-size temporaries
    out += (1 - beta) * mask * image
    out += beta * mask * anomaly
    return out


def draem_forge(images: torch.Tensor, generator: torch.Generator | None = None,
                source: AnomalySource | str | torch.Tensor = "auto", p_normal: float = 0.5,
                beta: tuple[float, float] = (0.1, 1.0), threshold: float = 0.5,
                exponents: tuple[int, int] = (0, 5), noise_rotation: tuple[float, float] | None = (-90.0, 90.0),
                n_augment: int = 3, p_rotate: float = 0.0, rotation: tuple[float, float] = (-90.0, 90.0),
                engine: str = "auto") -> Forged:
    """Forge DRAEM-style anomalies into a batch of normal images.

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1].
        generator: random source on the images' device (None = torch's global one).
        source: anomaly source (see :func:`~anolearn.forge.sources.resolve_source`).
        p_normal: probability of leaving a sample normal.
        beta: range of the texture's opacity inside the mask.
        threshold: Perlin threshold (DRAEM: 0.5).
        exponents: inclusive range of the lattice exponents ``a, b`` (cells ``2**a x 2**b``).
        noise_rotation: range in degrees the noise is turned by; None = no turn.
        n_augment: augmentations applied to each source image (0 to 10).
        p_rotate: probability of first turning the normal image itself (DRAEM's code: 0.3).
        rotation: range in degrees of that turn (black corners, as imgaug's default).
        engine: ``"plain"`` (the code below), ``"fast"`` (:mod:`anolearn.forge.fast`: the same
            forgeries, computed only inside the masks) or ``"auto"`` (fast on the CPU, plain on
            other devices). The output does not depend on it (up to the last float bit).

    Returns:
        :class:`Forged`: ``images`` forged, ``masks`` 1 inside the blended blob, ``originals``
        the clean images (the input, or its rotated version where ``p_rotate`` fired).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> out = draem_forge(torch.rand(8, 3, 64, 64), g, source="textures")
        >>> out.images.shape, out.masks.shape
        (torch.Size([8, 3, 64, 64]), torch.Size([8, 1, 64, 64]))
    """
    check_images(images)
    check_generator(generator, images.device)
    _check_settings(p_normal, p_rotate, beta, n_augment, engine)
    src = resolve_source(source)
    b, _, h, w = images.shape
    dev = images.device

    clean = images
    if p_rotate > 0:  # DRAEM's code first turns some of the normal images themselves
        turn = coin(p_rotate, (b,), generator, dev)
        angles = uniform(*rotation, (b,), generator, dev)
        which = turn.nonzero().squeeze(1)  # host round trip: turn only the samples that drew it
        if which.numel():
            turned = rotate(images.index_select(0, which), angles.index_select(0, which), padding_mode="zeros")
            clean = images.index_copy(0, which, turned.clamp_(0, 1))

    normal = coin(p_normal, (b,), generator, dev)
    forged = (~normal).nonzero().squeeze(1)  # host round trip: which samples to forge
    k = forged.numel()
    masks = torch.zeros(b, 1, h, w, device=dev, dtype=images.dtype)
    if k == 0:
        return Forged(clean, masks, clean)
    m = perlin_mask((k, h, w), threshold=threshold, generator=generator, device=dev, exponents=exponents,
                    rotation=noise_rotation, dtype=torch.bool)  # (k, 1, H, W)
    if _engine(engine, dev) == "fast":  # the same forgeries, computed only inside the masks
        out = fast.forge_pixels(clean, forged, m, masks, src, generator, n_augment, beta)
        return Forged(out, masks, clean)

    mask = m.to(images.dtype)
    anomaly = src.sample(k, h, w, generator=generator, device=dev)  # (k, 3, H, W) source images
    anomaly = draem_augment(anomaly, generator, n_ops=n_augment).to(images.dtype)
    opacity = uniform(*beta, (k, 1, 1, 1), generator, dev, images.dtype)  # beta, one per sample
    out = clean.index_copy(0, forged, blend(clean.index_select(0, forged), mask, anomaly, opacity))
    masks.index_copy_(0, forged, mask)
    return Forged(out, masks, clean)


def _check_settings(p_normal: float, p_rotate: float, beta: tuple[float, float], n_augment: int, engine: str) -> None:
    if not 0 <= p_normal <= 1 or not 0 <= p_rotate <= 1:
        raise ValueError(f"p_normal and p_rotate must be probabilities, got {p_normal} and {p_rotate}.")
    if not 0 <= beta[0] <= beta[1] <= 1:
        raise ValueError(f"beta must satisfy 0 <= low <= high <= 1, got {beta}.")
    if not 0 <= n_augment <= len(DRAEM_AUGMENTATIONS):
        raise ValueError(f"n_augment must be between 0 and {len(DRAEM_AUGMENTATIONS)}, got {n_augment}.")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}.")


def _engine(engine: str, device: torch.device) -> str:
    """``"auto"`` -> ``"fast"`` on the CPU, ``"plain"`` elsewhere."""
    if engine == "auto":
        return "fast" if device.type == "cpu" else "plain"
    return engine


class DraemForger:
    """Callable DRAEM-style forger: :func:`draem_forge` with its parameters fixed.

    The anomaly source is resolved once (``"auto"``: DTD when fetched, else the built-in
    textures), so the texture bank or DTD file list is built on the first call only.

    Example:
        >>> forger = DraemForger(source="textures", p_normal=0.5, beta=(0.1, 1.0))
        >>> out = forger(torch.rand(4, 3, 64, 64), generator=torch.Generator().manual_seed(0))
        >>> out.masks.shape
        torch.Size([4, 1, 64, 64])
    """

    def __init__(self, source: AnomalySource | str | torch.Tensor = "auto", p_normal: float = 0.5,
                 beta: tuple[float, float] = (0.1, 1.0), threshold: float = 0.5, exponents: tuple[int, int] = (0, 5),
                 noise_rotation: tuple[float, float] | None = (-90.0, 90.0), n_augment: int = 3,
                 p_rotate: float = 0.0, rotation: tuple[float, float] = (-90.0, 90.0), engine: str = "auto"):
        _check_settings(p_normal, p_rotate, beta, n_augment, engine)
        self.source = resolve_source(source)
        self.params = dict(p_normal=p_normal, beta=tuple(beta), threshold=threshold, exponents=tuple(exponents),
                           noise_rotation=None if noise_rotation is None else tuple(noise_rotation),
                           n_augment=n_augment, p_rotate=p_rotate, rotation=tuple(rotation), engine=engine)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> Forged:
        return draem_forge(images, generator, source=self.source, **self.params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"DraemForger(source={self.source!r}, {args})"


__all__ = ["ENGINES", "DraemForger", "blend", "draem_forge"]
