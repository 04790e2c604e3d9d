"""The canvas every synthetic image is painted on: a scene in layers, and how it becomes pixels.

A synthetic image is not painted straight into a ``uint8`` array. Each renderer returns a
:class:`Scene`, a few float layers that mirror how an inspection photo comes about:

* ``surface`` (H, W, 3): the reflectance of the texture, or of the part, in grey levels 0..255,
  shading of the part's own 3-D form included;
* ``background`` (H, W, 3) and ``coverage`` (H, W): for objects, the table under the part and
  the anti-aliased silhouette of the part (fraction of each pixel covered, in [0, 1]);
* ``light`` (H, W): the illumination falling on the whole field of view (gradient, vignette);
* ``noise`` (H, W, 3): sensor noise, in grey levels.

The photo is then (:func:`finish`)::

    I = clip(round(light * (coverage * surface + (1 - coverage) * background) + noise), 0, 255)

Why layers? A defect changes the *object*, not the photo: a stain changes ``surface``, a
missing chunk changes ``coverage``. The light and the noise are then applied to the clean and
the defective scene in exactly the same way, so a pixel the defect did not touch comes out
bit-identical in both images, and the ground-truth mask can be computed exactly as the set of
pixels that differ (see :mod:`anolearn.data.synthetic.render`).

All lengths in the renderers are written for a 256-pixel image and multiplied by
``unit = size / 256``, so a category looks the same at every resolution.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

REFERENCE_SIZE = 256


@dataclass(frozen=True)
class Scene:
    """The layers of one synthetic photo (see the module docstring).

    Attributes:
        surface: (H, W, 3) float32, grey levels 0..255 before lighting.
        coverage: (H, W) float32 in [0, 1]; all ones for textures.
        light: (H, W) float32 multiplicative illumination, around 1.
        noise: (H, W, 3) float32 additive sensor noise in grey levels.
        background: (H, W, 3) float32 or ``None`` (textures have none).
        light_angle: direction the key light comes from, radians in the image plane
            (0 = from the right, pi/2 = from below); shaded defects use it for their rims.
        style: per-category hints for the defect painters (colours, bright or dark scratches).
    """

    surface: np.ndarray
    coverage: np.ndarray
    light: np.ndarray
    noise: np.ndarray
    background: np.ndarray | None = None
    light_angle: float = 0.0
    style: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.surface.shape[0])

    @property
    def unit(self) -> float:
        """Pixels per reference pixel (``size / 256``)."""
        return self.size / REFERENCE_SIZE

    @property
    def is_object(self) -> bool:
        return self.background is not None

    def with_surface(self, surface: np.ndarray) -> "Scene":
        return replace(self, surface=surface.astype(np.float32, copy=False))

    def with_coverage(self, coverage: np.ndarray) -> "Scene":
        return replace(self, coverage=coverage.astype(np.float32, copy=False))


def finish(scene: Scene) -> np.ndarray:
    """Turn a scene into the photo: composite, light, add noise, quantise.

    Returns:
        (H, W, 3) uint8 RGB image.
    """
    if scene.background is None:
        radiance = scene.surface
    else:
        a = scene.coverage[..., None]  # (H, W, 1)
        radiance = a * scene.surface + (1.0 - a) * scene.background
    image = radiance * scene.light[..., None] + scene.noise  # (H, W, 3)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- grids & noise

@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    ys.setflags(write=False)
    xs.setflags(write=False)
    return ys, xs


def pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(yy, xx)``, each (size, size) float32 (read-only, cached).

    Pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)``; its centre is ``(i + 0.5, j + 0.5)``, so we
    return ``i`` and ``j`` and let callers place shapes at half-integer offsets: the
    signed-distance anti-aliasing below only needs consistency, not the +0.5.
    """
    return _grid(size)


def smooth_field(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """A smooth random field: a ``cells x cells`` grid of N(0, 1) values, bicubically enlarged.

    Used only for *normal* variation (warped wood grain, uneven backgrounds); never as a
    defect mask.

    Returns:
        (size, size) float32 with roughly unit standard deviation.
    """
    coarse = rng.standard_normal((cells + 3, cells + 3), dtype=np.float32)
    big = cv2.resize(coarse, (size + size * 3 // cells, size + size * 3 // cells),
                     interpolation=cv2.INTER_CUBIC)
    o = size * 3 // (2 * cells)  # drop the border so the field has no edge effect
    return np.ascontiguousarray(big[o:o + size, o:o + size])


def illumination(rng: np.random.Generator, size: int, gradient: tuple[float, float] = (0.0, 0.16),
                 vignette: tuple[float, float] = (0.0, 0.18),
                 gain: tuple[float, float] = (0.86, 1.12)) -> np.ndarray:
    """Uneven light over the field of view: gain * (1 + linear gradient - vignette).

    Returns:
        (size, size) float32 multiplicative field.
    """
    yy, xx = pixel_grid(size)
    u = (xx - size / 2) / (size / 2)  # (H, W) in [-1, 1]
    v = (yy - size / 2) / (size / 2)
    theta = rng.uniform(0, 2 * np.pi)
    g = rng.uniform(*gradient)
    vig = rng.uniform(*vignette)
    k = rng.uniform(*gain)
    cx, cy = rng.uniform(-0.3, 0.3, size=2)
    field = 1.0 + g * (np.cos(theta) * u + np.sin(theta) * v) \
        - vig * 0.5 * ((u - cx) ** 2 + (v - cy) ** 2)
    return (k * field).astype(np.float32)


# The inspection station's lamp sits at the upper left; it moves a little between shots.
LAMP_ANGLE = -2.3


def lamp_angle(rng: np.random.Generator) -> float:
    """Direction the key light comes from (radians, image plane; 0 = from the right,
    pi/2 = from below), within 0.6 rad of :data:`LAMP_ANGLE`."""
    return float(LAMP_ANGLE + rng.uniform(-0.6, 0.6))


def sensor_noise(rng: np.random.Generator, size: int,
                 sigma: tuple[float, float] = (1.0, 3.0)) -> np.ndarray:
    """Camera noise: a luminance part shared by the channels plus a smaller chroma part.

    Returns:
        (size, size, 3) float32 in grey levels.
    """
    s = rng.uniform(*sigma)
    lum = rng.standard_normal((size, size, 1), dtype=np.float32)
    chroma = rng.standard_normal((size, size, 3), dtype=np.float32)
    return (s * (0.8 * lum + 0.45 * chroma)).astype(np.float32)


def noise_1d(rng: np.random.Generator, n: int, smooth: float) -> np.ndarray:
    """A 1-D random profile of length ``n`` (zero mean, unit std), smoothed over ``smooth`` samples."""
    x = rng.standard_normal(n).astype(np.float32)
    if smooth > 0:
        k = int(3 * smooth) * 2 + 1
        x = cv2.GaussianBlur(x[None, :], (k, 1), smooth, borderType=cv2.BORDER_REFLECT)[0]
    x -= x.mean()
    return x / (x.std() + 1e-6)


def jitter_colour(rng: np.random.Generator, rgb: tuple[float, float, float],
                  brightness: float = 0.08, tint: float = 0.04) -> np.ndarray:
    """A colour (0..255) scaled by ``1 +- brightness`` and each channel by ``1 +- tint``."""
    base = np.asarray(rgb, dtype=np.float32)
    scale = 1 + rng.uniform(-brightness, brightness)
    per_channel = 1 + rng.uniform(-tint, tint, size=3).astype(np.float32)
    return base * scale * per_channel


def lerp_colour(t: np.ndarray, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """Map (H, W) values ``t`` (0 -> ``c0``, 1 -> ``c1``, extrapolating) to (H, W, 3) colours."""
    c0 = np.asarray(c0, np.float32)
    c1 = np.asarray(c1, np.float32)
    return c0 + t[..., None].astype(np.float32) * (c1 - c0)


# ----------------------------------------------------------------------------- coverage shapes

def sdf_coverage(signed_distance: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage of a shape from its signed distance in pixels (negative inside).

    A pixel whose centre lies on the edge is half covered; one pixel inside is fully covered.
    """
    return np.clip(0.5 - signed_distance, 0.0, 1.0).astype(np.float32)


_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT


def polyline_coverage(size: int, paths: list[np.ndarray], thickness: float) -> np.ndarray:
    """Anti-aliased coverage of open polylines (sub-pixel vertices).

    Args:
        size: canvas side.
        paths: list of (N_i, 2) float arrays of ``(x, y)`` pixel coordinates.
        thickness: line width in pixels (rounded to an int >= 1; cv2 draws a soft edge around it).

    Returns:
        (size, size) float32 in [0, 1].
    """
    canvas = np.zeros((size, size), np.uint8)
    pts = [np.rint(np.asarray(p) * _ONE).astype(np.int32) for p in paths]
    cv2.polylines(canvas, pts, False, 255, max(1, int(round(thickness))), cv2.LINE_AA, _SHIFT)
    return canvas.astype(np.float32) / 255.0


def ellipses_coverage(size: int, centres: np.ndarray, axes: np.ndarray,
                      angles_deg: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage of filled ellipses.

    Args:
        centres: (N, 2) float ``(x, y)``; axes: (N, 2) float semi-axes in pixels; angles_deg: (N,).

    Returns:
        (size, size) float32 in [0, 1].
    """
    canvas = np.zeros((size, size), np.uint8)
    for (x, y), (a, b), ang in zip(centres, axes, angles_deg):
        cv2.ellipse(canvas, (int(round(x * _ONE)), int(round(y * _ONE))),
                    (max(1, int(round(a * _ONE))), max(1, int(round(b * _ONE)))),
                    float(ang), 0, 360, 255, -1, cv2.LINE_AA, _SHIFT)
    return canvas.astype(np.float32) / 255.0


def cut_faint(alpha: np.ndarray, floor: float = 0.25) -> np.ndarray:
    """Set alpha below ``floor`` to exactly 0, so a defect has a crisp support (clean masks)."""
    return np.where(alpha >= floor, alpha, 0.0).astype(np.float32)


def drop_shadow(coverage: np.ndarray, angle: float, unit: float, strength: float) -> np.ndarray:
    """Soft shadow a part casts on the table, away from the light.

    Returns:
        (H, W) float32 multiplicative factor in (0, 1] for the background.
    """
    size = coverage.shape[0]
    offset = 5.0 * unit
    shift = np.float32([[1, 0, -offset * np.cos(angle)], [0, 1, -offset * np.sin(angle)]])
    moved = cv2.warpAffine(coverage, shift, (size, size), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    sigma = 4.0 * unit
    blurred = cv2.GaussianBlur(moved, (0, 0), sigma)
    return (1.0 - strength * blurred).astype(np.float32)
