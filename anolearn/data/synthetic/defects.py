"""Defects of the synthetic dataset, painted procedurally on a clean scene.

Why procedural, and why *these* processes
-----------------------------------------
The book teaches several ways to *forge* anomalies for self-supervised training:
DRAEM thresholds Perlin noise into a mask and blends an external texture image into it;
CutPaste and CutSwap cut a patch out of the same image and paste it elsewhere. If the test
defects of our built-in dataset were made the same way, a benchmark on it would reward a
method for recognising its own training forgeries (the seams of a pasted patch, the blobby
outline of thresholded Perlin noise), not for detecting anomalies. So no defect here uses
Perlin or any other thresholded noise field as its shape, no patch of the image is copied,
and no outside image is blended in. Every defect is drawn from geometry instead:

* ``scratch``: one thin curved stroke (a quadratic Bezier), brighter (metal, paint) or darker
  than the surface;
* ``crack``: a dark random-walk polyline that forks into thinner branches;
* ``hole`` (textures): an elliptical pit, dark inside with its inner wall lit on the side
  away from the light, a raised rim around it shaded by ``n . L``;
* ``dent`` (objects): a shallow elliptical depression, shaded by its slope ``n . L``;
* ``stain``: a smooth, low-contrast tint with a stronger tide line, inside a wobbly
  ellipse (a few cosine harmonics of the angle perturb its radius) -- the subtle one;
* ``contamination``: a sprinkle of small ellipses (and sometimes a fibre) of a foreign colour;
* ``missing`` (objects): a bite (a disc) or a chip (a half plane) taken out of the part's
  silhouette, so the table shows through.

Each painter returns a new :class:`~anolearn.data.synthetic.canvas.Scene` in which only
``surface`` (or, for ``missing``, ``coverage``) changed. Sizes and strengths are drawn from
ranges that run from obvious to barely visible. Supports are crisp (faint anti-aliasing tails
are cut, :func:`~anolearn.data.synthetic.canvas.cut_faint`), so that the exact mask -- the
pixels whose final value differs from the clean image -- is a clean region, not a speckle.

On objects a defect is placed at a point inside the part; whatever falls outside the part's
silhouette has no effect (the surface is only seen where ``coverage > 0``), so object defects
always lie on the part.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .canvas import (Scene, cut_faint, ellipses_coverage, pixel_grid, polyline_coverage,
                     sdf_coverage)

Painter = Callable[[Scene, np.random.Generator], Scene]


def _anchor(scene: Scene, rng: np.random.Generator, margin: float = 0.08) -> tuple[float, float]:
    """A random point for a defect: anywhere (away from the border) on a texture, inside
    the part on an object. Returns ``(x, y)`` in pixels."""
    size = scene.size
    if not scene.is_object:
        lo, hi = margin * size, (1 - margin) * size
        return float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi))
    solid = np.flatnonzero(scene.coverage.ravel() >= 0.999)
    k = int(solid[rng.integers(0, solid.size)])
    return float(k % size + rng.uniform(-0.5, 0.5)), float(k // size + rng.uniform(-0.5, 0.5))


def _unit(scene: Scene) -> float:
    """Pixels per reference pixel, times the category's ``defect_scale`` (coarse textures
    get larger defects)."""
    return scene.unit * float(scene.style.get("defect_scale", 1.0))


def _towards(surface: np.ndarray, alpha: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``surface + alpha * (target - surface)``; alpha (H, W), target (3,) or (H, W, 3)."""
    return surface + alpha[..., None] * (target - surface)


def _bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, n: int = 32) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2  # (n, 2)


def scratch(scene: Scene, rng: np.random.Generator) -> Scene:
    """A thin curved stroke, 25-95 px long at 256 px, of random width and contrast."""
    u = _unit(scene)
    x, y = _anchor(scene, rng)
    length = rng.uniform(25, 95) * u
    heading = rng.uniform(0, 2 * np.pi)
    bow = rng.uniform(-0.22, 0.22)
    width = rng.uniform(1.0, 3.0) * u
    strength = rng.uniform(0.40, 0.90)
    kind = scene.style.get("scratch", "bright")
    if not scene.is_object and rng.random() < 0.3:  # textures: either sign
        kind = "dark" if kind == "bright" else "bright"
    c = np.array([x, y])
    d = np.array([np.cos(heading), np.sin(heading)])
    perp = np.array([-d[1], d[0]])
    path = _bezier(c - d * length / 2, c + perp * bow * length, c + d * length / 2)
    alpha = cut_faint(polyline_coverage(scene.size, [path], width)) * strength
    if kind == "bright":
        target = np.float32(245.0)
    else:
        target = scene.surface * np.float32(0.2)
    return scene.with_surface(_towards(scene.surface, alpha, target))


def crack(scene: Scene, rng: np.random.Generator) -> Scene:
    """A dark forking random walk: a trunk and thinner branches."""
    u = _unit(scene)
    x, y = _anchor(scene, rng)
    step = 3.0 * u
    n_steps = int(rng.integers(8, 26))
    strength = rng.uniform(0.55, 0.92)
    heading = rng.uniform(0, 2 * np.pi)
    trunk = [np.array([x, y])]
    branches: list[np.ndarray] = []
    for _ in range(n_steps):
        heading += rng.normal(0, 0.35)
        trunk.append(trunk[-1] + step * np.array([np.cos(heading), np.sin(heading)]))
        if rng.random() < 0.14:  # fork
            h = heading + rng.choice([-1, 1]) * rng.uniform(0.5, 1.2)
            b = [trunk[-1]]
            for _ in range(int(rng.integers(3, max(4, n_steps // 2)))):
                h += rng.normal(0, 0.4)
                b.append(b[-1] + step * np.array([np.cos(h), np.sin(h)]))
            branches.append(np.array(b))
    cov = polyline_coverage(scene.size, [np.array(trunk)], max(1.0, 2.0 * u))
    if branches:
        cov = np.maximum(cov, polyline_coverage(scene.size, branches, 1.0))
    alpha = cut_faint(cov) * strength
    return scene.with_surface(_towards(scene.surface, alpha, scene.surface * np.float32(0.12)))


def _ellipse_frame(scene: Scene, rng: np.random.Generator, a_range: tuple[float, float],
                   aspect: tuple[float, float] = (0.55, 1.0)):
    """Local coordinates of a random ellipse: ``(ex, ey, rho)``, (H, W) each; rho = 1 on the rim."""
    u = _unit(scene)
    x, y = _anchor(scene, rng)
    a = rng.uniform(*a_range) * u
    b = a * rng.uniform(*aspect)
    psi = rng.uniform(0, np.pi)
    yy, xx = pixel_grid(scene.size)
    dx, dy = xx - x, yy - y
    ex = (np.cos(psi) * dx + np.sin(psi) * dy) / a
    ey = (-np.sin(psi) * dx + np.cos(psi) * dy) / b
    rho = np.sqrt(ex * ex + ey * ey) + 1e-6
    # light direction expressed in the ellipse frame
    lx, ly = np.cos(scene.light_angle - psi), np.sin(scene.light_angle - psi)
    facing = (ex * lx + ey * ly) / rho  # cos of the angle between the radial direction and the light
    return rho, facing


def hole(scene: Scene, rng: np.random.Generator) -> Scene:
    """An elliptical pit with a dark inside and a shaded raised rim (semi-axis 5-15 px at 256)."""
    rho, facing = _ellipse_frame(scene, rng, (5.0, 15.0))
    depth = rng.uniform(0.45, 0.85)
    rim_w = rng.uniform(0.25, 0.45)
    rim_k = rng.uniform(0.15, 0.35)
    inside = rho < 1
    rim = (~inside) & (rho < 1 + rim_w)
    # inner wall on the far side from the light faces it and is lit; the near side is in shadow
    pit = (1 - depth) * (1 - 0.5 * facing) * (0.6 + 0.4 * rho)
    lip = 1 + rim_k * facing * (1 - (rho - 1) / rim_w) - 0.06
    factor = np.where(inside, pit, np.where(rim, lip, 1.0)).astype(np.float32)
    return scene.with_surface(scene.surface * factor[..., None])


def dent(scene: Scene, rng: np.random.Generator) -> Scene:
    """A shallow elliptical depression in a part: its slopes catch or lose the light."""
    rho, facing = _ellipse_frame(scene, rng, (5.0, 16.0))
    k = rng.uniform(0.30, 0.70)  # slope shading
    c = rng.uniform(0.08, 0.22)  # overall darkening of the dent
    inside = rho < 1
    factor = np.where(inside, 1 - c - k * facing * np.sqrt(np.clip(rho, 0, 1)), 1.0)
    return scene.with_surface(scene.surface * factor.astype(np.float32)[..., None])


def stain(scene: Scene, rng: np.random.Generator) -> Scene:
    """A smooth, low-contrast tint with a tide line, inside a wobbly ellipse (12-40 px at 256)."""
    u = _unit(scene)
    x, y = _anchor(scene, rng)
    r = rng.uniform(12, 40) * u
    aspect = rng.uniform(0.6, 1.0)
    psi = rng.uniform(0, np.pi)
    harmonics = [(k, rng.uniform(-0.12, 0.12), rng.uniform(0, 2 * np.pi)) for k in (2, 3, 4)]
    s = rng.uniform(0.22, 0.60)  # strength: 0.22 is barely visible
    tint = np.asarray(scene.style.get("stain", (0.6, 0.65, 0.75)), np.float32)
    yy, xx = pixel_grid(scene.size)
    dx, dy = xx - x, yy - y
    ex = (np.cos(psi) * dx + np.sin(psi) * dy) / r
    ey = (-np.sin(psi) * dx + np.cos(psi) * dy) / (r * aspect)
    ang = np.arctan2(ey, ex)
    wobble = 1 + sum(a * np.cos(k * ang + p) for k, a, p in harmonics)
    rho = np.sqrt(ex * ex + ey * ey) / wobble
    # a soft body and a sharper tide line near the rim, where the liquid dried
    tide = np.exp(-((rho - 0.88) / 0.07) ** 2)
    profile = np.where(rho < 1, 0.35 + 0.3 * (1 - rho * rho) + 0.6 * tide, 0.0)
    factor = 1 - s * profile[..., None] * (1 - tint)  # (H, W, 3)
    return scene.with_surface(scene.surface * factor.astype(np.float32))


def contamination(scene: Scene, rng: np.random.Generator) -> Scene:
    """A cluster of small foreign particles, sometimes with a fibre."""
    u = _unit(scene)
    x, y = _anchor(scene, rng)
    n = int(rng.integers(3, 16))
    spread = rng.uniform(3, 14) * u
    centres = np.array([x, y]) + rng.normal(0, spread, size=(n, 2))
    a = rng.uniform(1.0, 3.6, size=n) * u
    axes = np.stack([a, a * rng.uniform(0.45, 1.0, size=n)], axis=1)
    angles = rng.uniform(0, 180, size=n)
    cov = ellipses_coverage(scene.size, centres, axes, angles)
    if rng.random() < 0.4:
        length = rng.uniform(10, 28) * u
        h = rng.uniform(0, 2 * np.pi)
        c = np.array([x, y])
        d = np.array([np.cos(h), np.sin(h)])
        perp = np.array([-d[1], d[0]])
        fibre = _bezier(c, c + d * length / 2 + perp * rng.uniform(-0.4, 0.4) * length, c + d * length)
        cov = np.maximum(cov, polyline_coverage(scene.size, [fibre], 1.0))
    palette = scene.style.get("particles", [(30, 30, 30)])
    colour = np.asarray(palette[int(rng.integers(0, len(palette)))], np.float32)
    opacity = rng.uniform(0.75, 1.0)
    alpha = cut_faint(cov) * opacity
    return scene.with_surface(_towards(scene.surface, alpha, colour))


def missing(scene: Scene, rng: np.random.Generator) -> Scene:
    """A bite (disc) or chip (half plane) removed from the part: 3-18 % of its area."""
    if not scene.is_object:
        raise ValueError("'missing' needs an object scene (a part on a background)")
    u = _unit(scene)
    size = scene.size
    cov = scene.coverage
    area = float(cov.sum())
    yy, xx = pixel_grid(size)
    cx, cy = float((cov * xx).sum() / area), float((cov * yy).sum() / area)
    edge = np.flatnonzero(((cov > 0.05) & (cov < 0.95)).ravel())
    for _ in range(32):
        if rng.random() < 0.5:  # bite: a disc centred near an edge point
            k = int(edge[rng.integers(0, edge.size)])
            ex, ey = k % size, k // size
            out = np.array([ex - cx, ey - cy])
            out /= np.linalg.norm(out) + 1e-6
            rb = rng.uniform(8, 26) * u
            bx, by = np.array([ex, ey]) + out * rb * rng.uniform(0.0, 0.6)
            cut = sdf_coverage(np.sqrt((xx - bx) ** 2 + (yy - by) ** 2) - rb)
        else:  # chip: everything beyond a line across the part's outer edge
            w = rng.uniform(0, 2 * np.pi)
            proj = (xx - cx) * np.cos(w) + (yy - cy) * np.sin(w)
            reach = float(proj[cov > 0.5].max())
            cut = sdf_coverage(reach * rng.uniform(0.70, 0.92) - proj)
        new_cov = cov * (1 - cut)
        removed = (area - float(new_cov.sum())) / area
        if 0.03 <= removed <= 0.18:
            return scene.with_coverage(new_cov)
    return scene.with_coverage(new_cov)  # rare: accept the last try


DEFECT_PAINTERS: dict[str, Painter] = {
    "scratch": scratch,
    "crack": crack,
    "hole": hole,
    "dent": dent,
    "stain": stain,
    "contamination": contamination,
    "missing": missing,
}
