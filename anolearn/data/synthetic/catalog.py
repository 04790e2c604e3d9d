"""The categories of the synthetic dataset: what each one is and which defects it has."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .canvas import Scene
from .objects import OBJECT_RENDERERS
from .textures import TEXTURE_RENDERERS


@dataclass(frozen=True)
class CategoryInfo:
    """One synthetic category.

    Attributes:
        name: folder name, e.g. ``"washer"``.
        kind: ``"texture"`` (no position: the defect can be anywhere) or ``"object"`` (a part
            on a background: the defect lies on the part).
        defects: the defect types, i.e. the folder names under ``test/`` besides ``good``.
        description: one line for tables and figure captions.
    """

    name: str
    kind: str
    defects: tuple[str, ...]
    description: str


_TEXTURE_DEFECTS = ("scratch", "crack", "hole", "stain", "contamination")

CATEGORIES: dict[str, CategoryInfo] = {
    "brick": CategoryInfo("brick", "texture", _TEXTURE_DEFECTS,
                          "clay brick wall, cut from scikit-image's brick photograph"),
    "gravel": CategoryInfo("gravel", "texture", ("scratch", "hole", "stain", "contamination"),
                           "crushed stone, cut from scikit-image's gravel photograph"),
    "weave": CategoryInfo("weave", "texture", _TEXTURE_DEFECTS,
                          "procedural plain-weave technical fabric"),
    "wood": CategoryInfo("wood", "texture", _TEXTURE_DEFECTS,
                         "procedural planed wood: growth rings and pores"),
    "washer": CategoryInfo("washer", "object",
                           ("scratch", "dent", "stain", "contamination", "missing"),
                           "brushed steel washer on a rubber mat"),
    "capsule": CategoryInfo("capsule", "object",
                            ("crack", "dent", "stain", "contamination", "missing"),
                            "two-colour gelatine capsule on a tray"),
    "hexnut": CategoryInfo("hexnut", "object",
                           ("scratch", "crack", "stain", "contamination", "missing"),
                           "brass hex nut on a slate plate"),
}

TEXTURES: tuple[str, ...] = tuple(n for n, c in CATEGORIES.items() if c.kind == "texture")
OBJECTS: tuple[str, ...] = tuple(n for n, c in CATEGORIES.items() if c.kind == "object")

RENDERERS: dict[str, Callable[[int, np.random.Generator], Scene]] = {
    **TEXTURE_RENDERERS, **OBJECT_RENDERERS}


def category_info(name: str) -> CategoryInfo:
    """The :class:`CategoryInfo` of ``name``; a clear error listing the valid names otherwise."""
    try:
        return CATEGORIES[name]
    except KeyError:
        raise ValueError(f"Unknown synthetic category {name!r}; "
                         f"choose from {', '.join(CATEGORIES)}") from None
