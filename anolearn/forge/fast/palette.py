"""Images kept as a palette and an index, as PNG-8 and GIF files keep them: cheap colour operations.

A texture of the built-in bank (:class:`~anolearn.forge.sources.TextureSource`) is a uint8
image, and uint8 images repeat their colours: at 256 x 256 the bank's textures use about
13,000 distinct colours on average for their 65,536 pixels (a striped or checked texture a
few hundred, a mottled noise field or a colour photograph tens of thousands). Write such an
image as

    palette  P  (U, 3): its distinct colours,       index  I  (H, W): I[y, x] = which colour,

so that ``image[y, x] = P[I[y, x]]``. Then

* a **pointwise** operation ``f`` (gamma, brightness, hue and saturation, solarize, posterize,
  invert: each output pixel depends on that pixel's colour only) gives every pixel of one
  colour the same result: ``f(image)[y, x] = f(P)[I[y, x]]``. Run ``f`` on the ``U`` colours,
  keep the index;
* a **histogram** (what autocontrast and equalize read) counts pixels per level: count the
  palette's levels, each weighted by how many pixels carry that colour;
* a **stencil** (sharpness, rotation) needs neighbouring pixels: look them up, ``P[I[y', x']]``.

Most operations go further: gamma, solarize, posterize, invert and the tables of autocontrast
and equalize treat each channel alone. A chain of those maps level ``v`` of channel ``c`` to
one value, so the whole image is a table ``T[c, v]`` of 3 x 256 entries, and its histogram is
the source's level counts carried through ``T`` (:class:`LevelState`).

DRAEM augments each anomaly source with three such operations and keeps the result only inside
the anomaly mask, about 5 % of the pixels. Before that mask, its histogram operations need the
whole image: here they cost per level or per colour, not per pixel, and no dense float copy of
the source is made at all. Each chain takes the cheapest form it allows
(:func:`chain_state`): level tables when its whole-image steps act channel by channel (about
two chains in three), palettes when one of them mixes the channels (brightness, hue), and a
dense copy only when a whole image is needed *after* a stencil (e.g. rotate, then equalize;
about one chain in six). Every value is the one the dense version computes, the same float
operations on the same inputs (the tests check it, to the last bit or two: torch's vectorised
and scalar ``pow`` can round differently).

Random flips of the source change neither a palette nor the level counts; they change which
pixel reads which entry: pixel ``(y, x)`` of a flipped image is pixel ``(H - 1 - y, x)`` (or
``(y, W - 1 - x)``) of the bank image.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import augment as A
from ..sources import TextureSource, flipped_textures
from .chains import WholeImages, dense_steps, put, take


@dataclass(frozen=True)
class Palettes:
    """The palettes of a bank of uint8 images ``(N, 3, H, W)``, all in flat tensors.

    Attributes:
        colours: ``(sum U_n, 3)`` uint8, image ``n``'s colours at ``start[n] : start[n] + size[n]``.
        counts: ``(sum U_n,)`` how many pixels of its image carry each colour.
        start, size: ``(N,)`` long, where each image's palette lies and how long it is.
        index: ``(N, H * W)`` int32, the palette entry (counted from ``start[n]``) of every pixel.
        level_counts: ``(N, 3, 256)`` long, how many pixels of each image have each 8-bit level,
            channel by channel (for :class:`LevelState`).
    """

    colours: torch.Tensor
    counts: torch.Tensor
    start: torch.Tensor
    size: torch.Tensor
    index: torch.Tensor
    level_counts: torch.Tensor

    @staticmethod
    def of(bank: torch.Tensor) -> "Palettes":
        """Build the palettes of ``bank`` ``(N, 3, H, W)`` uint8 (one ``torch.unique`` per image)."""
        if bank.dtype != torch.uint8 or bank.dim() != 4 or bank.shape[1] != 3:
            raise ValueError(f"Expected a (N, 3, H, W) uint8 bank, got {tuple(bank.shape)} {bank.dtype}.")
        n = bank.shape[0]
        codes = bank.to(torch.int32)
        codes = (codes[:, 0] * 65536 + codes[:, 1] * 256 + codes[:, 2]).reshape(n, -1)  # one int per colour
        colours, counts, index, sizes = [], [], [], []
        for i in range(n):
            uniq, inverse, count = torch.unique(codes[i], return_inverse=True, return_counts=True)
            colours.append(torch.stack([uniq // 65536, uniq // 256 % 256, uniq % 256], 1).to(torch.uint8))
            counts.append(count)
            index.append(inverse.to(torch.int32))
            sizes.append(uniq.numel())
        size = torch.tensor(sizes, dtype=torch.long, device=bank.device)
        offset = torch.arange(n * 3, device=bank.device).view(n * 3, 1) * 256
        levels = torch.bincount((bank.reshape(n * 3, -1).long() + offset).view(-1), minlength=n * 3 * 256)
        return Palettes(torch.cat(colours), torch.cat(counts), torch.cumsum(size, 0) - size, size,
                        torch.stack(index), levels.view(n, 3, 256))


@dataclass
class IndexedImages:
    """A batch of source images drawn from a bank, kept as bank entries plus flips.

    Image ``i`` is bank image ``which[i]``, flipped left-right if ``flips[i, 0]`` and upside
    down if ``flips[i, 1]``. :meth:`dense` makes the float batch; :class:`LevelState` and
    :class:`PaletteState` work on level tables and palettes instead.
    """

    bank: torch.Tensor  # (N, 3, H, W) uint8
    palettes: Palettes | None  # None: only dense() is needed
    which: torch.Tensor  # (B,) long
    flips: torch.Tensor  # (B, 2) bool

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.which.shape[0], 3, *self.bank.shape[-2:])

    @property
    def device(self) -> torch.device:
        return self.bank.device

    def select(self, rows: slice | list[int]) -> "IndexedImages":
        """Some of the images (a slice or a list of indices)."""
        if not isinstance(rows, slice):
            rows = torch.tensor(rows, device=self.which.device)
        return IndexedImages(self.bank, self.palettes, self.which[rows], self.flips[rows])

    def dense(self) -> torch.Tensor:
        """The images as ``(B, 3, H, W)`` float in [0, 1], as :meth:`TextureSource.sample` makes them."""
        return flipped_textures(self.bank, self.which, self.flips)

    def strides(self, planes: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(base, step_y, step_x)``, each ``(B, 1)`` long: pixel ``(y, x)`` of image ``i`` is
        element ``base + y step_y + x step_x`` of the flattened bank (a flip walks backwards),
        counting ``planes`` planes of ``H x W`` per bank image (1: the palette index, 3: the
        bank's own channels, where the first channel's element is given)."""
        h, w = self.bank.shape[-2:]
        fx, fy = self.flips[:, 0:1].long(), self.flips[:, 1:2].long()
        base = self.which.view(-1, 1) * (planes * h * w) + fy * ((h - 1) * w) + fx * (w - 1)
        return base, w - 2 * w * fy, 1 - 2 * fx


class _BankPixels:
    """Where the pixels of indexed images lie in a flattened array laid out like the bank
    (``planes`` planes of ``H x W`` per bank image), through their flips: the ``locate`` and
    ``shift`` of the readers below."""

    def __init__(self, images: IndexedImages, planes: int):
        self.images = images
        self.b, _, self.h, self.w = images.shape
        self.base, self.step_y, self.step_x = images.strides(planes)

    def locate(self, yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        return (yy * self.step_y).add_(xx * self.step_x).add_(self.base)

    def shift(self, loc: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
        return loc + (dy * self.step_y + dx * self.step_x)


class PaletteReader(_BankPixels):
    """Reads pixels of palette images (see :class:`~anolearn.forge.fast.pixels.DenseReader`):
    a location is a pixel of the flattened bank, its value the palette colour it indexes.

    ``palettes`` holds each image's colours ``(3, U_i)``; they are laid end to end, so a read of
    any number of images is one lookup of the index and one gather."""

    def __init__(self, palettes: list[torch.Tensor], images: IndexedImages):
        super().__init__(images, planes=1)  # a location is a pixel of the palette index
        self.colours = palettes[0] if len(palettes) == 1 else torch.cat(palettes, 1)  # (3, sum U_i)
        self.dtype, self.device = self.colours.dtype, self.colours.device
        sizes = torch.tensor([0] + [c.shape[1] for c in palettes[:-1]], device=self.device, dtype=torch.int32)
        self.offset = torch.cumsum(sizes, 0, dtype=torch.int32).view(-1, 1)  # (B, 1) where each palette starts
        self._index = images.palettes.index.view(-1)

    def read(self, loc: torch.Tensor) -> torch.Tensor:
        entry = self._index.index_select(0, loc.reshape(-1)).view(loc.shape).add_(self.offset)  # int32
        return self.colours.index_select(1, entry.view(-1)).view(3, *loc.shape).transpose(0, 1)  # (B, 3, L)


class PaletteState(WholeImages):
    """Whole images as palettes, for :func:`~anolearn.forge.fast.chains.run_chains`.

    Holds each image's colours as a float ``(3, U)`` tensor and their pixel counts ``(U,)``, in
    lists (palettes differ in length: padding them all to the longest, a photograph's, would
    cost as much as dense images). Rows that share an operation are stacked for it, padded with
    colour 0 and count 0 (padding never enters a histogram). A pointwise operation runs on the
    colours; a histogram operation builds its table from the count-weighted palette and maps the
    colours through it; stencils read pixels through :class:`PaletteReader`. An operation of
    another kind cannot run on a palette.
    """

    any_rows = False  # operations take runs: stacking palettes of mixed lengths costs more than it saves

    def __init__(self, images: IndexedImages, where_px: torch.Tensor):
        self.images, self.where_px = images, where_px
        self.b, _, self.h, self.w = images.shape
        pal = images.palettes
        starts = pal.start.index_select(0, images.which).tolist()  # host round trip
        sizes = pal.size.index_select(0, images.which).tolist()
        # uint8 -> float exactly as the dense batch does it (IndexedImages.dense)
        self.colours = [pal.colours[s:s + n].t().to(torch.float32).mul_(1.0 / 255.0) for s, n in zip(starts, sizes)]
        self.counts = [pal.counts[s:s + n].to(torch.float32) for s, n in zip(starts, sizes)]

    @staticmethod
    def _list(rows: slice | list[int]) -> list[int]:
        return list(range(rows.start, rows.stop)) if isinstance(rows, slice) else rows

    def _stack(self, rows: slice | list[int], counts: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Colours ``(n, 3, 1, U)`` of some rows (and counts ``(n, U)``), padded to the longest."""
        rows = self._list(rows)
        if len(rows) == 1:  # the common case: one image, no copy
            i = rows[0]
            return self.colours[i].unsqueeze(0).unsqueeze(2), self.counts[i].unsqueeze(0) if counts else None
        u = max(self.colours[i].shape[1] for i in rows)
        out = self.colours[rows[0]].new_zeros(len(rows), 3, 1, u)
        weights = self.counts[rows[0]].new_zeros(len(rows), u) if counts else None
        for j, i in enumerate(rows):
            n = self.colours[i].shape[1]
            out[j, :, 0, :n] = self.colours[i]
            if counts:
                weights[j, :n] = self.counts[i]
        return out, weights

    def apply(self, rows: slice | list[int], aug: A.Augmentation, kind: str, helper, params: dict) -> None:
        part, weights = self._stack(rows, counts=kind == "histogram")
        if kind == "pointwise":
            part = aug.fn(part, **params)
        elif kind == "histogram":
            part = A.apply_lut(part, helper(weighted_histograms(part[:, :, 0], weights), **params))
        else:
            raise ValueError(f"A {kind!r} operation cannot run on a palette; make the images dense first.")
        for j, i in enumerate(self._list(rows)):
            self.colours[i] = part[j, :, 0, :self.colours[i].shape[1]]

    def reader(self, rows: slice | list[int]) -> PaletteReader:
        return PaletteReader([self.colours[i] for i in self._list(rows)], self.images.select(rows))

    def histograms(self, rows: slice | list[int]) -> torch.Tensor:
        colours, counts = self._stack(rows, counts=True)
        return weighted_histograms(colours[:, :, 0], counts)


class LevelReader(_BankPixels):
    """Reads pixels of images held as per-channel level tables (see :class:`LevelState`): a
    location is the bank element of the pixel's first channel; its value in channel ``c`` is
    ``table[c, level]``, ``level`` the bank's 8-bit value there."""

    def __init__(self, table: torch.Tensor, images: IndexedImages):
        super().__init__(images, planes=3)  # a location is the bank element of the first channel
        self.table = table.reshape(-1)  # (B * 3 * 256,): image i's channel c entries at (3 i + c) * 256
        self.dtype, self.device = table.dtype, table.device
        self._bank = images.bank.view(-1)
        self._plane = torch.arange(3, device=self.device).view(1, 3, 1) * (self.h * self.w)  # channel offsets
        # where each (image, channel) table starts, int32: the levels are looked up with int32
        # indices (index_select takes them), half the memory of long ones
        self._entry = (torch.arange(self.b * 3, device=self.device, dtype=torch.int32) * 256).view(self.b, 3, 1)

    def read(self, loc: torch.Tensor) -> torch.Tensor:
        at = loc.unsqueeze(1) + self._plane  # (B, 3, L) the three channels
        entry = self._bank.index_select(0, at.view(-1)).view(at.shape).to(torch.int32).add_(self._entry)
        return self.table.index_select(0, entry.view(-1)).view(at.shape)


class LevelState(WholeImages):
    """Whole images held as a function of their source's 8-bit levels, channel by channel.

    Most of DRAEM's operations act on each channel separately: gamma, solarize, posterize,
    invert, and the look-up tables of autocontrast and equalize. A chain of them maps level
    ``v`` of channel ``c`` of the source to one value, whatever the pixel: the whole image is the
    table ``T[c, v]`` ``(3, 256)``, started at ``v / 255`` and passed through each operation.
    Its histogram is the source's (the level counts of :class:`Palettes`, which flips do not
    change) carried through ``T``; its pixels are ``T[c, source level]``. 256 entries per
    channel instead of a palette or the pixels: chains whose whole-image steps are all of this
    kind (about two in three) cost almost nothing before their mask is applied.
    """

    any_rows = True  # the tables are all (3, 256): any rows stack without padding

    def __init__(self, images: IndexedImages, where_px: torch.Tensor):
        self.images, self.where_px = images, where_px
        self.b, _, self.h, self.w = images.shape
        # v / 255 exactly as the dense batch makes its values (IndexedImages.dense)
        ramp = torch.arange(256, device=images.device).to(torch.float32).mul_(1.0 / 255.0)
        self.table = ramp.view(1, 1, 1, 256).repeat(self.b, 3, 1, 1)  # (B, 3, 1, 256)
        self.counts = images.palettes.level_counts.index_select(0, images.which).to(torch.float32)  # (B, 3, 256)

    def apply(self, rows: slice | list[int], aug: A.Augmentation, kind: str, helper, params: dict) -> None:
        part = take(self.table, rows)
        if kind == "pointwise":
            part = aug.fn(part, **params)
        elif kind == "histogram":
            part = A.apply_lut(part, helper(self.histograms(rows), **params))
        else:
            raise ValueError(f"A {kind!r} operation cannot run on level tables; make the images dense first.")
        put(self.table, rows, part)

    def reader(self, rows: slice | list[int]) -> LevelReader:
        return LevelReader(take(self.table, rows), self.images.select(rows))

    def histograms(self, rows: slice | list[int]) -> torch.Tensor:
        return weighted_histograms(take(self.table, rows)[:, :, 0], take(self.counts, rows))


def weighted_histograms(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``(n, 3, 256)`` long: pixel counts per 8-bit level of images held as ``values``
    ``(n, 3, U)`` (palette colours, or level tables) and how many pixels carry each value:
    ``weights`` ``(n, U)``, or ``(n, 3, U)`` channel by channel (the counts of
    :func:`anolearn.forge.augment.histograms`, from the values instead of the pixels)."""
    b, c = values.shape[:2]
    weights = (weights.unsqueeze(1) if weights.dim() == 2 else weights).expand(b, c, -1).reshape(-1)
    counts = torch.bincount(A.level_index(values).reshape(-1), weights=weights, minlength=b * c * 256)
    return counts.view(b, c, 256).round().long()  # weighted sums of integer counts below 2**24 are exact in float


def chain_state(row: list[int], kinds: list[str], per_channel: list[bool]) -> str:
    """Which whole-image form a chain needs before its mask applies: ``"levels"`` if every step
    before its last whole-image step acts on each channel alone, ``"palette"`` if some mixes
    the channels (brightness, hue), ``"dense"`` if some is a stencil or an unknown operation
    (a whole image is then needed that is neither the source nor a pointwise function of it)."""
    d = dense_steps(row, kinds)
    if any(kinds[k] in ("at_pixels", "image") for k in row[:d]):
        return "dense"
    return "levels" if all(per_channel[k] for k in row[:d]) else "palette"


_PALETTES: dict[int, tuple[torch.Tensor, Palettes]] = {}  # id(bank) -> (bank, its palettes)


def indexed_textures(source: TextureSource, n: int, height: int, width: int, generator: torch.Generator | None,
                     device: torch.device | str = "cpu") -> IndexedImages:
    """The draw of ``source.sample(n, height, width, generator, device)`` (the same random numbers,
    the same images), kept as bank entries and flips over the bank's palettes: no pixel is
    copied until needed, and ``.dense()`` of the result is ``sample``'s output."""
    bank, which, flips = source.draw(n, height, width, generator, device)
    if id(bank) not in _PALETTES:  # once per bank (about a second at 256 x 256); the bank stays cached
        _PALETTES[id(bank)] = (bank, Palettes.of(bank))
    return IndexedImages(bank, _PALETTES[id(bank)][1], which, flips)


__all__ = ["IndexedImages", "LevelReader", "LevelState", "PaletteReader", "PaletteState", "Palettes", "chain_state",
           "indexed_textures", "weighted_histograms"]
