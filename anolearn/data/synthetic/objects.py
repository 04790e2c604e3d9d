"""Object categories: one part on a table, in a random pose, under the station's lamp.

Each part is an analytic shape. Its silhouette comes from a signed distance ``d`` (pixels,
negative inside), whose coverage ``clip(0.5 - d, 0, 1)`` anti-aliases the edge exactly; its
shading comes from a surface normal ``n`` and a light direction ``L``:

* ``washer``: an annulus ``max(|p| - R, r - |p|)``; brushed steel with concentric tool marks,
  an anisotropic highlight, and bevels at both edges lit by ``n . L``.
* ``capsule``: a pill lying roughly horizontally (within 20 degrees, either end first), the
  distance to a segment minus a radius; two coloured halves, a
  cylinder normal ``n = (q / rho, sqrt(1 - |q|^2 / rho^2))`` (``q`` the offset from the axis),
  Lambert shading plus a Blinn-Phong highlight ``(n . h)^40``.
* ``hexnut``: a hexagon with rounded (chamfered) corners and a threaded through-hole; brass,
  brushed along one direction of the nut.

Pose (position, rotation, a little scale), colour, illumination and noise change from image
to image, and the lamp moves a little around a fixed direction (as on an inspection
station), so *where* a defect sits matters and the pixels of two normal images do not line
up. The parts cast a soft shadow on the table.
"""
from __future__ import annotations

import numpy as np

from .canvas import (Scene, drop_shadow, illumination, jitter_colour, lamp_angle, noise_1d,
                     pixel_grid, sdf_coverage, sensor_noise, smooth_field)


def _table(rng: np.random.Generator, size: int, rgb: tuple[float, float, float],
           grain: float) -> np.ndarray:
    """A matte table top: a flat colour with blotches and fine grain. (H, W, 3) float32."""
    base = jitter_colour(rng, rgb, brightness=0.10, tint=0.04)
    blotch = smooth_field(rng, size, 4)
    fine = smooth_field(rng, size, max(8, size // 3))
    shade = 1.0 + 0.05 * blotch + grain * fine
    return (base[None, None, :] * shade[..., None]).astype(np.float32)


def _pose(rng: np.random.Generator, size: int, jitter: float = 0.09) -> tuple[float, float]:
    """Centre of the part: the image centre moved by up to ``jitter * size`` in x and y."""
    cx = size / 2 + rng.uniform(-jitter, jitter) * size
    cy = size / 2 + rng.uniform(-jitter, jitter) * size
    return cx, cy


def _assemble(rng: np.random.Generator, size: int, surface: np.ndarray, coverage: np.ndarray,
              background: np.ndarray, light_angle: float, shadow: float, style: dict) -> Scene:
    unit = size / 256
    background = background * drop_shadow(coverage, light_angle, unit, shadow)[..., None]
    return Scene(surface=surface.astype(np.float32), coverage=coverage,
                 light=illumination(rng, size, gradient=(0.0, 0.12), vignette=(0.0, 0.15)),
                 noise=sensor_noise(rng, size), background=background,
                 light_angle=float(light_angle), style=style)


def render_washer(size: int, rng: np.random.Generator) -> Scene:
    """A flat steel washer on a dark rubber mat."""
    unit = size / 256
    phi = lamp_angle(rng)
    cx, cy = _pose(rng, size)
    R = rng.uniform(0.29, 0.32) * size
    r = R * rng.uniform(0.40, 0.46)
    steel = jitter_colour(rng, (172, 176, 182), brightness=0.07, tint=0.02)
    rings = noise_1d(rng, 1024, smooth=1.0)  # concentric tool marks, indexed by radius
    mat = _table(rng, size, (48, 62, 56), grain=0.05)

    yy, xx = pixel_grid(size)
    dx, dy = xx - cx, yy - cy
    d = np.sqrt(dx * dx + dy * dy)
    theta = np.arctan2(dy, dx)
    coverage = sdf_coverage(np.maximum(d - R, r - d))
    edge_out, edge_in = R - d, d - r
    bevel_w = 0.16 * (R - r)
    near_out = edge_out < edge_in
    bevel = np.clip(1.0 - np.minimum(edge_out, edge_in) / bevel_w, 0.0, 1.0)
    n_dot_l = np.where(near_out, 1.0, -1.0) * np.cos(theta - phi)
    aniso = (0.5 + 0.5 * np.cos(2 * (theta - phi - np.pi / 2))) ** 3
    marks = np.interp(np.clip(d / unit * 4.0, 0, 1023), np.arange(1024, dtype=np.float32), rings)
    val = 0.56 + 0.24 * aniso + 0.015 * marks + bevel * (0.30 * n_dot_l - 0.05)
    surface = steel[None, None, :] * val[..., None]
    style = {"scratch": "bright", "stain": (0.80, 0.70, 0.55), "particles": [(25, 25, 28), (150, 70, 30)]}
    return _assemble(rng, size, surface, coverage, mat, phi, 0.55, style)


def render_capsule(size: int, rng: np.random.Generator) -> Scene:
    """A two-colour gelatine capsule on a blue-grey tray."""
    unit = size / 256
    phi = lamp_angle(rng)
    cx, cy = _pose(rng, size, jitter=0.06)
    # near-horizontal, either end first (as on a feeder); the pose still varies a lot
    alpha = rng.uniform(-0.35, 0.35) + np.pi * int(rng.integers(0, 2))
    half = rng.uniform(0.25, 0.27) * size  # half length of the axis segment
    rho = rng.uniform(0.15, 0.16) * size
    cap_a = jitter_colour(rng, (176, 42, 36), brightness=0.06, tint=0.03)
    cap_b = jitter_colour(rng, (228, 218, 192), brightness=0.04, tint=0.02)
    tray = _table(rng, size, (78, 90, 108), grain=0.03)

    yy, xx = pixel_grid(size)
    ax, ay = np.cos(alpha), np.sin(alpha)
    dx, dy = xx - cx, yy - cy
    s = dx * ax + dy * ay  # coordinate along the axis
    t = np.clip(s, -half, half)
    qx, qy = dx - t * ax, dy - t * ay  # offset from the axis segment
    dist = np.sqrt(qx * qx + qy * qy)
    coverage = sdf_coverage(dist - rho)
    nx, ny = qx / rho, qy / rho
    nz = np.sqrt(np.clip(1.0 - nx * nx - ny * ny, 0.0, 1.0))
    light = np.array([0.55 * np.cos(phi), 0.55 * np.sin(phi), 0.83])
    light /= np.linalg.norm(light)
    h = light + np.array([0.0, 0.0, 1.0])
    h /= np.linalg.norm(h)
    diffuse = np.clip(nx * light[0] + ny * light[1] + nz * light[2], 0.0, 1.0)
    spec = np.clip(nx * h[0] + ny * h[1] + nz * h[2], 0.0, 1.0) ** 40
    mix = np.clip(s / unit + 0.5, 0.0, 1.0)  # anti-aliased colour seam at s = 0
    colour = cap_a * (1 - mix[..., None]) + cap_b * mix[..., None]
    seam = 1.0 - 0.18 * np.clip(1.5 - np.abs(s - 0.08 * half) / unit, 0.0, 1.0)
    surface = colour * ((0.30 + 0.72 * diffuse) * seam)[..., None] + (170.0 * spec)[..., None]
    style = {"scratch": "dark", "stain": (0.60, 0.55, 0.50), "particles": [(25, 25, 25), (60, 110, 180)]}
    return _assemble(rng, size, surface, coverage, tray, phi, 0.45, style)


def _hexagon_sdf(px: np.ndarray, py: np.ndarray, apothem: float) -> np.ndarray:
    """Signed distance to a regular hexagon with flat sides at distance ``apothem`` (flat top/bottom)."""
    kx, ky, kz = -0.8660254, 0.5, 0.57735027
    x, y = np.abs(px), np.abs(py)
    dot = np.minimum(kx * x + ky * y, 0.0)  # reflect into the fundamental wedge
    x = x - 2 * dot * kx
    y = y - 2 * dot * ky
    x = x - np.clip(x, -kz * apothem, kz * apothem)
    y = y - apothem
    return np.sqrt(x * x + y * y) * np.sign(y)


def render_hexnut(size: int, rng: np.random.Generator) -> Scene:
    """A brass hex nut, seen along its axis, on a dark slate plate."""
    unit = size / 256
    phi = lamp_angle(rng)
    cx, cy = _pose(rng, size)
    beta = rng.uniform(0, np.pi / 3)  # hexagon rotation (60 degree symmetry)
    apo = rng.uniform(0.255, 0.275) * size
    brass = jitter_colour(rng, (196, 156, 78), brightness=0.07, tint=0.03)
    brush = noise_1d(rng, 1024, smooth=1.5)
    thread = rng.uniform(0, 2 * np.pi)
    plate = _table(rng, size, (52, 55, 60), grain=0.06)

    yy, xx = pixel_grid(size)
    dx, dy = xx - cx, yy - cy
    cb, sb = np.cos(beta), np.sin(beta)
    px, py = cb * dx + sb * dy, -sb * dx + cb * dy  # nut frame
    d = np.sqrt(dx * dx + dy * dy)
    theta = np.arctan2(dy, dx)
    hole = 0.42 * apo
    corner = 1.08 * apo  # rounds the corners (between apothem and circumradius 1.155)
    sd = np.maximum(np.maximum(_hexagon_sdf(px, py, apo), d - corner), hole - d)
    coverage = sdf_coverage(sd)
    face = 0.94 * apo  # the flat top face is a disc; outside it the chamfer slopes away
    chamfer = np.clip((d - face) / (0.05 * apo), 0.0, 1.0)
    thread_zone = np.clip(1.0 - (d - hole) / (0.16 * apo), 0.0, 1.0)
    cos_l = np.cos(theta - phi)
    brushed = np.interp(np.clip(px / unit * 3.0 + 512, 0, 1023), np.arange(1024, dtype=np.float32), brush)
    val = 0.72 + 0.02 * brushed + 0.06 * (dx * np.cos(phi) + dy * np.sin(phi)) / apo
    val = val + chamfer * (0.28 * cos_l - 0.06)
    threads = 0.5 + 0.5 * np.sin(2 * np.pi * d / (3.2 * unit) + thread)
    val = val * (1 - thread_zone) + thread_zone * (0.38 - 0.25 * cos_l * 0.5 + 0.12 * threads)
    surface = brass[None, None, :] * val[..., None]
    style = {"scratch": "bright", "stain": (0.62, 0.66, 0.72), "particles": [(25, 25, 28), (70, 140, 90)]}
    return _assemble(rng, size, surface, coverage, plate, phi, 0.6, style)


OBJECT_RENDERERS = {
    "washer": render_washer,
    "capsule": render_capsule,
    "hexnut": render_hexnut,
}
