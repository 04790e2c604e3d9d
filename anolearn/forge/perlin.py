"""Perlin (gradient) noise, batched: the shapes of DRAEM's forged anomalies.

Ken Perlin, "An image synthesizer", SIGGRAPH 1985, and "Improving noise", SIGGRAPH 2002
(the quintic fade). DRAEM (Zavrtanik et al., ICCV 2021) thresholds a Perlin noise map to get
irregular, blob-like anomaly masks of every size.

Gradient noise on a lattice of ``r_y x r_x`` cells: every lattice point ``(i, j)`` holds a random
unit vector ``g_ij``. A point ``p`` with lattice coordinates ``(u, v)`` lies in cell
``(i, j) = (floor u, floor v)`` at offset ``(f_y, f_x) = (u - i, v - j)``; each corner contributes
the dot product of its gradient with the vector from the corner to ``p``,

    n_00 = g_ij . (f_y, f_x),   n_10 = g_(i+1)j . (f_y - 1, f_x),   n_01, n_11 likewise,

and the four are blended with the quintic fade ``s(t) = 6t^5 - 15t^4 + 10t^3``:

    noise(p) = sqrt(2) * lerp( lerp(n_00, n_10, s(f_y)), lerp(n_01, n_11, s(f_y)), s(f_x) ).

So the noise is exactly 0 on every lattice point, smooth (the fade has zero first and second
derivatives at 0 and 1) and, with the ``sqrt(2)`` of DRAEM's code, within [-1, 1]. Pixel
``(y, x)`` of an ``H x W`` map sits at ``(u, v) = (y r_y / H, x r_x / W)``, as in DRAEM.

DRAEM draws the lattice as ``2**a x 2**b`` cells with ``a, b`` independent and uniform in
``{0, ..., 5}`` (``torch.randint(0, 6)``: the upper bound 6 is exclusive, so 1 to 32 cells),
rotates the noise map by ``U(-90, 90)`` degrees and keeps the pixels above 0.5.

What is different here, and why:

* **batched**: every sample has its own lattice scale, gradients and rotation, all computed in
  one pass (the gradients of a batch live in one tensor sized for the largest lattice). The
  pixel coordinates ``(y r_y / H, x r_x / W)`` are separable, so a whole map is two small matrix
  products (:func:`lattice_noise`) rather than four gathers per pixel; samples are grouped by
  the number of lattice columns they reach, so a coarse lattice does not pay for the finest one;
* **any size**: DRAEM's code tiles gradients with ``np.repeat`` and so needs ``H`` and ``W``
  divisible by the scale; evaluating the formula at each pixel's coordinates has no such limit;
* **rotation without black corners**: DRAEM turns the finished map, whose corners then fill
  with zeros (no anomaly can appear there). We evaluate the noise on a canvas padded to hold the
  image's circumscribed circle and read the turned image out of it, bilinearly as DRAEM does;
  the bilinear read shaves the sharpest peaks a little, so on small images with fine lattices
  the turned masks cover slightly less (about 4.4 % instead of 5.6 % at 64 px, 5.2 % instead
  of 5.5 % at 256 px);
* **octaves** (fractal noise, optional): ``sum_k persistence^k noise_k`` with the lattice
  ``lacunarity^k`` times finer; DRAEM uses a single octave.

Mask coverage. The noise at a random point of a cell has the same distribution whatever the
lattice, so the expected fraction of a mask above 0.5 is a constant: about 5.4 % (a Monte
Carlo integral of the formula above; the tests check the library against it). About 5 % of
masks at 256 px are empty (a coarse lattice that never exceeds 0.5).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .draws import check_generator, uniform
from .geometry import affine_grid

_SQRT2 = math.sqrt(2.0)


def fade(t: torch.Tensor) -> torch.Tensor:
    """Perlin's quintic fade ``6t^5 - 15t^4 + 10t^3`` (0 -> 0, 1 -> 1, flat at both ends)."""
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


def sample_scales(n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu",
                  exponents: tuple[int, int] = (0, 5)) -> torch.Tensor:
    """Lattice sizes ``(n, 2)`` float: ``(2**a, 2**b)``, ``a, b`` uniform in ``exponents`` (inclusive)."""
    lo, hi = exponents
    if not 0 <= lo <= hi:
        raise ValueError(f"exponents must satisfy 0 <= low <= high, got {exponents}.")
    return 2.0 ** torch.randint(lo, hi + 1, (n, 2), generator=generator, device=device).float()


def lattice_gradients(n: int, rows: int, cols: int, generator: torch.Generator | None = None,
                      device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Random unit gradients ``(n, rows, cols, 2)`` as (y, x) components, angles uniform in [0, 2 pi)."""
    angles = uniform(0.0, 2 * math.pi, (n, rows, cols), generator, device, dtype)
    return torch.stack([torch.sin(angles), torch.cos(angles)], -1)


def _axis_weights(n_px: int, cells: torch.Tensor, size: int, n_lattice: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Interpolation weights along one axis, for every sample.

    Pixel ``k`` (0 <= k < n_px) sits at lattice coordinate ``t = k * cells / size``, in cell
    ``i = floor(t)`` at offset ``f = t - i``. Returns ``(W, D)``, both ``(B, n_px, n_lattice)``:
    ``W[k, i] = 1 - s(f)``, ``W[k, i + 1] = s(f)`` (the fade-weighted lerp) and
    ``D[k, l] = W[k, l] * (t - l)`` (the same weights times the distance to lattice line ``l``).
    """
    b = cells.shape[0]
    k = torch.arange(n_px, device=cells.device, dtype=torch.float32).view(1, n_px)
    t = k * (cells.view(b, 1) / size)  # (B, n_px)
    i = torch.floor(t)
    s = fade(t - i).unsqueeze(-1)  # (B, n_px, 1)
    i = i.long().unsqueeze(-1)
    # two non-zeros per row, written with scatter (cheaper than comparing every lattice line)
    weights = torch.zeros(b, n_px, n_lattice, device=cells.device, dtype=torch.float32)
    weights.scatter_(2, i, 1.0 - s).scatter_(2, i + 1, s)
    lines = torch.arange(n_lattice, device=cells.device, dtype=torch.float32).view(1, 1, n_lattice)
    return weights, weights * (t.unsqueeze(-1) - lines)


def lattice_noise(gradients: torch.Tensor, scales: torch.Tensor, size: tuple[int, int],
                  canvas: tuple[int, int] | None = None) -> torch.Tensor:
    """Evaluate un-rotated gradient noise on a pixel grid, for a batch of lattices.

    Pixel ``(y, x)`` sits at lattice coordinates ``(y r_y / H, x r_x / W)``. Because those are
    separable, the whole map is two small matrix products per sample instead of a gather per
    pixel: with the per-axis weights of :func:`_axis_weights`,

        noise = sqrt(2) * ( D_y G_y W_x^T + W_y G_x D_x^T ),

    where ``G_y, G_x`` are the lattice's gradient components -- the sum over the four corners of
    ``weight * g . (p - corner)`` written as matrices.

    Args:
        gradients: ``(B, R, C, 2)`` unit gradients (y, x) at the lattice points; ``R`` and ``C``
            must exceed the largest lattice coordinate reached by one.
        scales: ``(B, 2)`` lattice cells ``(r_y, r_x)`` spanning ``size``.
        size: ``(H, W)`` in pixels that ``scales`` cells span (sets the cell size in pixels).
        canvas: ``(H_c, W_c)`` pixels to evaluate (default ``size``); a larger canvas extends the
            same lattice to the right and bottom.

    Returns:
        ``(B, H_c, W_c)`` float32, exactly 0 on lattice points.
    """
    _, rows, cols, _ = gradients.shape
    h, w = size
    hc, wc = canvas if canvas is not None else size
    wy, dy = _axis_weights(hc, scales[:, 0], h, rows)  # (B, Hc, R)
    wx, dx = _axis_weights(wc, scales[:, 1], w, cols)  # (B, Wc, C)
    gy, gx = gradients[..., 0], gradients[..., 1]  # (B, R, C)
    # the sum of two (B, Hc, C) x (B, C, Wc) products, written as one product of the factors
    # side by side, (B, Hc, 2C) x (B, 2C, Wc): the big canvas is written once;
    # DRAEM's sqrt(2) is folded into the small left factor
    left = torch.cat([dy @ gy, wy @ gx], 2).mul_(_SQRT2)  # (B, Hc, 2C)
    return torch.bmm(left, torch.cat([wx, dx], 2).transpose(1, 2))  # (B, Hc, Wc)


#: On the CPU, the samples of a group are evaluated a few at a time, so that their canvases,
#: rotation grids and maps (about this many bytes) stay in the processor's cache from the
#: matrix product through the rotated read to the threshold, instead of each stage streaming a
#: whole group through memory (measured: the masks of a batch of 16 at 256 px come about 10 %
#: faster). On a GPU, one call per group is best.
_CHUNK_BYTES = 4 * 2 ** 20


def _grouped_noise(gradients: torch.Tensor, scales: torch.Tensor, size: tuple[int, int],
                   canvas: tuple[int, int], finish=None) -> torch.Tensor:
    """:func:`lattice_noise` with the samples grouped by how many lattice columns they reach.

    The gradient tensor is sized for the finest lattice of the batch, but a coarse lattice
    reaches only its first few columns: the rest would multiply zeros in the big matrix product.
    DRAEM's scales take six values, so samples are grouped by the columns they need (one host
    read of the scales) and each group is evaluated with its own slice of the gradients (on the
    CPU a few samples at a time, see ``_CHUNK_BYTES``).
    ``finish(noise, members)``, if given, maps a group's canvases ``(n, Hc, Wc)`` to its final
    maps (the rotated read), so that only those are copied into place.
    """
    b, _, cols, _ = gradients.shape
    (h, w), (hc, wc) = size, canvas
    finish = finish if finish is not None else (lambda noise, members: noise)
    reach = torch.floor((wc - 1.0) * (scales[:, 1] / w)) + 3  # lattice columns used, with a margin
    # (coarse lattices share one group: a few more columns cost less than another pass)
    need = reach.clamp(min=min(8, cols), max=cols).long().tolist()
    groups: dict[int, list[int]] = {}
    for i, n in enumerate(need):
        groups.setdefault(n, []).append(i)
    per_sample = 4 * (hc * wc + 3 * h * w)  # bytes: a canvas, its rotation grid and its map
    chunk = b if gradients.device.type != "cpu" else max(1, _CHUNK_BYTES // per_sample)
    pieces = [(n, members[i:i + chunk]) for n, members in groups.items() for i in range(0, len(members), chunk)]
    if len(pieces) == 1:  # everyone at once: no copies
        everyone = torch.arange(b, device=gradients.device)
        return finish(lattice_noise(gradients[:, :, :need[0]], scales, size, canvas), everyone)
    out = None
    for n, members in pieces:
        idx = torch.tensor(members, device=gradients.device)
        noise = lattice_noise(gradients.index_select(0, idx)[:, :, :n], scales.index_select(0, idx), size, canvas)
        part = finish(noise, idx)
        if out is None:
            out = part.new_empty(b, *part.shape[1:])
        out.index_copy_(0, idx, part)
    return out


def _unpack_shape(shape) -> tuple[int, int, int, torch.device | None]:
    if isinstance(shape, torch.Tensor):
        if shape.dim() not in (3, 4):
            raise ValueError(f"Pass a (B, H, W) shape or a (B, H, W) / (B, C, H, W) tensor, got {tuple(shape.shape)}.")
        return shape.shape[0], shape.shape[-2], shape.shape[-1], shape.device
    if len(shape) != 3:
        raise ValueError(f"shape must be (B, H, W), got {tuple(shape)}.")
    b, h, w = (int(s) for s in shape)
    if b < 0 or h < 2 or w < 2:
        raise ValueError(f"shape must be (B, H, W) with H, W >= 2, got {(b, h, w)}.")
    return b, h, w, None


def perlin_noise(shape, scales: torch.Tensor | None = None, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None, rotation: tuple[float, float] | torch.Tensor | None = None,
                 octaves: int = 1, persistence: float = 0.5, lacunarity: float = 2.0,
                 exponents: tuple[int, int] = (0, 5)) -> torch.Tensor:
    """A batch of Perlin noise maps, each with its own lattice scale and rotation.

    Args:
        shape: ``(B, H, W)``, or a ``(B, H, W)`` / ``(B, C, H, W)`` tensor whose size and device
            are used (e.g. the image batch the masks are for).
        scales: ``(B, 2)`` lattice cells ``(rows, cols)`` per sample (any positive numbers);
            None draws DRAEM's ``(2**a, 2**b)`` with ``a, b`` uniform in ``exponents``.
        generator: random source on ``device``.
        device: where to compute (default: the tensor's device, or the generator's, or CPU).
        rotation: None (no rotation), a range ``(low, high)`` in degrees drawn per sample
            (DRAEM: ``(-90, 90)``), or a ``(B,)`` tensor of angles (counter-clockwise).
        octaves: number of octaves summed (1 = plain Perlin noise).
        persistence: amplitude factor from one octave to the next.
        lacunarity: lattice refinement from one octave to the next.
        exponents: inclusive range of ``a, b`` when scales are drawn.

    Returns:
        ``(B, H, W)`` float32; within [-1, 1] for one octave, within ``sum_k persistence^k``
        in general. Without rotation it is exactly 0 on the lattice points.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> noise = perlin_noise((4, 100, 60), generator=g, rotation=(-90, 90))
        >>> noise.shape
        torch.Size([4, 100, 60])
    """
    return _noise_maps(shape, None, scales, generator, device, rotation, octaves, persistence, lacunarity, exponents)


def _noise_maps(shape, then=None, scales=None, generator=None, device=None, rotation=None, octaves=1,
                persistence=0.5, lacunarity=2.0, exponents=(0, 5)) -> torch.Tensor:
    """:func:`perlin_noise`, with ``then`` (None or a pointwise map, the threshold of
    :func:`perlin_mask`) applied to the finished maps group by group, so that only its (smaller)
    result is copied into place."""
    b, h, w, dev = _unpack_shape(shape)
    if device is None:
        device = dev if dev is not None else (generator.device if generator is not None else "cpu")
    device = torch.device(device)
    check_generator(generator, device)
    if octaves < 1:
        raise ValueError(f"octaves must be >= 1, got {octaves}.")
    if scales is None:
        scales = sample_scales(b, generator, device, exponents)
        max_ry = max_rx = float(2 ** exponents[1])
    else:
        scales = scales.to(device=device, dtype=torch.float32)
        if scales.shape != (b, 2) or bool((scales <= 0).any()):
            raise ValueError(f"scales must be a (B, 2) = ({b}, 2) tensor of positive numbers, got {tuple(scales.shape)}.")
        max_ry, max_rx = (float(s) for s in scales.amax(0))  # one host read to size the lattice

    # A turned image needs noise beyond its borders: evaluate on a canvas padded on every
    # side by enough pixels to hold the image's circumscribed circle.
    if rotation is None:
        pad_y = pad_x = 0
    else:
        half_diag = math.hypot(h - 1, w - 1) / 2
        pad_y = int(math.ceil(max(0.0, half_diag - (h - 1) / 2))) + 1
        pad_x = int(math.ceil(max(0.0, half_diag - (w - 1) / 2))) + 1
    hc, wc = h + 2 * pad_y, w + 2 * pad_x

    grads, factor = [], 1.0
    for _ in range(octaves):
        rows = int(math.ceil(hc * max_ry * factor / h)) + 2
        cols = int(math.ceil(wc * max_rx * factor / w)) + 2
        grads.append(lattice_gradients(b, rows, cols, generator, device))  # (B, rows, cols, 2)
        factor *= lacunarity
    turn = None
    if rotation is not None:
        if isinstance(rotation, torch.Tensor):
            angles = rotation.to(device=device, dtype=torch.float32).reshape(b)
        else:
            angles = uniform(float(rotation[0]), float(rotation[1]), (b,), generator, device)
        turn = _turn(angles, (h, w), (hc, wc))
    if octaves == 1:  # turn (and threshold) each group's canvas as soon as it is made
        finish = turn
        if then is not None:
            def finish(noise: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
                return then(noise if turn is None else turn(noise, members))
        return _grouped_noise(grads[0], scales, (h, w), (hc, wc), finish=finish)
    noise, amplitude, factor = None, 1.0, 1.0
    for octave_grads in grads:
        octave = _grouped_noise(octave_grads, scales * factor, (h, w), (hc, wc))  # (B, Hc, Wc)
        noise = octave if noise is None else noise.add_(octave, alpha=amplitude)
        amplitude *= persistence
        factor *= lacunarity
    noise = noise if turn is None else turn(noise, torch.arange(b, device=device))
    return noise if then is None else then(noise)


def _turn(angles: torch.Tensor, size: tuple[int, int], canvas: tuple[int, int]):
    """The rotated read of the canvas: ``turn(noise (n, Hc, Wc), members (n,)) -> (n, H, W)``.

    Output pixel p shows the canvas at c + R(-theta) (p - c), read bilinearly (as DRAEM's
    rotation of its noise map). In the normalised coordinates of grid_sample this is a linear
    map (both centres sit at 0).
    """
    (h, w), (hc, wc) = size, canvas
    t = torch.deg2rad(angles)
    cos, sin = torch.cos(t), torch.sin(t)
    sx, sy = (w - 1) / (wc - 1), (h - 1) / (hc - 1)  # image half-size over canvas half-size
    theta = torch.zeros(angles.shape[0], 2, 3, device=angles.device, dtype=torch.float32)
    theta[:, 0, 0], theta[:, 0, 1] = cos * sx, -sin * (h - 1) / (wc - 1)
    theta[:, 1, 0], theta[:, 1, 1] = sin * (w - 1) / (hc - 1), cos * sy

    def turn(noise: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
        grid = affine_grid(theta.index_select(0, members), h, w, align_corners=True)  # (n, H, W, 2) as (x, y)
        return F.grid_sample(noise.unsqueeze(1), grid, mode="bilinear", padding_mode="border",
                             align_corners=True).squeeze(1)

    return turn


def perlin_mask(shape, threshold: float = 0.5, dtype: torch.dtype = torch.float32, **kwargs) -> torch.Tensor:
    """DRAEM's anomaly mask: ``1`` where Perlin noise exceeds ``threshold``.

    Args:
        shape: as :func:`perlin_noise`.
        threshold: DRAEM's code uses 0.5 (higher = smaller, rarer blobs).
        dtype: of the result (``torch.bool`` for a boolean mask).
        **kwargs: passed to :func:`perlin_noise` (``scales``, ``generator``, ``rotation``, ...).

    Returns:
        ``(B, 1, H, W)`` in {0, 1}. A sample can come out empty (all 0) when its noise stays
        below the threshold; DRAEM keeps such samples (they count as normal).
    """
    mask = _noise_maps(shape, lambda noise: torch.gt(noise, threshold), **kwargs).unsqueeze(1)
    return mask if dtype == torch.bool else mask.to(dtype)


__all__ = ["fade", "lattice_noise", "lattice_gradients", "perlin_mask", "perlin_noise", "sample_scales"]
