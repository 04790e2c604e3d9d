"""Reading images and masks from disk, with errors that name the file.

Images become float tensors ``(3, H, W)`` in [0, 1] (grayscale files are repeated to 3
channels, so MVTec's grid, screw and zipper look like every other category); masks become
``(1, H, W)`` float tensors with values exactly 0 or 1 (any non-zero pixel is anomalous).
Resizing uses area/bilinear interpolation for images and *nearest* for masks, so a mask
stays binary and keeps marking the same pixels as its image.

Images smaller than :data:`MIN_IMAGE_SIDE` pixels on a side are refused: every method resizes
its images to the working resolution (128 or 256 px), and upscaling a few pixels adds no
detail to find a defect in, so a thumbnail (or a 1 x 1 placeholder) would train and score
without a word while meaning nothing.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

# Sensible defaults for a teaching library: one thread per OpenCV call plays well
# with DataLoader workers and pytest-xdist on a 2-core machine.
cv2.setNumThreads(1)


# The smallest image side accepted, in pixels (CIFAR-sized 32 x 32 images are fine).
MIN_IMAGE_SIDE = 16


class ImageReadError(RuntimeError):
    """An image or mask file could not be read (missing, empty, corrupt or too small)."""


def _read(path: Path, flags: int) -> np.ndarray:
    # cv2.imread returns None instead of raising on a corrupt file; np.fromfile +
    # imdecode also handles non-ASCII paths on every platform.
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"Image file not found: {path}")
    data = np.fromfile(str(path), dtype=np.uint8)
    array = cv2.imdecode(data, flags) if data.size else None
    if array is None:
        raise ImageReadError(
            f"Could not decode {path} ({data.size} bytes): the file is empty, truncated or not an "
            "image. Replace or delete it (or re-run the data script that wrote it)."
        )
    return array


def read_image(path: str | Path, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """Read an RGB or grayscale image as a ``(3, H, W)`` float tensor in [0, 1].

    Args:
        path: image file (PNG, JPEG, BMP, ...).
        size: optional output size, an int for square images or ``(H, W)``.

    Returns:
        ``(3, H, W)`` float32 tensor, RGB channel order.

    Raises:
        ImageReadError: naming the file, if it is missing, cannot be decoded, or is smaller than
            :data:`MIN_IMAGE_SIDE` pixels on a side.
    """
    array = _read(Path(path), cv2.IMREAD_UNCHANGED)
    if min(array.shape[:2]) < MIN_IMAGE_SIDE:
        raise ImageReadError(
            f"{path} is {array.shape[1]}x{array.shape[0]} px: images must be at least {MIN_IMAGE_SIDE}x"
            f"{MIN_IMAGE_SIDE} px (they are resized to the working resolution, and upscaling adds no detail). "
            "Replace or remove it."
        )
    if array.ndim == 2:  # grayscale (MVTec grid/screw/zipper): replicate to RGB
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.shape[2] == 4:  # drop alpha
        array = cv2.cvtColor(array, cv2.COLOR_BGRA2RGB)
    else:
        array = cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
    scale = 65535.0 if array.dtype == np.uint16 else 255.0
    if size is not None:
        h, w = (size, size) if isinstance(size, int) else size
        if array.shape[:2] != (h, w):
            shrinking = h < array.shape[0]
            interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
            array = cv2.resize(array, (w, h), interpolation=interp)
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float() / scale


def read_mask(path: str | Path, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """Read a ground-truth mask as a ``(1, H, W)`` float tensor with values in {0, 1}.

    Any non-zero pixel counts as anomalous (MVTec masks are 0/255; VisA's raw masks use
    other values). Resizing uses nearest-neighbour interpolation so the mask stays binary.

    Raises:
        ImageReadError: naming the file, if it is missing or cannot be decoded.
    """
    array = _read(Path(path), cv2.IMREAD_GRAYSCALE)
    if size is not None:
        h, w = (size, size) if isinstance(size, int) else size
        if array.shape != (h, w):
            array = cv2.resize(array, (w, h), interpolation=cv2.INTER_NEAREST)
    return torch.from_numpy((array > 0).astype(np.float32))[None]


def image_size_of(path: str | Path) -> tuple[int, int]:
    """``(H, W)`` of an image file without resizing it (decodes the file)."""
    array = _read(Path(path), cv2.IMREAD_UNCHANGED)
    return array.shape[0], array.shape[1]
