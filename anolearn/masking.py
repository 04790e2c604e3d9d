"""Complementary random grid masks: the inputs of inpainting-based detection (RIAD, SSM).

RIAD (Zavrtanik, Kristan and Skocaj, Pattern Recognition 2021) hides parts of an image and
asks a network to paint them back. To predict *every* pixel while it is hidden, the image is
cut into a grid of ``k x k``-pixel cells and the cells are split at random into ``n`` groups
of (almost) equal size. Mask ``M_i`` hides group ``i`` and shows everything else:

    M_i(p) = 0 if the cell of pixel p is in group i, else 1          (1 = visible, 0 = hidden)

so the hidden sets of ``M_1 .. M_n`` partition the image: each pixel is hidden in exactly one
mask, ``sum_i (1 - M_i) = 1``. The network sees ``x * M_i`` and returns ``y_i``; the
*composed* reconstruction takes every pixel from the pass in which it was hidden,

    x_hat = sum_i y_i * (1 - M_i).

SSM (Huang et al., IEEE TMM 2023) uses the same masks and, at test time, *uncovers* blocks it
is confident are normal (sets them visible in every mask); :func:`compose` then copies those
pixels from the input (``image=`` argument), so they contribute zero error.

Choices we made (the papers' code does the same up to these points):

* **Any image size.** The grid has ``ceil(H / k) x ceil(W / k)`` cells; the cells of the last
  row and column are cropped to the image, so a 100 x 100 image with ``k = 8`` has 13 x 13
  cells, the last ones 4 pixels wide. The official code uses ``size // k`` cells and only
  works when ``k`` divides a square size.
* **Balanced groups.** A random permutation of the cells is cut into ``n`` consecutive runs
  whose sizes differ by at most one cell (the code pads the permutation with dummy cells so
  that the last group is up to ``n - 1`` cells smaller).
* **Batched, on the device.** One call draws independent partitions for ``B`` images from a
  ``torch.Generator`` (the code draws one partition per batch with NumPy).
"""
from __future__ import annotations

import math

import torch


def _pair(size) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if h < 1 or w < 1:
        raise ValueError(f"Image size must be positive, got {size}.")
    return h, w


def grid_shape(size: int | tuple[int, int], k: int) -> tuple[int, int]:
    """Number of cells ``(ceil(H / k), ceil(W / k))`` of a grid of ``k x k`` cells over an image."""
    if int(k) != k or k < 1:
        raise ValueError(f"The cell size k must be a positive integer, got {k}.")
    h, w = _pair(size)
    return math.ceil(h / k), math.ceil(w / k)


def random_cell_groups(grid: tuple[int, int], n: int = 3, batch: int = 1, generator: torch.Generator | None = None,
                       device: torch.device | str | None = None) -> torch.Tensor:
    """Assign every grid cell to one of ``n`` groups at random, groups of (almost) equal size.

    Args:
        grid: ``(Nh, Nw)`` cells.
        n: number of groups (= masks).
        batch: number of independent partitions ``B``.
        generator: source of randomness (its device is where the numbers are drawn).
        device: device of the result (default: the generator's device, else the CPU).

    Returns:
        ``(B, Nh, Nw)`` long tensor with values in ``[0, n)``; every group has
        ``floor(Nh Nw / n)`` or ``ceil(Nh Nw / n)`` cells.
    """
    if n < 1:
        raise ValueError(f"Need at least one mask, got n = {n}.")
    nh, nw = grid
    cells = nh * nw
    draw_on = generator.device if generator is not None else (device or "cpu")
    keys = torch.rand(batch, cells, generator=generator, device=draw_on)  # (B, cells)
    rank = keys.argsort(1).argsort(1)  # position of each cell in a random permutation
    groups = rank * n // cells  # consecutive runs of the permutation -> groups 0..n-1
    return groups.view(batch, nh, nw).to(device or draw_on)


def cells_to_pixels(cells: torch.Tensor, k: int, size: int | tuple[int, int]) -> torch.Tensor:
    """Blow a per-cell tensor ``(..., Nh, Nw)`` up to pixels ``(..., H, W)`` (each cell -> ``k x k``, cropped)."""
    h, w = _pair(size)
    return cells.repeat_interleave(k, -2).repeat_interleave(k, -1)[..., :h, :w]


def grid_masks(k: int, size: int | tuple[int, int], n: int = 3, batch: int = 1,
               generator: torch.Generator | None = None, device: torch.device | str | None = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``n`` complementary random grid masks per image.

    Args:
        k: cell side in pixels.
        size: image size, ``int`` (square) or ``(H, W)``.
        n: number of masks; their hidden cells partition the grid.
        batch: number of images ``B``, each with its own random partition.
        generator: a ``torch.Generator`` for reproducible masks.
        device, dtype: of the result (default device: the generator's).

    Returns:
        ``(n, B, 1, H, W)`` tensor, 1 = visible, 0 = hidden; ``(1 - masks).sum(0) == 1`` everywhere.

    Example::

        >>> g = torch.Generator().manual_seed(0)
        >>> m = grid_masks(4, 32, n=3, batch=2, generator=g)
        >>> m.shape, bool(((1 - m).sum(0) == 1).all())
        (torch.Size([3, 2, 1, 32, 32]), True)
    """
    groups = random_cell_groups(grid_shape(size, k), n, batch, generator, device)  # (B, Nh, Nw)
    pixels = cells_to_pixels(groups, k, size)  # (B, H, W)
    index = torch.arange(n, device=pixels.device).view(n, 1, 1, 1)
    return (pixels[None] != index).to(dtype)[:, :, None]  # (n, B, 1, H, W)


def uncovered(masks: torch.Tensor) -> torch.Tensor:
    """Pixels visible in every mask (``prod_i M_i``): ``(n, B, 1, H, W)`` -> ``(B, 1, H, W)``.

    For a fresh set of complementary masks this is all zeros; SSM's refinement makes blocks
    visible in every mask to stop scoring them.
    """
    return masks.prod(0)


def compose(outputs: torch.Tensor, masks: torch.Tensor, image: torch.Tensor | None = None) -> torch.Tensor:
    """Composed reconstruction ``x_hat = sum_i y_i (1 - M_i)`` (+ ``x prod_i M_i`` if ``image`` is given).

    Args:
        outputs: ``(n, B, C, H, W)`` the network's output for each masked input.
        masks: ``(n, B, 1, H, W)`` (or ``(n, 1, 1, H, W)``, broadcast), 1 = visible.
        image: optional ``(B, C, H, W)`` input; pixels that no mask hides are copied from it
            (without it they are 0, as in RIAD, where every pixel is hidden once).

    Returns:
        ``(B, C, H, W)``.
    """
    if outputs.dim() != 5 or masks.dim() != 5 or outputs.shape[0] != masks.shape[0]:
        raise ValueError(f"compose needs outputs (n, B, C, H, W) and masks (n, B, 1, H, W); got "
                         f"{tuple(outputs.shape)} and {tuple(masks.shape)}.")
    x_hat = (outputs * (1 - masks)).sum(0)  # (B, C, H, W)
    if image is not None:
        x_hat = x_hat + image * uncovered(masks)
    return x_hat


__all__ = ["cells_to_pixels", "compose", "grid_masks", "grid_shape", "random_cell_groups", "uncovered"]
