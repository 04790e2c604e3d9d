"""Texture categories: surfaces with no position, only statistics.

Four textures, two cut from real photographs and two procedural:

* ``brick``: scikit-image's brick-wall photograph (512 x 512 grey, shipped offline), cut at a
  random place and scale, turned so the courses run horizontally, coloured like fired clay.
* ``gravel``: scikit-image's gravel photograph, cut, turned by any multiple of 90 degrees or
  flipped, coloured like crushed stone.
* ``weave``: a plain-weave fabric computed in closed form: in a (slightly rotated) thread
  coordinate system ``(u, v)`` with period ``p``, cell ``(i, j)`` shows the warp thread on top
  when ``i + j`` is even, else the weft. A thread's brightness is ``sin(pi f)`` across it times
  ``sin(pi g)^gamma`` along it (``f, g`` the fractional cell coordinates), which is zero at every
  cell border, so the pattern is continuous and needs no super-sampling.
* ``wood``: growth rings ``cos(2 pi (y + w(x, y)) / period)`` bent by a smooth warp ``w`` and a
  slight curvature, with fine pores streaked along the grain.

Normal images vary in phase (crop position), scale, orientation, colour, illumination and
sensor noise, so that no two are alike and the mean image is nearly flat: a model must
learn the texture's statistics, not memorise pixels.
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from .canvas import (Scene, illumination, jitter_colour, lamp_angle, lerp_colour, noise_1d,
                     pixel_grid, sensor_noise, smooth_field)


@lru_cache(maxsize=4)
def _photo(name: str) -> np.ndarray:
    """A scikit-image sample photo as (512, 512) float32 in [0, 1] (read-only, cached)."""
    import skimage.data

    img = getattr(skimage.data, name)().astype(np.float32) / 255.0
    img.setflags(write=False)
    return img


def _cut_photo(rng: np.random.Generator, name: str, size: int, crop: tuple[int, int],
               turns: tuple[int, ...]) -> np.ndarray:
    """A random square crop of a photo, turned by ``k * 90`` degrees (k from ``turns``), maybe
    mirrored, resized to ``size``. Returns (size, size) float32 in [0, 1]."""
    photo = _photo(name)
    side = int(rng.integers(crop[0], crop[1] + 1))
    y0 = int(rng.integers(0, photo.shape[0] - side + 1))
    x0 = int(rng.integers(0, photo.shape[1] - side + 1))
    k = int(rng.choice(turns))
    mirror = bool(rng.random() < 0.5)
    patch = np.rot90(photo[y0:y0 + side, x0:x0 + side], k)
    if mirror:
        patch = patch[:, ::-1]
    interp = cv2.INTER_AREA if side >= size else cv2.INTER_CUBIC
    return cv2.resize(np.ascontiguousarray(patch), (size, size), interpolation=interp)


def _finish_texture(rng: np.random.Generator, surface: np.ndarray, style: dict) -> Scene:
    size = surface.shape[0]
    return Scene(surface=surface.astype(np.float32), coverage=np.ones((size, size), np.float32),
                 light=illumination(rng, size), noise=sensor_noise(rng, size),
                 light_angle=lamp_angle(rng), style=style)


def render_brick(size: int, rng: np.random.Generator) -> Scene:
    """Brick wall: clay bricks, pale mortar joints."""
    clay = jitter_colour(rng, (150, 72, 52), brightness=0.10, tint=0.06)
    mortar = jitter_colour(rng, (196, 186, 170), brightness=0.06, tint=0.03)
    g = _cut_photo(rng, "brick", size, crop=(190, 300), turns=(1, 3))
    z = (g - 0.437) / 0.102  # photo-wide standardisation, so lighting differences survive
    joint = np.clip((z - 0.9) / 1.4, 0.0, 1.0)  # joints are the bright lines of the photo
    body = clay[None, None, :] * (1.0 + 0.16 * np.clip(z, -3, 1.5))[..., None]
    surface = body * (1 - joint[..., None]) + mortar[None, None, :] * joint[..., None]
    # bright scratches would pass for mortar joints, so they are dark here; the stain is a
    # whitish salt bloom (efflorescence), which brightens: its tint is > 1
    style = {"scratch": "dark", "stain": (1.25, 1.5, 1.65), "particles": [(30, 30, 34), (235, 235, 225)]}
    return _finish_texture(rng, surface, style)


def render_gravel(size: int, rng: np.random.Generator) -> Scene:
    """Crushed grey-beige stone seen from above."""
    dark = jitter_colour(rng, (34, 31, 29), brightness=0.10, tint=0.04)
    light = jitter_colour(rng, (212, 200, 182), brightness=0.08, tint=0.05)
    g = _cut_photo(rng, "gravel", size, crop=(150, 260), turns=(0, 1, 2, 3))
    surface = lerp_colour(0.1 + 0.85 * g, dark, light)
    style = {"scratch": "bright", "stain": (0.50, 0.52, 0.56), "particles": [(190, 40, 30), (40, 90, 170)],
             "defect_scale": 1.4}
    return _finish_texture(rng, surface, style)


def render_weave(size: int, rng: np.random.Generator) -> Scene:
    """Plain-weave technical fabric (warp and weft of slightly different shade)."""
    unit = size / 256
    period = rng.uniform(8.5, 10.5) * unit  # thread pitch in pixels
    angle = rng.uniform(-0.12, 0.12) + (np.pi / 2) * int(rng.integers(0, 2))
    phase = rng.uniform(0, 2 * period, size=2)
    warp_col = jitter_colour(rng, (178, 168, 140), brightness=0.07, tint=0.03)
    weft_col = warp_col * np.float32(rng.uniform(0.86, 0.93))
    thread_jitter = (0.05 * rng.standard_normal(64)).astype(np.float32)
    fibre = 0.05 * smooth_field(rng, size, max(4, size // 6))

    yy, xx = pixel_grid(size)
    c, s = np.cos(angle), np.sin(angle)
    u = (c * xx + s * yy) / period + phase[0]
    v = (-s * xx + c * yy) / period + phase[1]
    i, j = np.floor(u), np.floor(v)
    fu, fv = u - i, v - j
    su, sv = np.sin(np.pi * fu), np.sin(np.pi * fv)
    gamma = 0.35
    warp_on_top = ((i + j) % 2) == 0
    warp_val = np.sqrt(su) * sv ** gamma * (1 + thread_jitter[(i % 64).astype(np.int64)])
    weft_val = np.sqrt(sv) * su ** gamma * (1 + thread_jitter[(j % 64).astype(np.int64)])
    val = np.where(warp_on_top, warp_val, weft_val)  # (H, W) in ~[0, 1.1]
    col = np.where(warp_on_top[..., None], warp_col, weft_col)  # (H, W, 3)
    surface = col * (0.42 + 0.62 * val + fibre)[..., None]
    style = {"scratch": "bright", "stain": (0.92, 0.72, 0.45), "particles": [(35, 35, 40), (150, 40, 35)]}
    return _finish_texture(rng, surface, style)


def render_wood(size: int, rng: np.random.Generator) -> Scene:
    """Planed wood board: growth rings and pores along the grain."""
    unit = size / 256
    yy, xx = pixel_grid(size)
    period = rng.uniform(15, 24) * unit
    warp = smooth_field(rng, size, 3) * rng.uniform(5, 11) * unit
    bend = rng.uniform(-1.0, 1.0) / (size * 2.5)
    x0 = rng.uniform(0, size)
    y = yy + warp + bend * (xx - x0) ** 2 + rng.uniform(0, 10 * period)
    ring = 0.5 + 0.5 * np.cos(2 * np.pi * y / period)
    late = ring ** 5  # narrow dark latewood bands
    # Pores: a 1-D profile across the grain, so streaks follow the rings' bending.
    n = 4096
    pores = noise_1d(rng, n, smooth=1.2)
    density = 1.6 / unit  # profile samples per pixel across the grain
    streak = np.interp((y * density) % n, np.arange(n, dtype=np.float32), pores)
    fine = smooth_field(rng, size, max(4, size // 4))
    val = 0.62 - 0.34 * late + 0.07 * streak + 0.04 * fine
    light_wood = jitter_colour(rng, (214, 168, 112), brightness=0.07, tint=0.04)
    dark_wood = light_wood * np.float32(0.45) * np.array([1.0, 0.9, 0.85], np.float32)
    surface = lerp_colour(val / 0.7, dark_wood, light_wood)
    k = int(rng.integers(0, 4))
    surface = np.ascontiguousarray(np.rot90(surface, k))
    style = {"scratch": "bright", "stain": (0.55, 0.58, 0.62), "particles": [(30, 30, 30), (40, 110, 160)]}
    return _finish_texture(rng, surface, style)


TEXTURE_RENDERERS = {
    "brick": render_brick,
    "gravel": render_gravel,
    "weave": render_weave,
    "wood": render_wood,
}
