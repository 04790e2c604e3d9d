"""Anomaly sources: where the *content* of a DRAEM-style forgery comes from.

DRAEM blends pieces of another image into a normal one inside a Perlin mask. Its code takes
those pieces from DTD, the Describable Textures Dataset (Cimpoi et al., CVPR 2014: 5,640
photographs of 47 kinds of texture -- banded, cracked, woven, marbled, ...): whatever a
defect looks like, some texture in DTD is not far from it, and the network learns "this patch
does not belong" rather than one kind of defect.

DTD is a 600 MB research-only download, so anolearn offers three sources with one interface,
``source.sample(n, height, width, generator, device) -> (n, 3, H, W)`` float in [0, 1]:

* :class:`DTDSource` -- DTD's images, read when drawn (each file resized to the image size,
  as DRAEM does), with a cache of recently used ones. Use it once ``python
  data_scripts/fetch_dtd.py`` has run.
* :class:`TextureSource` -- a built-in, offline bank of varied textures: four procedural
  families (Perlin colour fields, warped stripes, turned checkerboards, scattered blobs) and
  crops of the photographs that ship with scikit-image (grass, moon, coins, a cat's fur,
  coffee, ...). Deliberately *not* the generator of the synthetic dataset's defects (that would
  teach a model the test set's answer), and without the brick and gravel photographs the
  synthetic dataset's normal textures are cut from. The bank is rendered once per image size
  from a fixed seed and cached in memory as uint8; drawing from it is an index into a tensor
  plus random flips.
* :class:`TensorSource` -- any tensor of images you pass (e.g. the normal training images).

:func:`resolve_source` turns ``"auto"`` (DTD if present, else the built-in textures),
``"dtd"``, ``"textures"``, a tensor or a source object into a source.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F

from ..paths import FETCH_COMMANDS, dataset_dir
from .draws import check_generator, uniform
from .perlin import perlin_noise

#: scikit-image photographs that ship with the wheel (no download), used by TextureSource.
#: brick and gravel are left out on purpose: the synthetic dataset's textures are cut from them.
PHOTOS = ("grass", "moon", "camera", "coins", "chelsea", "coffee", "astronaut", "rocket",
          "immunohistochemistry", "cell")
PROCEDURAL = ("perlin", "stripes", "checker", "blobs")


@runtime_checkable
class AnomalySource(Protocol):
    """Anything with ``sample(n, height, width, generator=None, device="cpu") -> (n, 3, H, W)``."""

    def sample(self, n: int, height: int, width: int, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> torch.Tensor: ...


# ----------------------------------------------------------------------------- procedural families
def _colours(n: int, k: int, g: torch.Generator) -> torch.Tensor:
    """``(n, k, 3, 1, 1)`` random colours: the first uniform in the RGB cube, the others a random
    step of length 0.3-0.9 away from it (clipped), so a texture never comes out flat."""
    first = torch.rand(n, 1, 3, generator=g)
    step = torch.randn(n, k - 1, 3, generator=g)
    step = step / step.norm(dim=-1, keepdim=True).clamp_min(1e-6) * uniform(0.3, 0.9, (n, k - 1, 1), g, "cpu")
    return torch.cat([first, (first + step).clamp(0, 1)], 1).view(n, k, 3, 1, 1)


def _lerp_colours(t: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
    """``t`` (n, H, W) in [0, 1] -> (n, 3, H, W) between ``colours[:, 0]`` and ``colours[:, 1]``."""
    t = t.unsqueeze(1)
    return colours[:, 0] * (1 - t) + colours[:, 1] * t


def _coords(n: int, h: int, w: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel coordinates turned by a random angle per sample, in units of the image's short side."""
    theta = uniform(0, np.pi, (n, 1, 1), g, "cpu")
    ys = torch.arange(h, dtype=torch.float32).view(1, h, 1) / min(h, w)
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, w) / min(h, w)
    return xs * torch.cos(theta) + ys * torch.sin(theta), -xs * torch.sin(theta) + ys * torch.cos(theta)


def perlin_colour_fields(n: int, h: int, w: int, g: torch.Generator) -> torch.Tensor:
    """Fractal Perlin noise through a two-colour ramp, plus per-channel mottling."""
    t = perlin_noise((n, h, w), generator=g, octaves=4, exponents=(1, 3))
    contrast = uniform(1.5, 5.0, (n, 1, 1), g, "cpu")
    img = _lerp_colours(torch.sigmoid(contrast * t), _colours(n, 2, g))
    mottle = perlin_noise((3 * n, h, w), generator=g, octaves=2, exponents=(3, 5)).view(n, 3, h, w)
    return (img + uniform(0.03, 0.15, (n, 1, 1, 1), g, "cpu") * mottle).clamp(0, 1)


def warped_stripes(n: int, h: int, w: int, g: torch.Generator) -> torch.Tensor:
    """Stripes ``sin(2 pi u / period + warp)`` with a Perlin warp, from soft bands to hard bars."""
    u, _ = _coords(n, h, w, g)
    period = uniform(1 / 24, 1 / 4, (n, 1, 1), g, "cpu")
    warp = uniform(0.0, 4.0, (n, 1, 1), g, "cpu") * perlin_noise((n, h, w), generator=g, octaves=2, exponents=(0, 2))
    wave = torch.sin(2 * np.pi * u / period + warp)
    sharp = uniform(1.0, 8.0, (n, 1, 1), g, "cpu")
    return _lerp_colours((0.5 + 0.5 * torch.tanh(sharp * wave)), _colours(n, 2, g))


def turned_checkers(n: int, h: int, w: int, g: torch.Generator) -> torch.Tensor:
    """Checkerboards with random cell size and angle, lightly noised."""
    u, v = _coords(n, h, w, g)
    cell = uniform(1 / 20, 1 / 3, (n, 1, 1), g, "cpu")
    t = ((torch.floor(u / cell) + torch.floor(v / cell)) % 2).float()
    noise = perlin_noise((n, h, w), generator=g, octaves=2, exponents=(3, 5))
    return (_lerp_colours(t, _colours(n, 2, g)) + 0.08 * noise.unsqueeze(1)).clamp(0, 1)


def scattered_blobs(n: int, h: int, w: int, g: torch.Generator, count: int = 14) -> torch.Tensor:
    """Soft-edged ellipses of random colours, size and aspect, painted over a background."""
    img = _colours(n, 1, g)[:, 0].expand(n, 3, h, w).clone()
    ys = torch.arange(h, dtype=torch.float32).view(1, h, 1) / min(h, w)
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, w) / min(h, w)
    for _ in range(count):
        cy = uniform(0, h / min(h, w), (n, 1, 1), g, "cpu")
        cx = uniform(0, w / min(h, w), (n, 1, 1), g, "cpu")
        r = uniform(0.03, 0.25, (n, 1, 1), g, "cpu")
        aspect = torch.exp(uniform(-0.8, 0.8, (n, 1, 1), g, "cpu"))
        d = torch.sqrt(((ys - cy) * aspect) ** 2 + ((xs - cx) / aspect) ** 2) / r  # (n, H, W)
        alpha = torch.sigmoid((1 - d) * uniform(4, 40, (n, 1, 1), g, "cpu")).unsqueeze(1)
        img = img * (1 - alpha) + torch.rand(n, 3, 1, 1, generator=g) * alpha
    return img.clamp(0, 1)


_FAMILIES = {"perlin": perlin_colour_fields, "stripes": warped_stripes, "checker": turned_checkers,
             "blobs": scattered_blobs}


def photo_crops(names: tuple[str, ...], per_photo: int, h: int, w: int, g: torch.Generator) -> torch.Tensor:
    """Random square crops (30-70 % of the short side) of scikit-image photographs, resized to
    ``(h, w)``; grey photographs get a random two-colour tint. ``(len(names) * per_photo, 3, h, w)``."""
    import skimage.data

    out = []
    for name in names:
        photo = torch.from_numpy(np.ascontiguousarray(getattr(skimage.data, name)())).float() / 255.0
        photo = photo.unsqueeze(0) if photo.dim() == 2 else photo[..., :3].permute(2, 0, 1)  # (C, H0, W0)
        short = min(photo.shape[-2:])
        for _ in range(per_photo):
            side = int(short * float(uniform(0.3, 0.7, (1,), g, "cpu")))
            y0 = int(torch.randint(0, photo.shape[-2] - side + 1, (1,), generator=g))
            x0 = int(torch.randint(0, photo.shape[-1] - side + 1, (1,), generator=g))
            crop = photo[:, y0:y0 + side, x0:x0 + side].unsqueeze(0)
            crop = F.interpolate(crop, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
            if crop.shape[1] == 1:  # tint: dark -> colour a, bright -> colour b
                crop = _lerp_colours(crop[:, 0], _colours(1, 2, g))
            out.append(crop.clamp(0, 1))
    return torch.cat(out)


# ----------------------------------------------------------------------------- sources
def flipped_textures(bank: torch.Tensor, which: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Bank images ``which`` ``(n,)``, flipped left-right where ``flips[:, 0]`` and upside down
    where ``flips[:, 1]``: ``(n, 3, H, W)`` float in [0, 1] (the uint8 values over 255)."""
    images = bank.index_select(0, which)
    for axis, dim in ((0, -1), (1, -2)):  # flip only the samples that drew it
        rows = flips[:, axis].nonzero().squeeze(1)
        if rows.numel():
            images.index_copy_(0, rows, images.index_select(0, rows).flip(dim))
    return images.to(torch.float32).mul_(1.0 / 255.0)


class TextureSource:
    """The built-in, offline anomaly source: procedural textures and photograph crops.

    Args:
        per_family: textures rendered per procedural family (four families).
        photos: scikit-image photograph names to crop (default :data:`PHOTOS`; ``()`` for none).
        crops_per_photo: crops taken from each photograph.
        seed: seed of the bank (the bank is the same on every machine and run).

    Example:
        >>> src = TextureSource()
        >>> src.sample(4, 64, 64, torch.Generator().manual_seed(0)).shape
        torch.Size([4, 3, 64, 64])
    """

    _banks: dict[tuple, torch.Tensor] = {}  # (settings, H, W) -> uint8 bank, shared by instances

    def __init__(self, per_family: int = 24, photos: tuple[str, ...] = PHOTOS, crops_per_photo: int = 6,
                 seed: int = 0):
        self.per_family, self.photos, self.crops_per_photo, self.seed = per_family, tuple(photos), crops_per_photo, seed
        self._on_device: dict[tuple, torch.Tensor] = {}

    def __len__(self) -> int:
        return self.per_family * len(_FAMILIES) + self.crops_per_photo * len(self.photos)

    def bank(self, height: int, width: int) -> torch.Tensor:
        """All textures at ``(height, width)``: ``(N, 3, H, W)`` uint8 on the CPU (rendered once)."""
        key = (self.per_family, self.photos, self.crops_per_photo, self.seed, height, width)
        if key not in self._banks:
            g = torch.Generator().manual_seed(self.seed)
            parts = [family(self.per_family, height, width, g) for family in _FAMILIES.values()]
            if self.photos and self.crops_per_photo:
                parts.append(photo_crops(self.photos, self.crops_per_photo, height, width, g))
            bank = torch.cat(parts)
            self._banks[key] = (bank * 255).round().to(torch.uint8)
        return self._banks[key]

    def kinds(self) -> list[str]:
        """The family or photograph of each bank entry, in bank order."""
        out = [k for k in _FAMILIES for _ in range(self.per_family)]
        return out + [p for p in self.photos for _ in range(self.crops_per_photo)]

    def draw(self, n: int, height: int, width: int, generator: torch.Generator | None = None,
             device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The random part of :meth:`sample`: ``(bank, which, flips)``, the bank ``(N, 3, H, W)``
        uint8 on ``device``, the drawn textures ``which`` ``(n,)`` long (with replacement) and
        their random flips ``(n, 2)`` bool (left-right, upside down)."""
        device = torch.device(device)
        check_generator(generator, device)
        key = (height, width, str(device))
        if key not in self._on_device:
            self._on_device[key] = self.bank(height, width).to(device)
        bank = self._on_device[key]
        which = torch.randint(0, bank.shape[0], (n,), generator=generator, device=device)
        flips = torch.rand(n, 2, generator=generator, device=device) < 0.5
        return bank, which, flips

    def sample(self, n: int, height: int, width: int, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> torch.Tensor:
        """``n`` textures drawn with replacement, randomly flipped: ``(n, 3, H, W)`` float in [0, 1]."""
        return flipped_textures(*self.draw(n, height, width, generator, device))

    def __repr__(self) -> str:
        return f"TextureSource({len(self)} textures: {', '.join(_FAMILIES)} x {self.per_family}, {len(self.photos)} photos x {self.crops_per_photo})"


def dtd_images_dir(root: str | Path | None = None) -> Path:
    """DTD's image folder: ``<root>/dtd/images`` (``root`` defaults to ``dataset_dir("dtd")``)."""
    root = Path(root) if root is not None else dataset_dir("dtd")
    for candidate in (root / "dtd" / "images", root / "images", root):
        if candidate.is_dir() and any(candidate.glob("*/*.jpg")):
            return candidate
    return root / "dtd" / "images"


def dtd_available(root: str | Path | None = None) -> bool:
    """True if DTD's images are on disk (after ``python data_scripts/fetch_dtd.py``)."""
    return any(dtd_images_dir(root).glob("*/*.jpg"))


class DTDSource:
    """DTD textures, each resized to the requested size as DRAEM does (the aspect is not kept).

    Args:
        root: DTD folder (default ``$ANOLEARN_DATA/dtd``); ``<root>/dtd/images/<category>/*.jpg``.
        cache_size: decoded, resized images kept in memory (uint8).

    Raises:
        FileNotFoundError: naming the fetch command, if no image is found.
    """

    def __init__(self, root: str | Path | None = None, cache_size: int = 1024):
        self.images_dir = dtd_images_dir(root)
        self.files = sorted(self.images_dir.glob("*/*.jpg"))
        if not self.files:
            raise FileNotFoundError(f"No DTD images under {self.images_dir}. Fetch them with "
                                    f"`{FETCH_COMMANDS['dtd']}` (600 MB), or use TextureSource() offline.")
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, index: int, height: int, width: int) -> torch.Tensor:
        from ..data.images import read_image

        key = (index, height, width)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        img = (read_image(self.files[index], size=(height, width)) * 255).round().to(torch.uint8)
        self._cache[key] = img
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return img

    def sample(self, n: int, height: int, width: int, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> torch.Tensor:
        device = torch.device(device)
        check_generator(generator, device)
        idx = torch.randint(0, len(self.files), (n,), generator=generator, device=device).tolist()  # files are on the host
        batch = torch.stack([self._load(i, height, width) for i in idx]).to(device)
        return batch.to(torch.float32) / 255.0

    def __repr__(self) -> str:
        return f"DTDSource({len(self.files)} images in {self.images_dir})"


class TensorSource:
    """Draw from a tensor of images ``(N, 3, h, w)`` in [0, 1], resized to the requested size."""

    def __init__(self, images: torch.Tensor):
        if images.dim() != 4 or images.shape[1] != 3 or images.shape[0] == 0:
            raise ValueError(f"TensorSource needs a non-empty (N, 3, h, w) tensor, got {tuple(images.shape)}.")
        self.images = images.float()
        self._resized: dict[tuple, torch.Tensor] = {}

    def __len__(self) -> int:
        return self.images.shape[0]

    def sample(self, n: int, height: int, width: int, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> torch.Tensor:
        device = torch.device(device)
        check_generator(generator, device)
        key = (height, width, str(device))
        if key not in self._resized:
            imgs = self.images.to(device)
            if imgs.shape[-2:] != (height, width):
                imgs = F.interpolate(imgs, size=(height, width), mode="bilinear", antialias=True,
                                     align_corners=False).clamp(0, 1)
            self._resized[key] = imgs
        bank = self._resized[key]
        idx = torch.randint(0, bank.shape[0], (n,), generator=generator, device=device)
        return bank.index_select(0, idx)


_NAMED: dict[tuple[str, str], AnomalySource] = {}


def resolve_source(source="auto") -> AnomalySource:
    """``"auto"`` (DTD when fetched, else the built-in textures), ``"dtd"``, ``"textures"``, an
    ``(N, 3, h, w)`` tensor, or any object with a ``sample`` method."""
    if isinstance(source, str):
        if source not in ("auto", "dtd", "textures"):
            raise ValueError(f"Unknown anomaly source {source!r}: use 'auto', 'dtd', 'textures', a tensor or a source object.")
        if source == "auto":
            source = "dtd" if dtd_available() else "textures"
        key = (source, str(dataset_dir("dtd")))  # built once per data folder: DTD's file list, the bank
        if key not in _NAMED:
            _NAMED[key] = DTDSource() if source == "dtd" else TextureSource()
        return _NAMED[key]
    if isinstance(source, torch.Tensor):
        return TensorSource(source)
    if isinstance(source, AnomalySource):
        return source
    raise TypeError(f"An anomaly source needs a sample(n, height, width, generator, device) method; got {type(source).__name__}.")


__all__ = ["PHOTOS", "PROCEDURAL", "AnomalySource", "DTDSource", "TensorSource", "TextureSource",
           "dtd_available", "dtd_images_dir", "flipped_textures", "perlin_colour_fields", "photo_crops", "resolve_source",
           "scattered_blobs", "turned_checkers", "warped_stripes"]
