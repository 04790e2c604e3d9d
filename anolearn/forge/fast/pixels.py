"""Whole image in, some pixels out: sharpness and rotation evaluated at chosen pixels only.

Sharpness and rotation need their whole input image, but their output at a pixel is a small
stencil of it (a 3 x 3 neighbourhood, four bilinear neighbours). When only some output pixels
are wanted, these compute just those, reading the input through a *reader* with three methods:

* ``locate(yy, xx) -> loc``      where pixels ``(yy, xx)`` ``(B, L)`` are stored,
* ``shift(loc, dy, dx) -> loc``  where their neighbours ``(yy + dy, xx + dx)`` are,
* ``read(loc) -> (B, C, L)``     the values stored there.

A dense image is read with one flat ``index_select`` (:class:`DenseReader`); a palette or
level-table image (:mod:`.palette`) looks its pixels up in the texture bank, so the same
stencil code serves all. Each function computes the same floats as the whole-image operation
of :mod:`anolearn.forge.augment` at those pixels (the tests check it).
"""
from __future__ import annotations

import torch

from ..geometry import affine_points, normalised, rotation_theta


class DenseReader:
    """Reads pixels of a dense ``(B, C, H, W)`` batch, or of its images ``rows`` (a slice or a
    list of indices); locations are flat pixel indices."""

    def __init__(self, x: torch.Tensor, rows: slice | list[int] | None = None):
        _, self.c, self.h, self.w = x.shape
        self.dtype, self.device = x.dtype, x.device
        if isinstance(rows, slice):
            x = x[rows]
        # read in place, one flat index_select: channel c of pixel loc of image i sits at
        # (i C + c) H W + loc of the flattened batch (the listed rows of it, for a list)
        index = torch.arange(x.shape[0], device=x.device) if rows is None or isinstance(rows, slice) else \
            torch.tensor(rows, device=x.device)
        self.b, self._flat = index.numel(), x.reshape(-1)
        channels = torch.arange(self.c, device=x.device)
        self._start = (index.view(-1, 1, 1) * self.c + channels.view(1, -1, 1)) * (self.h * self.w)  # (n, C, 1)

    def locate(self, yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        return yy * self.w + xx

    def shift(self, loc: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
        return loc + (dy * self.w + dx)

    def read(self, loc: torch.Tensor) -> torch.Tensor:
        at = loc.unsqueeze(1) + self._start  # (n, C, L)
        return self._flat.index_select(0, at.view(-1)).view(at.shape)


def _reader(x):
    return DenseReader(x) if isinstance(x, torch.Tensor) else x


def sharpness_at(x, ys: torch.Tensor, xs: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """:func:`~anolearn.forge.augment.sharpness` of ``x`` (a ``(B, 3, H, W)`` batch or a reader)
    at pixels ``(ys, xs)`` ``(B, L)``: ``(B, 3, 1, L)``, with the same float operations."""
    x = _reader(x)
    b, h, w, n = x.b, x.h, x.w, ys.shape[1]
    f = factor.view(b, 1, 1)
    if h < 3 or w < 3:
        return x.read(x.locate(ys, xs)).unsqueeze(2)
    centre = x.locate(ys.clamp(1, h - 2), xs.clamp(1, w - 2))  # border pixels keep their value (below)
    # the 3 x 3 neighbourhood of every pixel in one read: (B, 3, 9 L), neighbour (dy, dx) at block 3 (dy + 1) + dx + 1
    near = x.read(torch.cat([x.shift(centre, dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], 1)).view(b, -1, 9, n)
    rows = [(near[:, :, dx] + near[:, :, 3 + dx]).add_(near[:, :, 6 + dx]) for dx in range(3)]
    smooth = (rows[0] + rows[1]).add_(rows[2])  # the same sums, in the same order, as sharpness
    inner = near[:, :, 4]
    out = smooth.add_(inner, alpha=4.0).mul_(1.0 / 13.0).lerp_(inner, f).clamp_(0, 1)
    # border pixels keep their own value; read it where it differs from the clamped centre's
    # (no host round trip to skip this: the padding slots sit at pixel 0, so nearly every call has some)
    border = ((ys == 0) | (ys == h - 1) | (xs == 0) | (xs == w - 1)).unsqueeze(1)
    return torch.where(border, x.read(x.locate(ys, xs)), out).unsqueeze(2)


def bilinear_at(x, gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
    """``F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)`` at
    ``(B, L)`` normalised points ``(gx, gy)``, reading only the four neighbours of each point.

    ``x`` is a ``(B, C, H, W)`` batch or a reader. Point ``(gx, gy)`` sits at pixel coordinates
    ``u = (gx + 1) W / 2 - 1/2``, ``v = (gy + 1) H / 2 - 1/2``; with ``(i, j) = (floor v, floor u)``
    and ``(dv, du)`` the remainders, the value is
    ``(1 - dv)(1 - du) x[i, j] + (1 - dv) du x[i, j + 1] + dv (1 - du) x[i + 1, j] + dv du x[i + 1, j + 1]``,
    neighbours outside the image counting as 0. The arithmetic follows torch's compiled CPU
    kernel, fused multiply-adds included, so on x86 CPUs it gives the very floats of
    ``grid_sample`` (the tests check); elsewhere the last bit may differ. Returns ``(B, C, L)``.
    """
    x = _reader(x)
    h, w, n = x.h, x.w, gx.shape[1]
    u = torch.addcmul(torch.full_like(gx, -0.5), gx + 1.0, torch.full_like(gx, w / 2))  # pixel coordinates
    v = torch.addcmul(torch.full_like(gy, -0.5), gy + 1.0, torch.full_like(gy, h / 2))
    j0, i0 = u.floor(), v.floor()
    du, dv = u - j0, v - i0
    eu, ev = 1.0 - du, 1.0 - dv
    # the four corners nw, ne, sw, se at once, as (B, 4, L)
    ii = i0.long().unsqueeze(1) + torch.tensor([0, 0, 1, 1], device=i0.device).view(1, 4, 1)
    jj = j0.long().unsqueeze(1) + torch.tensor([0, 1, 0, 1], device=j0.device).view(1, 4, 1)
    inside = (ii >= 0) & (ii < h) & (jj >= 0) & (jj < w)  # zero padding: weight 0 outside
    weights = torch.stack([ev * eu, ev * du, dv * eu, dv * du], 1).mul_(inside)
    loc = x.locate(ii.clamp_(0, h - 1).view(x.b, -1), jj.clamp_(0, w - 1).view(x.b, -1))  # corner-major
    vals = x.read(loc).view(x.b, -1, 4, n)  # the four neighbours in one read
    out = vals[:, :, 0] * weights[:, 0:1]
    for k in (1, 2, 3):
        out = torch.addcmul(out, vals[:, :, k], weights[:, k:k + 1])
    return out


def rotate_at(x, ys: torch.Tensor, xs: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """:func:`~anolearn.forge.augment.affine_rotate` of ``x`` (a ``(B, 3, H, W)`` batch or a
    reader) at pixels ``(ys, xs)`` ``(B, L)``: ``(B, 3, 1, L)``."""
    x = _reader(x)
    b, h, w = x.b, x.h, x.w
    theta = rotation_theta(degrees.view(-1), h, w, x.dtype)
    xn = normalised(xs.to(x.dtype), w, False).view(b, 1, -1)
    yn = normalised(ys.to(x.dtype), h, False).view(b, 1, -1)
    grid = affine_points(theta, xn, yn)  # (B, 1, L, 2): the full grid's values at those pixels
    return bilinear_at(x, grid[:, 0, :, 0], grid[:, 0, :, 1]).clamp_(0, 1).unsqueeze(2)


__all__ = ["DenseReader", "bilinear_at", "rotate_at", "sharpness_at"]
