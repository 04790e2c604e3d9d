"""DRAEM's source augmentation, evaluated only at the pixels that will be blended.

:func:`augment_pixels` gives what :func:`anolearn.forge.augment.draem_augment` gives, with the
same random draws, but only at the pixels where a mask is set, packed per image. The rows are
reordered for speed (chains that share operations become neighbours, and each chain takes the
cheapest whole-image form it allows); the parameters are drawn beforehand in the plain
function's order (:class:`~.chains.Draws`), so the reordering changes no draw, and the
result is handed back in the images' order.
"""
from __future__ import annotations

import torch

from .. import augment as A
from ...imageops import check_images
from ..draws import check_generator
from .chains import DenseState, Draws, dense_steps, kind_of, per_channel, run_chains, wanted_pixels
from .palette import IndexedImages, LevelState, PaletteState, chain_state

_FORMS = ("dense", "palette", "levels")


def augment_pixels(images: torch.Tensor | IndexedImages, where: torch.Tensor, generator: torch.Generator | None = None,
                   n_ops: int = 3, ops: dict[str, A.Augmentation] | None = None,
                   return_choices: bool = False) -> tuple[torch.Tensor, ...]:
    """``draem_augment(images, generator, n_ops, ops)`` at the pixels where ``where`` is set.

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1] (not modified), or
            :class:`~.palette.IndexedImages` (textures of the built-in bank kept as palette and
            index: pointwise steps and histograms then cost per colour or per level, and only the
            chains that need a whole image after a sharpness or rotation step are made dense).
        where: ``(B, 1, H, W)`` mask of the wanted pixels (bool, or 0/1).
        generator: random source on the images' device.
        n_ops: operations per sample (DRAEM: 3).
        ops: name -> :class:`~anolearn.forge.augment.Augmentation`; default DRAEM's ten.
        return_choices: also return the ``(B, n_ops)`` table of operations.

    Returns:
        ``(packed, rows, pos, slot)`` (and the choices if asked): wanted pixel ``n`` is flat
        pixel ``pos[n]`` of image ``rows[n]`` and its augmented value is
        ``packed[rows[n], :, 0, slot[n]]`` (``packed`` is ``(B, 3, 1, L)``, ``L`` the largest
        number of wanted pixels in an image).
    """
    dense = isinstance(images, torch.Tensor)
    if dense:
        check_images(images)
    b, _, h, w = images.shape
    dev = images.device
    dtype = images.dtype if dense else torch.float32
    check_generator(generator, dev)
    augs = list((A.DRAEM_AUGMENTATIONS if ops is None else ops).values())
    if not 0 <= n_ops <= len(augs):
        raise ValueError(f"n_ops must be between 0 and {len(augs)}, got {n_ops}.")
    if where.shape != (b, 1, h, w):
        raise ValueError(f"where must be a (B, 1, H, W) mask matching the images {(b, 3, h, w)}, "
                         f"got {tuple(where.shape)}.")
    rows, pos, slot, where_px, counts = wanted_pixels(where)
    # the table of choices as draem_augment draws it
    choices = torch.rand(b, len(augs), generator=generator, device=dev).argsort(1)[:, :n_ops]
    out = (rows, pos, slot, choices) if return_choices else (rows, pos, slot)
    if b == 0 or n_ops == 0:
        x = images if dense else images.dense()
        packed = DenseState(x, where_px).pack(slice(0, b), where_px.shape[1]).unsqueeze(2) if b else \
            torch.zeros(0, 3, 1, 1, device=dev, dtype=dtype)
        return (packed, *out)
    table = choices.tolist()
    kinds = [kind_of(aug) for aug in augs]
    names = [k for k, _ in kinds]
    # Row order: grouped by whole-image form (all dense for a dense batch), then most
    # whole-image steps first (run_chains needs that), then by chain, so that rows sharing an
    # operation are neighbours.
    form = ["dense"] * b if dense else [chain_state(r, names, [per_channel(a) for a in augs]) for r in table]
    order = sorted(range(b), key=lambda i: (_FORMS.index(form[i]), -dense_steps(table[i], names), table[i]))
    position = [0] * b
    for p, i in enumerate(order):
        position[i] = p
    draws = Draws(table, augs, generator, dev, dtype, position)

    packed = torch.zeros(b, 3, 1, where_px.shape[1], device=dev, dtype=dtype)  # (in sorted order)
    start = 0
    for name in _FORMS:
        n = form.count(name)
        if n == 0:
            continue
        part = slice(start, start + n)
        members = order[part]
        index = torch.tensor(members, device=dev)
        if name == "dense":
            x = images.index_select(0, index) if dense else images.select(members).dense()
            state = DenseState(x, where_px.index_select(0, index))
        else:
            state = (PaletteState if name == "palette" else LevelState)(images.select(members),
                                                                         where_px.index_select(0, index))
        run_chains(state, [counts[i] for i in members], packed[part], [table[i] for i in members], augs, kinds,
                   draws, first=start)
        start += n
    packed = packed.index_select(0, torch.tensor(position, device=dev))  # back to the images' order
    return (packed, *out)


__all__ = ["augment_pixels"]
