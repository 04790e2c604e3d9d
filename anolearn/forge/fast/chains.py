"""Running DRAEM's augmentation chains exactly at the wanted pixels only.

A chain is the list of operations one source image goes through (DRAEM: three of ten). When
only some output pixels are wanted (those inside the anomaly mask), a chain runs on whole
images for its first ``d`` steps (:func:`dense_steps`: up to the last step that reads a whole
image -- a histogram, or the stencil of sharpness or rotation), and from then on on the wanted
pixels alone, packed ``(B, 3, 1, L)`` (pointwise operations do not mind the odd shape). Step
``d`` itself reads the whole image it starts from: a histogram operation builds its look-up
table there, sharpness and rotation evaluate their stencil there (:mod:`.pixels`).

The whole images can be a dense tensor (:class:`DenseState`) or palettes and level tables of
the built-in textures (:mod:`.palette`); :func:`run_chains` does not mind which. The random
parameters are drawn beforehand (:class:`Draws`), in the order
:func:`anolearn.forge.augment.draem_augment` draws them, so the rows can be processed in any
order and grouping and still get the draws the plain augmentation gives them.
"""
from __future__ import annotations

import torch

from .. import augment as A
from .pixels import DenseReader, rotate_at, sharpness_at

#: How each of DRAEM's operations uses its input. A pointwise operation needs only the pixel
#: itself; a histogram operation needs its whole input image to build its look-up table, then is
#: pointwise; sharpness and rotation need their whole input but can give just some output
#: pixels. Anything else (an operation not listed here) is run on whole images.
POINTWISE = (A.gamma_contrast, A.multiply_add_brightness, A.hue_saturation, A.solarize, A.posterize, A.invert)
HISTOGRAM = {A.autocontrast: A.autocontrast_lut, A.equalize: A.equalize_lut}
AT_PIXELS = {A.sharpness: sharpness_at, A.affine_rotate: rotate_at}
#: The operations that map each channel's value through a function of that value alone (given
#: their draws): brightness and hue mix the channels, sharpness and rotation mix pixels.
PER_CHANNEL = (A.gamma_contrast, A.solarize, A.posterize, A.invert, A.autocontrast, A.equalize)


def kind_of(aug: A.Augmentation) -> tuple[str, object]:
    """``(kind, helper)``: ``("pointwise", None)``, ``("histogram", lut_builder)``,
    ``("at_pixels", pixelwise_version)`` or ``("image", None)``."""
    if aug.fn in POINTWISE:
        return "pointwise", None
    if aug.fn in HISTOGRAM:
        return "histogram", HISTOGRAM[aug.fn]
    if aug.fn in AT_PIXELS:
        return "at_pixels", AT_PIXELS[aug.fn]
    return "image", None


def per_channel(aug: A.Augmentation) -> bool:
    return aug.fn in PER_CHANNEL


def dense_steps(row: list[int], kinds: list[str]) -> int:
    """How many leading steps of a chain must run on whole images when only some output pixels
    are wanted: every step before a histogram or sharpness/rotation step (they read their whole
    input), and every step up to an unknown operation."""
    need = 0
    for step, k in enumerate(row):
        if kinds[k] == "image":
            need = step + 1
        elif kinds[k] != "pointwise":
            need = max(need, step)
    return need


class Draws:
    """Every row's random parameters, drawn exactly as :func:`~anolearn.forge.augment.draem_augment`
    draws them: step by step, operation by operation, one draw for the rows that chose it (in
    the images' order).

    Args:
        table: ``table[i]``, the chain of image ``i``.
        augs: the operations.
        position: ``position[i]``, the row that holds image ``i`` in the engine's own order; the
            draws are looked up by that row (:meth:`of`).
    """

    def __init__(self, table: list[list[int]], augs: list[A.Augmentation], generator: torch.Generator | None,
                 device: torch.device, dtype: torch.dtype, position: list[int]):
        n_ops = len(table[0]) if table else 0
        self.device = device
        self.values: list[list[dict]] = [[{} for _ in augs] for _ in range(n_ops)]  # [step][k]: name -> (n_k, ...)
        self.index = [[0] * len(table) for _ in range(n_ops)]  # [step][row]: where that row's draw is in values
        for step in range(n_ops):
            for k, aug in enumerate(augs):
                images = [i for i, chain in enumerate(table) if chain[step] == k]
                if images:
                    self.values[step][k] = aug.draw(len(images), generator, device, dtype)
                    for j, i in enumerate(images):
                        self.index[step][position[i]] = j

    def of(self, step: int, k: int, rows: slice | list[int]) -> dict[str, torch.Tensor]:
        """The parameters of operation ``k`` at ``step`` for some rows (which all run it there)."""
        rows = range(rows.start, rows.stop) if isinstance(rows, slice) else rows
        at = [self.index[step][r] for r in rows]
        if at == list(range(at[0], at[0] + len(at))):  # neighbours in the draw: a view
            return {name: v[at[0]:at[0] + len(at)] for name, v in self.values[step][k].items()}
        at = torch.tensor(at, device=self.device)
        return {name: v.index_select(0, at) for name, v in self.values[step][k].items()}


def wanted_pixels(where: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Bookkeeping of the wanted pixels of a ``(B, 1, H, W)`` mask (bool, or 0/1 floats).

    Returns ``(rows, pos, slot, where_px, counts)``: wanted pixel ``n`` is flat pixel ``pos[n]``
    of image ``rows[n]``, stored in slot ``slot[n]`` of its image's packed list; ``where_px``
    ``(B, L)`` lists each image's wanted flat pixels (padded with pixel 0 up to ``L``, the largest
    count); ``counts`` (a list) says how many each image has.
    """
    b = where.shape[0]
    hw = where[0].numel() if b else 1
    wanted = where if where.dtype == torch.bool else where > 0.5
    flat = nonzero(wanted.reshape(-1))  # sorted: each row's pixels are contiguous
    rows = torch.div(flat, hw, rounding_mode="floor")
    pos = flat - rows * hw
    counts = torch.bincount(rows, minlength=b)
    slot = torch.arange(rows.numel(), device=where.device) - (torch.cumsum(counts, 0) - counts)[rows]
    count_list = counts.tolist()  # host round trip
    length = max(count_list, default=0) or 1
    where_px = torch.zeros(b, length, device=where.device, dtype=torch.long)
    where_px.view(-1)[rows * length + slot] = pos
    return rows, pos, slot, where_px, count_list


def nonzero(flags: torch.Tensor) -> torch.Tensor:
    """``flags.nonzero().squeeze(1)`` for a 1-D bool tensor, faster when few are set.

    A mask is mostly empty (a DRAEM mask covers about 5 % of its image), so the flags are first
    read eight at a time as 64-bit words: only the words with some flag set are unpacked.
    """
    if flags.numel() % 8 or flags.numel() < 64 or flags.storage_offset() % 8 or not flags.is_contiguous():
        return flags.nonzero().squeeze(1)
    hit = flags.view(torch.int64).nonzero().squeeze(1)  # words with a flag set
    inner = flags.view(-1, 8).index_select(0, hit).view(-1).nonzero().squeeze(1)  # 8 flags per such word
    return (hit * 8).index_select(0, inner // 8).add_(inner % 8)


def take(t: torch.Tensor, rows: slice | list[int]) -> torch.Tensor:
    """Rows of ``t``: a view for a slice, a copy for a list of indices."""
    return t[rows] if isinstance(rows, slice) else t.index_select(0, torch.tensor(rows, device=t.device))


def put(t: torch.Tensor, rows: slice | list[int], value: torch.Tensor) -> None:
    """Write ``value`` into rows ``rows`` of ``t`` (in place)."""
    if isinstance(rows, slice):
        t[rows] = value
    else:
        t.index_copy_(0, torch.tensor(rows, device=t.device), value)


def runs(column: list[int], start: int, stop: int):
    """Maximal ``(a, b, value)`` runs of equal values in ``column[start:stop]``."""
    a = start
    while a < stop:
        b = a + 1
        while b < stop and column[b] == column[a]:
            b += 1
        yield a, b, column[a]
        a = b


def groups(column: list[int], start: int, stop: int) -> list[tuple[int, slice | list[int]]]:
    """For each operation in ``column[start:stop]``, the rows that use it: ``(k, rows)``, rows as
    a slice when they are neighbours, else as a list (one call per operation, not per run)."""
    members: dict[int, list[int]] = {}
    for i in range(start, stop):
        members.setdefault(column[i], []).append(i)
    return [(k, slice(r[0], r[-1] + 1) if r[-1] - r[0] + 1 == len(r) else r) for k, r in members.items()]


class WholeImages:
    """What every form of whole images offers :func:`run_chains` besides ``apply``, ``reader``
    and ``histograms``: where the wanted pixels of some rows are, and their values packed
    ``(n, 3, length)``, read through the form's own reader (``where_px`` lists each row's wanted
    flat pixels, ``w`` is the width)."""

    def wanted(self, rows: slice | list[int], length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ys, xs)``, each ``(n, length)``: the first ``length`` wanted pixels of these rows."""
        px = take(self.where_px, rows)[:, :length]
        return torch.div(px, self.w, rounding_mode="floor"), px % self.w

    def pack(self, rows: slice | list[int], length: int) -> torch.Tensor:
        reader = self.reader(rows)
        return reader.read(reader.locate(*self.wanted(rows, length)))


class DenseState(WholeImages):
    """Whole images as a dense ``(B, 3, H, W)`` tensor (updated in place). Operations on whole
    images take runs of neighbouring rows (``any_rows`` False): a slice of the batch is a view,
    a list of rows would be a copy of whole images."""

    any_rows = False

    def __init__(self, x: torch.Tensor, where_px: torch.Tensor):
        self.x, self.where_px = x, where_px
        self.b, _, self.h, self.w = x.shape

    def apply(self, rows: slice, aug: A.Augmentation, kind: str, helper, params: dict) -> None:
        self.x[rows] = aug.fn(self.x[rows], **params)

    def reader(self, rows: slice | list[int]) -> DenseReader:
        return DenseReader(self.x, rows)

    def histograms(self, rows: slice | list[int]) -> torch.Tensor:
        return A.histograms(take(self.x, rows))


def run_chains(state, counts: list[int], packed: torch.Tensor, table: list[list[int]], augs: list[A.Augmentation],
               kinds: list[tuple], draws: Draws, first: int = 0) -> None:
    """Run the chains of ``table`` (rows sorted by decreasing :func:`dense_steps`), exact at the
    wanted pixels, and write those into ``packed`` ``(B, 3, 1, L)``.

    ``state`` holds the whole images: it applies an operation to some rows, packs their wanted
    pixels, reads pixels for a stencil and counts histograms. Packed pixels (and palettes) are
    small, so all the rows that use an operation at a step are gathered into one call; dense
    whole images are worked on in runs of neighbouring rows (slices, no copies). ``counts`` (how
    many pixels each row wants) lets each call work on the first ``max(counts)`` slots of its
    rows only. ``draws`` holds every row's parameters, ``table``'s rows being its rows
    ``first``, ``first + 1``, ...
    """
    b, n_ops = len(table), len(table[0])
    kind_names = [k for k, _ in kinds]
    dense = [dense_steps(row, kind_names) for row in table]  # non-increasing down the batch

    def width(rows: slice | list[int]) -> int:  # packed slots in use among these rows
        return max(1, max(counts[rows] if isinstance(rows, slice) else [counts[i] for i in rows]))

    def pack(rows: list[int]) -> None:  # their wanted pixels, from the whole images
        if rows:
            rows = slice(rows[0], rows[-1] + 1) if rows[-1] - rows[0] + 1 == len(rows) else rows
            n = width(rows)
            put(packed[:, :, 0, :n], rows, state.pack(rows, n))

    def drawn(step: int, k: int, rows: slice | list[int]) -> dict:  # these rows' parameters
        at = slice(rows.start + first, rows.stop + first) if isinstance(rows, slice) else [r + first for r in rows]
        return draws.of(step, k, at)

    for step in range(n_ops):
        column = [row[step] for row in table]
        n_dense = sum(1 for d in dense if d > step)  # rows 0..n_dense-1 still whole
        n_switch = sum(1 for d in dense if d == step)  # rows that become packed at this step
        if state.any_rows:  # all the rows that use an operation, in one call
            whole = groups(column, 0, n_dense)
        else:  # runs of neighbouring rows: slices of the batch, no copies
            whole = [(k, slice(a, z)) for a, z, k in runs(column, 0, n_dense)]
        for k, rows in whole:
            state.apply(rows, augs[k], *kinds[k], drawn(step, k, rows))
        # the rows that switch to packed pixels at this step, except those whose step reads a
        # stencil of the whole image: their wanted pixels, in one go
        pack([i for i in range(n_dense, n_dense + n_switch) if kind_names[column[i]] != "at_pixels"])
        for k, rows in groups(column, n_dense, b):
            kind, helper = kinds[k]
            n = width(rows)
            if kind == "at_pixels":  # from the whole image (these rows are all switching)
                out = helper(state.reader(rows), *state.wanted(rows, n), **drawn(step, k, rows))
                put(packed[:, :, :, :n], rows, out)
                continue
            part = take(packed[:, :, :, :n], rows)
            if kind == "histogram":  # table from the whole image (these rows are all switching)
                part = A.apply_lut(part, helper(state.histograms(rows), **drawn(step, k, rows)))
            else:
                part = augs[k].fn(part, **drawn(step, k, rows))
            put(packed[:, :, :, :n], rows, part)
    pack(list(range(sum(1 for d in dense if d == n_ops))))  # chains that ran on whole images throughout


__all__ = ["DenseState", "Draws", "WholeImages", "dense_steps", "kind_of", "nonzero", "per_channel",
           "run_chains", "wanted_pixels"]
