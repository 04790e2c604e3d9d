"""Checks for assignment A5 (Part V, masking): RIAD's complementary random grid masks.

The student writes ``grid_masks(k, size, n=3, generator=None) -> (n, 1, H, W)``: the image is
cut into ``k x k``-pixel cells (``ceil(H / k) x ceil(W / k)`` of them, the last row and column
cropped at the border), the cells are split at random into ``n`` groups of (almost) equal size,
and mask ``i`` is 0 (hidden) on the cells of group ``i`` and 1 (visible) elsewhere.

Masks are random, so the checks test the properties that :mod:`anolearn.masking` guarantees,
using its helpers (:func:`~anolearn.masking.grid_shape`, :func:`~anolearn.masking.cells_to_pixels`)
as the oracle for the grid:

* every pixel hidden in exactly one mask (the masks' hidden parts partition the image);
* hidden parts made of whole ``k x k`` cells of the library's grid, also when ``k`` does not
  divide the image size (the usual mistake: ``H // k`` cells, leaving a strip never hidden);
* groups of ``floor`` or ``ceil`` of (cells / n) cells;
* the same masks from the same generator seed, whatever the global random state (the usual
  mistake: a random call without ``generator=``), different masks from different seeds, and
  every cell hidden by every mask for some seed.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..masking import cells_to_pixels, grid_shape
from .feedback import CheckFailed, Feedback, run_checks


def _pair(size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _call(student: Callable, k: int, size, n: int, seed: int | None = 0) -> torch.Tensor:
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    out = student(k, size, n, generator)
    h, w = _pair(size)
    what = f"k={k}, size={size}, n={n}"
    if not isinstance(out, torch.Tensor):
        raise CheckFailed(f"grid_masks must return a torch.Tensor; with {what} it returned {type(out).__name__}.")
    if tuple(out.shape) != (n, 1, h, w):
        hint = ""
        if tuple(out.shape[-2:]) == ((h // k) * k, (w // k) * k):
            hint = (f" The image is not a multiple of k: use ceil(H / k) x ceil(W / k) cells ({grid_shape(size, k)} here), "
                    "not H // k, and crop the last row and column of cells to the image.")
        raise CheckFailed(f"With {what}, grid_masks must return shape {(n, 1, h, w)} (one mask per group, one channel, "
                          f"the image size); yours has shape {tuple(out.shape)}.{hint}")
    if not out.is_floating_point():
        raise CheckFailed(f"Masks multiply images, so they must be float (0.0 and 1.0); yours have dtype {out.dtype}. "
                          "Convert with .float().")
    bad = (out != 0) & (out != 1)
    if bool(bad.any()):
        raise CheckFailed(f"With {what}, masks must hold only 0 (hidden) and 1 (visible); yours hold e.g. "
                          f"{float(out[bad][0]):.3f}.")
    return out.detach().cpu()


def _partition(masks: torch.Tensor, what: str) -> torch.Tensor:
    """Check that every pixel is hidden exactly once; return the group of each pixel ``(H, W)``."""
    hidden = (1 - masks[:, 0]).sum(0)  # (H, W): how many masks hide each pixel
    n = masks.shape[0]
    if n > 2 and bool((hidden == n - 1).all()):
        raise CheckFailed(f"With {what}, every pixel is hidden in {n - 1} of your {n} masks: your masks are inverted. "
                          "Use 1 = visible and 0 = hidden, so that mask i hides only the cells of group i.")
    if bool((hidden != 1).any()):
        never, twice = int((hidden == 0).sum()), int((hidden > 1).sum())
        y, x = (int(v) for v in torch.nonzero(hidden != 1)[0])
        raise CheckFailed(
            f"With {what}, every pixel must be hidden (0) in exactly one of the masks, so that the composed "
            f"reconstruction predicts each pixel once. In yours {never} pixel(s) are never hidden and {twice} are hidden "
            f"more than once; the first is (y={y}, x={x}), hidden {int(hidden[y, x])} times."
            + (" Pixels at the bottom or right border never hidden? The grid needs ceil(H / k) x ceil(W / k) cells, "
               "the last ones cropped at the border, not H // k." if never and (y >= masks.shape[-2] - 8 or
                                                                         x >= masks.shape[-1] - 8) else ""))
    return (1 - masks[:, 0]).argmax(0)  # (H, W) group index


def _check_cells(student: Callable, k: int, size, n: int, seed: int = 0) -> torch.Tensor:
    """Shape, partition and whole cells for one call; return the group of each cell ``(Nh, Nw)``."""
    what = f"k={k}, size={size}, n={n}"
    masks = _call(student, k, size, n, seed)
    groups = _partition(masks, what)  # (H, W)
    cells = groups[::k, ::k]  # (Nh, Nw) = grid_shape(size, k): the group of each cell's top-left pixel
    expected = cells_to_pixels(cells, k, size)  # (H, W): every pixel of a cell in the cell's group
    if not torch.equal(groups, expected):
        y, x = (int(v) for v in torch.nonzero(groups != expected)[0])
        raise CheckFailed(
            f"With {what}, the hidden parts must be whole {k} x {k} cells of a grid that starts at pixel (0, 0): "
            f"pixel (y={y}, x={x}) lies in cell ({y // k}, {x // k}), which starts at (y={(y // k) * k}, "
            f"x={(x // k) * k}), but your masks give it another group than that cell's first pixel. Draw one group "
            "per cell, then blow the cell grid up to pixels (e.g. repeat_interleave(k) along each axis, then crop "
            "to the image size).")
    return cells


# ----------------------------------------------------------------------------- the checks
def grid_mask_checks(student: Callable) -> list[tuple[str, Callable[[], None]]]:
    """The named property checks for a student's ``grid_masks(k, size, n, generator)``."""

    def shape_and_values():
        _call(student, 4, 32, 3)

    def partition():
        _partition(_call(student, 4, 32, 3), "k=4, size=32, n=3")

    def whole_cells():
        _check_cells(student, 8, 32, 3)
        _check_cells(student, 4, (16, 24), 2)

    def non_multiple():
        _check_cells(student, 8, (30, 45), 3)
        _check_cells(student, 5, 11, 4)

    def other_k_and_n():
        _check_cells(student, 1, 6, 3)  # every pixel its own cell
        _check_cells(student, 16, 32, 4)  # 4 cells, one per mask
        _check_cells(student, 4, 16, 1)  # one mask hides everything

    def balanced():
        for k, size, n in ((4, 32, 3), (8, (30, 45), 4), (2, 10, 7)):
            cells = _check_cells(student, k, size, n)
            counts = torch.bincount(cells.flatten(), minlength=n)
            nh, nw = grid_shape(size, k)
            total = nh * nw
            if int(counts.max() - counts.min()) > 1:
                raise CheckFailed(
                    f"With k={k}, size={size}, n={n} there are {nh} x {nw} = {total} cells, so each mask should hide "
                    f"{total // n} or {-(-total // n)} of them; yours hide {counts.tolist()}. Assigning each cell a "
                    "random group independently gives unequal groups: shuffle the cells (a random permutation) and "
                    "cut the permutation into n runs of (almost) equal length.")

    def deterministic():
        with torch.random.fork_rng():  # the caller's global random state is restored afterwards
            torch.manual_seed(1)
            first = _call(student, 4, 32, 3, seed=123)
            torch.manual_seed(2)  # a different global random state must not matter
            second = _call(student, 4, 32, 3, seed=123)
        if not torch.equal(first, second):
            raise CheckFailed("Two calls with generators seeded the same (123) gave different masks. Pass "
                              "generator=generator to every random call (torch.randperm(m, generator=generator), "
                              "torch.rand(..., generator=generator)); without it torch uses the global random state.")

    def random_across_seeds():
        cells = [_check_cells(student, 4, 32, 3, seed=s).flatten() for s in range(5)]  # (64,) group per cell
        together = [c[:, None] == c[None, :] for c in cells]  # (64, 64): which cells share a mask
        for i in range(5):
            for j in range(i + 1, 5):
                if torch.equal(cells[i], cells[j]):
                    raise CheckFailed(f"Generators seeded {i} and {j} gave identical masks: the partition of the cells "
                                      "must be drawn at random from the generator.")
                if torch.equal(together[i], together[j]):
                    raise CheckFailed(f"Generators seeded {i} and {j} hide the same groups of cells, only in a different "
                                      "mask order: the grouping itself must be random. Shuffle the cells (a random "
                                      "permutation), then cut the permutation into n runs.")

    def every_cell_every_mask():
        seen = torch.zeros(3, 4, 4, dtype=torch.bool)  # (n, Nh, Nw)
        for s in range(40):
            cells = _check_cells(student, 8, 32, 3, seed=s)  # (4, 4)
            seen |= cells[None] == torch.arange(3).view(3, 1, 1)
        if not bool(seen.all()):
            i, y, x = (int(v) for v in torch.nonzero(~seen)[0])
            raise CheckFailed(f"With k=8, size=32, n=3 over 40 seeds, cell ({y}, {x}) was never hidden by mask {i}. "
                              "Every cell should be equally likely to land in every mask: shuffle all the cells, "
                              "not only within a fixed pattern.")

    return [
        ("returns n float masks (n, 1, H, W) of 0 and 1", shape_and_values),
        ("every pixel hidden in exactly one mask", partition),
        ("hidden parts are whole k x k cells", whole_cells),
        ("image sizes that k does not divide", non_multiple),
        ("k and n respected (k = 1, one cell per mask, n = 1)", other_k_and_n),
        ("masks hide equal numbers of cells (within one)", balanced),
        ("the same seed gives the same masks", deterministic),
        ("different seeds give different masks", random_across_seeds),
        ("every cell can land in every mask", every_cell_every_mask),
    ]


def check_grid_masks(student: Callable, verbose: bool = True, raise_on_fail: bool = True) -> Feedback:
    """Check a student's ``grid_masks(k, size, n=3, generator=None)`` and print specific feedback."""
    return run_checks("Assignment A5 (complementary grid masks)", grid_mask_checks(student), verbose=verbose,
                      raise_on_fail=raise_on_fail)
