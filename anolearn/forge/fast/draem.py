"""The second half of the DRAEM forger -- source, augmentation, opacity, blend -- at the masked pixels only.

:func:`anolearn.forge.draem.draem_forge` with ``engine="fast"`` calls :func:`forge_pixels` once
the Perlin masks are drawn. A mask covers about 5 % of its image on average, and only there is
the augmented source blended, so only there is it computed (:func:`~.augment.augment_pixels`);
the blend writes those pixels straight into a copy of the batch. On the CPU the built-in
textures are not even copied out of their bank: each stays a bank entry, seen as a palette or
as level tables (:mod:`.palette`). The random numbers are drawn in the plain forger's order, and
the blend is the same float arithmetic, so the output equals the plain forger's.

The temporaries are made in inference mode (no autograd bookkeeping); what is returned is
made outside it, so it can enter a training graph.
"""
from __future__ import annotations

import torch

from ..draws import uniform
from ..sources import AnomalySource, TextureSource
from .augment import augment_pixels
from .palette import indexed_textures


def forge_pixels(clean: torch.Tensor, forged: torch.Tensor, m: torch.Tensor, masks: torch.Tensor,
                 source: AnomalySource, generator: torch.Generator | None, n_augment: int,
                 beta: tuple[float, float]) -> torch.Tensor:
    """Blend augmented source images into images ``forged`` of ``clean`` inside masks ``m``.

    Args:
        clean: ``(B, 3, H, W)`` float in [0, 1], the normal images.
        forged: ``(k,)`` long, the rows of ``clean`` to forge.
        m: ``(k, 1, H, W)`` bool, their masks.
        masks: ``(B, 1, H, W)`` zeros, the whole batch's masks: filled in here (1 inside ``m``).
        source, generator, n_augment, beta: as :func:`~anolearn.forge.draem.draem_forge`.

    Returns:
        ``(B, 3, H, W)``: ``clean`` with ``(1 - beta) I + beta A`` written inside each mask.
    """
    k, (h, w), dev = forged.numel(), clean.shape[-2:], clean.device
    with torch.inference_mode():
        if dev.type == "cpu" and isinstance(source, TextureSource):  # as palettes (on a GPU, whole-image
            # operations are cheap and the palette bookkeeping's host round trips are not)
            anomaly = indexed_textures(source, k, h, w, generator, dev)
        else:
            anomaly = source.sample(k, h, w, generator=generator, device=dev)
        packed, rows, pos, slot = augment_pixels(anomaly, m, generator, n_ops=n_augment)  # (k, 3, 1, L)
        packed = packed.to(clean.dtype)
        opacity = uniform(*beta, (k, 1, 1, 1), generator, dev, clean.dtype).view(k)

    out = clean.clone(memory_format=torch.contiguous_format)  # forged pixels written over it
    # Every wanted pixel as a flat position: channel c of pixel pos of image row sits at
    # (row * 3 + c) * H W + pos in the output (and likewise in the packed pixels, with L for H W).
    hw, length = h * w, packed.shape[-1]
    channel = torch.arange(3, device=dev)
    target = forged[rows]  # the batch row of every wanted pixel
    at_out = ((target * (3 * hw) + pos).unsqueeze(1) + channel * hw).view(-1)  # (N * 3,)
    at_packed = ((rows * (3 * length) + slot).unsqueeze(1) + channel * length).view(-1)
    image = out.view(-1).index_select(0, at_out).view(-1, 3)  # (N, 3) the clean pixels I inside the masks
    anomaly = packed.view(-1).index_select(0, at_packed).view(-1, 3)  # (N, 3) the augmented source A there
    beta_px = opacity[rows].unsqueeze(1)  # (N, 1)
    # (1 - beta) I + beta A: the plain forger's (1 - M) I + (1 - beta) M I + beta M A where M = 1,
    # the same floats
    out.view(-1).index_copy_(0, at_out, ((1 - beta_px) * image + beta_px * anomaly).view(-1))
    masks.view(-1).index_fill_(0, target * hw + pos, 1.0)  # the masks are exactly the blended pixels
    return out


__all__ = ["forge_pixels"]
