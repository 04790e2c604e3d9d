"""Checks for assignment A2 (Part II, forging): implement Perlin (gradient) noise.

The student writes ``perlin_noise(gradients, size) -> (H, W) tensor``: ``gradients`` is an
``(R, C, 2)`` tensor of unit vectors ``(g_y, g_x)`` at the points of a lattice of
``(R - 1) x (C - 1)`` cells spanning the ``H x W`` image; pixel ``(y, x)`` sits at lattice
coordinates ``(y (R - 1) / H, x (C - 1) / W)``. With the gradients given, the result must equal
:func:`anolearn.forge.perlin.lattice_noise` exactly (up to float rounding), so the checks can
compare, and, when a value is wrong, recognise the usual mistakes:

* linear interpolation (no fade), or Perlin's 1985 cubic fade instead of the quintic one;
* the corner vector taken as ``corner - p`` instead of ``p - corner`` (the noise flips sign);
* the gradient components read as ``(x, y)``;
* DRAEM's ``sqrt(2)`` factor left out;
* pixel coordinates from ``linspace(0, R - 1, H)`` (the last pixel on the lattice line), or
  cells of ``H // (R - 1)`` pixels (only right when the cell size divides the image);
* a wrong corner offset, which makes the noise jump at cell borders.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..forge.perlin import fade as reference_fade
from ..forge.perlin import lattice_noise
from .feedback import CheckFailed, Feedback, run_checks

TOLERANCE = 1e-4


def reference_noise(gradients: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The library's noise for one ``(R, C, 2)`` lattice: ``(H, W)`` float32."""
    rows, cols = gradients.shape[:2]
    scales = torch.tensor([[rows - 1, cols - 1]], dtype=torch.float32)
    return lattice_noise(gradients[None].float(), scales, tuple(size))[0]


def random_gradients(rows: int, cols: int, seed: int) -> torch.Tensor:
    """``(rows, cols, 2)`` random unit vectors (y, x)."""
    g = torch.Generator().manual_seed(seed)
    angles = 2 * math.pi * torch.rand(rows, cols, generator=g)
    return torch.stack([torch.sin(angles), torch.cos(angles)], -1)


def _call(student: Callable, gradients: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    try:
        out = student(gradients.clone(), tuple(size))
    except IndexError as err:
        rows = gradients.shape[0]
        raise CheckFailed(
            f"With gradients of shape {tuple(gradients.shape)} and size={tuple(size)} your function raised "
            f"IndexError: {err}.\nThe {rows} lattice rows bound {rows - 1} cells; pixel y sits at "
            f"y (R - 1) / H < R - 1, so its cell index is at most R - 2 and the corner below it at most R - 1. "
            "torch.linspace(0, R - 1, H), or cells of H // (R - 1) pixels when R - 1 does not divide H, "
            "reach past the last lattice line.") from None
    if not isinstance(out, torch.Tensor):
        raise CheckFailed(f"perlin_noise must return a torch.Tensor; it returned {type(out).__name__}.")
    if tuple(out.shape) != tuple(size):
        raise CheckFailed(f"With gradients of shape {tuple(gradients.shape)} and size={tuple(size)}, "
                          f"perlin_noise must return shape {tuple(size)}; yours has shape {tuple(out.shape)}.")
    if not out.is_floating_point():
        raise CheckFailed(f"perlin_noise must return a float tensor; yours has dtype {out.dtype}.")
    return out.detach().float().cpu()


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.isfinite(a).all()) and float((a - b).abs().max()) <= TOLERANCE


def _linspace_noise(gradients: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The noise with pixel ``y`` at ``y (R - 1) / (H - 1)`` (linspace, the last pixel on the lattice)."""
    h, w = size
    rows, cols = gradients.shape[:2]
    padded = torch.zeros(rows + 1, cols + 1, 2)  # the last pixel has fade weight 0 on the extra line
    padded[:rows, :cols] = gradients
    scales = torch.tensor([[rows - 1, cols - 1]], dtype=torch.float32)
    return lattice_noise(padded[None], scales, (h - 1, w - 1), canvas=(h, w))[0]


def _diagnose(got: torch.Tensor, gradients: torch.Tensor, size: tuple[int, int]) -> str:
    """A hint naming the mistake when ``got`` equals a known wrong variant of the noise."""
    want = reference_noise(gradients, size)
    h, w = size
    rows = gradients.shape[0]
    variants = [
        (want / math.sqrt(2.0), ("Your noise is the reference divided by sqrt(2): multiply by sqrt(2) "
                                "(DRAEM's factor, which stretches the range to [-1, 1]).")),
        (-want, ("Your noise has the opposite sign everywhere: the vector of each corner is from the "
                "corner to the pixel, p - corner (e.g. (f_y - 1, f_x) for the corner below), not corner - p.")),
        (reference_noise(gradients.flip(-1), size),
         ("You read the gradients as (x, y): gradients[..., 0] is the y (row) component and "
         "gradients[..., 1] the x (column) component.")),
        (_linspace_noise(gradients, size),
         (f"Pixel y sits at y (R - 1) / H, so the {h} pixels span the {rows - 1} cells and the last pixel "
         "row lies just before the last lattice line. torch.linspace(0, R - 1, H) puts it on the line.")),
    ]
    for candidate, hint in variants:
        if _close(got, candidate):
            return hint
    diff = (got - want).abs()
    y, x = divmod(int(diff.argmax()), w)
    return (f"The largest difference is at pixel (y={y}, x={x}): yours {float(got[y, x]):.4f}, "
            f"the reference {float(want[y, x]):.4f}.")


def _compare(student: Callable, gradients: torch.Tensor, size: tuple[int, int], what: str) -> None:
    got = _call(student, gradients, size)
    want = reference_noise(gradients, size)
    if not _close(got, want):
        raise CheckFailed(f"On {what}, your noise differs from anolearn.forge.perlin.lattice_noise "
                          f"(max difference {float((got - want).abs().max()):.4f}).\n"
                          + _diagnose(got, gradients, size))


# ----------------------------------------------------------------------------- the checks
def perlin_checks(student: Callable) -> list[tuple[str, Callable[[], None]]]:
    """The named property checks for a student's ``perlin_noise(gradients, size)``."""

    def shape_and_type():
        _call(student, random_gradients(5, 4, 0), (32, 24))

    def zero_on_lattice():
        gradients, size = random_gradients(5, 7, 1), (32, 48)  # 4 x 6 cells of 8 x 8 pixels
        got = _call(student, gradients, size)
        on_lattice = got[::8, ::8]  # (4, 6): the lattice points inside the image
        worst = on_lattice.abs().argmax()
        i, j = divmod(int(worst), on_lattice.shape[1])
        value = float(on_lattice[i, j])
        if not abs(value) <= TOLERANCE:
            raise CheckFailed(
                f"With 4 x 6 cells over a 32 x 48 image the lattice points are the pixels (8 i, 8 j); at pixel "
                f"(y={8 * i}, x={8 * j}) your noise is {value:.4f} instead of 0.\nAt a lattice point the offset "
                "to its own corner is (0, 0) and the fade gives the other corners weight 0, so the noise "
                "must vanish. " + _diagnose(got, gradients, size))

    def within_range():
        worst = 0.0
        for seed in range(4):
            got = _call(student, random_gradients(3, 3, 10 + seed), (40, 40))
            worst = max(worst, float(got.abs().max()))
        if not worst <= 1.0 + TOLERANCE:
            raise CheckFailed(f"One octave of Perlin noise with unit gradients (times sqrt(2)) stays within "
                              f"[-1, 1]; on 2 x 2-cell lattices yours reaches {worst:.4f}. Check the sqrt(2) "
                              "(not 2) and that the gradients are used as they are (unit vectors).")

    def quintic_fade():
        # With every gradient (1, 0) the noise along y is sqrt(2) (f - s(f)) in every column: it shows the fade s.
        gradients = torch.zeros(2, 2, 2)
        gradients[..., 0] = 1.0
        noise = _call(student, gradients, (64, 64)).double()  # one cell over 64 x 64 pixels
        got = noise[:, 0]  # (64,) down the first column
        f = torch.arange(64, dtype=torch.float64) / 64
        quintic = math.sqrt(2.0) * (f - reference_fade(f))
        cubic = math.sqrt(2.0) * (f - (3 * f**2 - 2 * f**3))
        if float((got - quintic).abs().max()) <= TOLERANCE:
            return
        intro = ("With every gradient equal to (1, 0) (pointing down the rows) over one cell, the noise is "
                 "sqrt(2) (f_y - s(f_y)) in every column, which shows the fade s. ")
        scale = float(got.abs().max())
        if scale <= TOLERANCE:
            if float(noise[0].abs().max()) > 10 * TOLERANCE:
                raise CheckFailed(intro + "Yours varies along the columns instead: gradients[..., 0] is the y (row) "
                                  "component, gradients[..., 1] the x (column) component.")
            raise CheckFailed(intro + "Yours is 0 everywhere: that happens with plain linear interpolation (s(t) = t). "
                              "Blend the corners with s(f_y) and s(f_x), s(t) = 6t^5 - 15t^4 + 10t^3, "
                              "not with the offsets themselves.")
        shape = got / scale
        if float((shape.abs() - quintic / quintic.abs().max()).abs().max()) <= 1e-3:
            return  # the right fade with a wrong sign or scale: reported by the other checks
        if float((shape - cubic / cubic.abs().max()).abs().max()) <= 1e-3:
            hint = ("Yours follows Perlin's 1985 cubic fade 3t^2 - 2t^3, whose second derivative is not 0 at t = 0 "
                    "and 1, so the noise has creases at cell borders. Use the quintic 6t^5 - 15t^4 + 10t^3 (Perlin 2002).")
        else:
            k = int((got - quintic).abs().argmax())
            hint = (f"At f_y = {float(f[k]):.3f} the reference is {float(quintic[k]):.4f}, yours {float(got[k]):.4f}. "
                    "Interpolate with s(f_y) along rows and s(f_x) along columns, s(t) = 6t^5 - 15t^4 + 10t^3.")
        raise CheckFailed(intro + hint)

    def continuous():
        gradients, size = random_gradients(2, 5, 3), (4, 512)  # 4 cells of 128 px along x
        got = _call(student, gradients, size)
        jumps = (got[:, 1:] - got[:, :-1]).abs()  # (4, 511)
        bound = 0.05  # the reference's steps are below 0.02 at 128 px per cell
        if float(jumps.max()) > bound:
            y, x = divmod(int(jumps.argmax()), jumps.shape[1])
            border = " (a cell border)" if (x + 1) % 128 == 0 else ""
            raise CheckFailed(
                f"Noise must be continuous: with 4 cells of 128 pixels along a row, your noise jumps by "
                f"{float(jumps[y, x]):.3f} between pixels x={x} and x={x + 1}{border} of row {y}.\n"
                "Each corner's contribution is its gradient dotted with p - corner: (f_y, f_x) for the top-left "
                "corner, (f_y - 1, f_x) below it, (f_y, f_x - 1) to its right, (f_y - 1, f_x - 1) diagonally.")

    def matches_reference():
        _compare(student, random_gradients(4, 6, 4), (48, 80), "a 3 x 5-cell lattice over a 48 x 80 image")

    def any_size():
        _compare(student, random_gradients(5, 4, 5), (30, 45),
                 "a 4 x 3-cell lattice over a 30 x 45 image (cells of 7.5 x 15 pixels)")
        _compare(student, random_gradients(2, 2, 6), (17, 9), "a single cell over a 17 x 9 image")

    def many_cells():
        _compare(student, random_gradients(33, 17, 7), (64, 64),
                 "a 32 x 16-cell lattice over a 64 x 64 image (cells of 2 x 4 pixels)")

    return [
        ("returns an (H, W) float tensor", shape_and_type),
        ("zero on every lattice point", zero_on_lattice),
        ("values within [-1, 1]", within_range),
        ("corners blended with the quintic fade", quintic_fade),
        ("continuous across cell borders", continuous),
        ("matches anolearn.forge.perlin on given gradients", matches_reference),
        ("any image size, not only multiples of the cell size", any_size),
        ("fine lattices (many small cells)", many_cells),
    ]


def check_perlin(student: Callable, verbose: bool = True, raise_on_fail: bool = True) -> Feedback:
    """Check a student's ``perlin_noise(gradients, size)`` and print specific feedback."""
    return run_checks("Assignment A2 (Perlin noise)", perlin_checks(student), verbose=verbose,
                      raise_on_fail=raise_on_fail)
