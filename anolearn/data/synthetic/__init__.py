"""A built-in synthetic industrial anomaly dataset, written in the MVTec AD layout.

Every chapter of the book runs on it by default: nothing has to be downloaded. Seven
categories -- four textures (``brick`` and ``gravel`` cut from scikit-image's real photographs,
``weave`` and ``wood`` procedural) and three objects (``washer``, ``capsule``, ``hexnut``, analytic
parts in random poses) -- each with four or five defect types whose ground-truth masks are
exact: the set of pixels the defect changed.

The defects are drawn procedurally (strokes, random-walk cracks, shaded pits, tints,
particles, chunks removed from the silhouette) and deliberately share nothing with the
anomaly forging methods the book teaches (see :mod:`.defects`).

Difficulty is calibrated so that a raw-pixel baseline (distance to the mean training image)
fails -- pose, phase and lighting vary too much -- while a pretrained-feature nearest-neighbour
baseline works; see the chapter on the dataset for the numbers.

Example::

    >>> import numpy as np
    >>> from anolearn.data.synthetic import CATEGORIES, render_defective
    >>> img, mask = render_defective("capsule", "missing", 128, np.random.default_rng(0))
    >>> img.shape, mask.shape
    ((128, 128, 3), (128, 128))

Write a whole profile to disk with :func:`ensure_synthetic` (or ``python
data_scripts/make_synthetic.py``).
"""
from __future__ import annotations

from .catalog import CATEGORIES, OBJECTS, TEXTURES, CategoryInfo
from .render import DefectSample, render_defective, render_normal, render_pair
from .silhouettes import silhouettes
from .writer import FORMAT_VERSION, default_root, ensure_synthetic, image_rng, write_category

__all__ = [
    "CATEGORIES", "TEXTURES", "OBJECTS", "CategoryInfo",
    "render_normal", "render_defective", "render_pair", "DefectSample", "silhouettes",
    "write_category", "ensure_synthetic", "default_root", "image_rng", "FORMAT_VERSION",
]
