"""CutSwap: CutPaste's protocol with subtler negatives -- two similar patches swapped.

Qin, Gu, Yu, Zhang, arXiv 2311.18332, 2023; Signal, Image and Video Processing 2024. Only the
abstract is available: negatives are made by swapping two patches centred on a pair of pixels
from the most salient cluster of a LayerCAM saliency map (see :mod:`anolearn.forge.cutswap`), so
that the two patches look alike and the forgery is subtle. The abstract does not say how the
network is trained or how images are scored. **This module is a reconstruction**: the CutPaste
protocol (:mod:`anolearn.methods.cutpaste`: a classifier of normal vs forged images, then a
Gaussian density of the normal embeddings) with CutSwap negatives. ``forger="cutswap+cutpaste"``
trains a 3-way classifier with both kinds of negatives.
"""
from __future__ import annotations

from .base import register
from .cutpaste import CutPasteGDE


@register("cutswap")
class CutSwapGDE(CutPasteGDE):
    """CutSwap, reconstructed: :class:`~anolearn.methods.cutpaste.CutPasteGDE` trained on CutSwap
    negatives (``forger="cutswap"``; all settings as CutPaste's)."""

    default_forger = "cutswap"


__all__ = ["CutSwapGDE"]
