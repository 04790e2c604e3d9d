"""Rendering one image: a normal one, or a defective one together with its exact mask.

The mask of a defective image is *computed*, not drawn: we render the clean scene, let a
painter change it (:mod:`~anolearn.data.synthetic.defects`), push both scenes through the same
light and the same noise (:func:`~anolearn.data.synthetic.canvas.finish`), and define

    mask = any over channels of (defective != clean)

so the mask is exactly the set of pixels the defect changed -- no more (a pixel the defect
did not touch is bit-identical), no less. :func:`render_pair` exposes the clean image too,
which is what the tests use to check that property.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .canvas import Scene, finish
from .catalog import RENDERERS, category_info
from .defects import DEFECT_PAINTERS


class DefectSample(NamedTuple):
    """A defective image with everything needed to check it.

    Attributes:
        clean: (H, W, 3) uint8, the same scene without the defect.
        image: (H, W, 3) uint8, the defective image.
        mask: (H, W) bool, ``np.any(image != clean, axis=-1)``; never empty.
        part: (H, W) bool, the part's silhouette in the clean scene (all True for textures).
    """

    clean: np.ndarray
    image: np.ndarray
    mask: np.ndarray
    part: np.ndarray


# The smallest image side the renderers draw (thinner parts and defects would vanish below it).
MIN_SIZE = 32


def _check_size(size: int) -> None:
    if int(size) != size or size < MIN_SIZE:
        raise ValueError(f"size must be an integer >= {MIN_SIZE}, got {size!r}")


def render_scene(category: str, size: int, rng: np.random.Generator) -> Scene:
    """The layered clean scene of one normal image (see :class:`~.canvas.Scene`)."""
    category_info(category)
    _check_size(size)
    return RENDERERS[category](int(size), rng)


def _part(scene: Scene) -> np.ndarray:
    return scene.coverage >= 0.5


def render_normal(category: str, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One defect-free image.

    Args:
        category: a name from ``CATEGORIES``.
        size: side in pixels (square image).
        rng: the generator that decides everything random about this image.

    Returns:
        image: (size, size, 3) uint8 RGB.
        part: (size, size) bool, the part's silhouette (coverage >= 0.5); all True for textures.

    Example:
        >>> img, part = render_normal("washer", 128, np.random.default_rng(0))
        >>> img.shape, img.dtype, part.dtype
        ((128, 128, 3), dtype('uint8'), dtype('bool'))
    """
    scene = render_scene(category, size, rng)
    return finish(scene), _part(scene)


def min_defect_pixels(size: int) -> int:
    """The smallest defect we accept: about 0.03 % of the image, at least 6 pixels."""
    return max(6, int(3e-4 * size * size))


def render_pair(category: str, defect: str, size: int, rng: np.random.Generator) -> DefectSample:
    """A clean scene and the same scene with one defect, plus the exact mask.

    A defect that changed fewer than :func:`min_defect_pixels` pixels (e.g. a scratch that
    fell mostly off the part) is redrawn, with further numbers of the same ``rng``.

    Raises:
        ValueError: unknown category, or a defect the category does not have.
    """
    info = category_info(category)
    if defect not in info.defects:
        raise ValueError(f"Category {category!r} has no defect {defect!r}; "
                         f"its defects are {', '.join(info.defects)}")
    scene = render_scene(category, size, rng)
    clean = finish(scene)
    painter = DEFECT_PAINTERS[defect]
    for _ in range(50):
        image = finish(painter(scene, rng))
        mask = np.any(image != clean, axis=-1)  # (H, W) exactly the changed pixels
        if mask.sum() >= min_defect_pixels(size):
            return DefectSample(clean, image, mask, _part(scene))
    raise RuntimeError(f"could not paint a visible {defect!r} on {category!r} at {size}px")


def render_defective(category: str, defect: str, size: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One defective image and its exact ground-truth mask.

    Args:
        category: a name from ``CATEGORIES``; defect: one of ``CATEGORIES[category].defects``.
        size: side in pixels; rng: the generator for this image.

    Returns:
        image: (size, size, 3) uint8 RGB.
        mask: (size, size) bool, True where the defect changed the image; never empty.

    Example:
        >>> img, mask = render_defective("brick", "crack", 128, np.random.default_rng(0))
        >>> bool(mask.any())
        True
    """
    sample = render_pair(category, defect, size, rng)
    return sample.image, sample.mask
