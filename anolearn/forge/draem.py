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

Speed: the whole batch is forged at once, and only what ends up in the output is computed. The
source is blended inside the mask only (about 5 % of the pixels on average), so the source
augmentation is evaluated only there: the steps that read whole images (sharpness, rotation,
the histograms of autocontrast and equalize) still see whole images, and the pointwise steps
after them run on the masked pixels alone, packed (see
:func:`~anolearn.forge.augment.draem_augment_pixels`); the blend writes those pixels straight
into a copy of the batch. On the CPU, the built-in textures are not even copied out of their
bank: each stays a bank entry, seen as a palette of distinct colours plus an index, or as
per-channel tables of its 256 levels (see :mod:`~anolearn.forge.palette`), so the whole-image
steps before the mask is applied cost per colour or per level, not per pixel. The source images
are independent draws, so samples that share an operation are made neighbours and processed as
one slice (a random permutation then hands the results to the images, so no image's draw
depends on its place in the batch). The host round trips: which samples stay normal or get
turned, the augmentation choices, the mask pixel counts, the palette sizes and the lattice
scales (to group the Perlin evaluation by lattice size). The temporaries are made in inference
mode (no autograd bookkeeping); what is returned is made outside it. Every step draws from the
same distributions as the straightforward version; the tests check that the packed and palette
augmentations equal the whole-image one at every masked pixel (to float rounding).
"""
from __future__ import annotations

import torch

from .augment import DRAEM_AUGMENTATIONS, check_generator, check_images, coin, draem_augment_pixels, rotate, uniform
from .perlin import perlin_mask
from .result import Forged
from .sources import AnomalySource, resolve_source


def draem_forge(images: torch.Tensor, generator: torch.Generator | None = None,
                source: AnomalySource | str | torch.Tensor = "auto", p_normal: float = 0.5,
                beta: tuple[float, float] = (0.1, 1.0), threshold: float = 0.5,
                exponents: tuple[int, int] = (0, 5), noise_rotation: tuple[float, float] | None = (-90.0, 90.0),
                n_augment: int = 3, p_rotate: float = 0.0, rotation: tuple[float, float] = (-90.0, 90.0)) -> Forged:
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
    if not 0 <= p_normal <= 1 or not 0 <= p_rotate <= 1:
        raise ValueError(f"p_normal and p_rotate must be probabilities, got {p_normal} and {p_rotate}.")
    if not 0 <= beta[0] <= beta[1] <= 1:
        raise ValueError(f"beta must satisfy 0 <= low <= high <= 1, got {beta}.")
    if not 0 <= n_augment <= len(DRAEM_AUGMENTATIONS):
        raise ValueError(f"n_augment must be between 0 and {len(DRAEM_AUGMENTATIONS)}, got {n_augment}.")
    src = resolve_source(source)
    b, _, h, w = images.shape
    dev = images.device

    clean = images
    if p_rotate > 0:
        turn = coin(p_rotate, (b,), generator, dev)
        angles = uniform(*rotation, (b,), generator, dev)
        which = turn.nonzero().squeeze(1)  # host round trip: turn only the samples that drew it
        if which.numel():
            turned = rotate(images.index_select(0, which), angles.index_select(0, which), padding_mode="zeros")
            clean = images.index_copy(0, which, turned.clamp_(0, 1))

    normal = coin(p_normal, (b,), generator, dev)
    idx = (~normal).nonzero().squeeze(1)  # host round trip: how many samples to forge
    k = idx.numel()
    masks = torch.zeros(b, 1, h, w, device=dev, dtype=images.dtype)
    if k == 0:
        return Forged(clean, masks, clean)

    # The forging itself needs no autograd bookkeeping: its temporaries are made in inference
    # mode (cheaper per operation). What is returned is made outside it, so it can enter a
    # training graph (an inference tensor could not be saved for backward).
    with torch.inference_mode():
        m = perlin_mask((k, h, w), threshold=threshold, generator=generator, device=dev, exponents=exponents,
                        rotation=noise_rotation, dtype=torch.bool)  # (k, 1, H, W)
        if dev.type == "cpu" and hasattr(src, "sample_indexed"):  # built-in textures as palettes (forge.palette);
            # on a GPU, whole-image operations are cheap and the palette bookkeeping's host round trips are not
            anomaly = src.sample_indexed(k, h, w, generator=generator, device=dev)
        else:
            anomaly = src.sample(k, h, w, generator=generator, device=dev).to(images.dtype).contiguous()  # (k, 3, H, W)
        # Only the pixels inside the mask are blended, so only those are augmented (the steps that
        # read whole images still see whole images) and blended, packed: (k, 3, 1, L).
        packed, rows, pos, slot = draem_augment_pixels(anomaly, m, generator, n_ops=n_augment)
        packed = packed.to(images.dtype)
        opacity = uniform(*beta, (k,), generator, dev, images.dtype)

        # The augmentation sorted its rows by chain; a random permutation hands the (mask, source)
        # pairs to the images, so no image's draw depends on its place in the batch.
        idx = idx.index_select(0, torch.randperm(k, generator=generator, device=dev))

    out = clean.clone(memory_format=torch.contiguous_format)  # (B, 3, H, W); forged pixels written over it
    # Every wanted pixel as a flat position: channel c of pixel pos of image row sits at
    # (row * 3 + c) * H W + pos in the output (and likewise in the packed pixels, with L for H W).
    hw, length = h * w, packed.shape[-1]
    channel = torch.arange(3, device=dev)
    target = idx[rows]  # the batch row of every wanted pixel
    at_out = (target * (3 * hw) + pos).unsqueeze(1) + channel * hw  # (N, 3)
    at_packed = (rows * (3 * length) + slot).unsqueeze(1) + channel * length  # (N, 3)
    at_out, at_packed = at_out.view(-1), at_packed.view(-1)
    x_px = out.view(-1).index_select(0, at_out).view(-1, 3)  # (N, 3) the clean pixels I inside the masks
    a_px = packed.view(-1).index_select(0, at_packed).view(-1, 3)  # (N, 3) the augmented source A there
    # I + beta (A - I) = (1 - beta) I + beta A inside the mask; outside nothing is written
    out.view(-1).index_copy_(0, at_out, a_px.sub_(x_px).mul_(opacity[rows].unsqueeze(1)).add_(x_px).view(-1))
    masks.view(-1).index_fill_(0, target * hw + pos, 1.0)  # the masks are exactly the blended pixels
    return Forged(out, masks, clean)


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
                 p_rotate: float = 0.0, rotation: tuple[float, float] = (-90.0, 90.0)):
        self.source = resolve_source(source)
        self.params = dict(p_normal=p_normal, beta=tuple(beta), threshold=threshold, exponents=tuple(exponents),
                           noise_rotation=None if noise_rotation is None else tuple(noise_rotation),
                           n_augment=n_augment, p_rotate=p_rotate, rotation=tuple(rotation))
        if not 0 <= p_normal <= 1 or not 0 <= p_rotate <= 1:
            raise ValueError(f"p_normal and p_rotate must be probabilities, got {p_normal} and {p_rotate}.")

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> Forged:
        return draem_forge(images, generator, source=self.source, **self.params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"DraemForger(source={self.source!r}, {args})"


__all__ = ["DraemForger", "draem_forge"]
