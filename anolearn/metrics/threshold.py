r"""Thresholded pixel metrics: F1-max and IoU.

An inspector eventually needs a yes/no mask, not a ranking, so papers also report how good the
binarised map can be. With ``B_t = [map >= t]`` and ground truth ``G`` over the whole test set,

.. math::

    F_1(t) = \frac{2\,|B_t \cap G|}{|B_t| + |G|}, \qquad
    \mathrm{IoU}(t) = \frac{|B_t \cap G|}{|B_t \cup G|}.

**F1-max** is ``max_t F_1(t)`` over every distinct map value, and "IoU at F1" is the IoU at the
threshold that achieves it. For one fixed binary prediction the two are tied together,
``IoU = F1 / (2 - F1)``, so they rank methods the same way.

*Rewards*: a map whose defects can be cut out cleanly by one global threshold. *Misleads*:
**both are optimistic**. The threshold is chosen by looking at the test labels, which a real
deployment cannot do: there the threshold must be fixed on normal (training or validation)
data alone, and the F1 it achieves on the test set is lower. Report them, if at all, as an
upper bound, and never as the operating point of a deployed detector. Like pixel AUROC they
count pixels, so a large defect dominates small ones.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import prepare_masks_maps
from .ranking import _counts


def f1_max(masks: Any, maps: Any) -> tuple[float, float]:
    """Best pixel-level F1 over all thresholds (an optimistic upper bound: uses the test labels).

    The threshold is picked on the very labels it is scored against, so the value is what an
    oracle could reach, not what a deployed detector with a threshold fixed on normal data
    would reach.

    Args:
        masks: ``(N, H, W)`` or ``(N, 1, H, W)`` in {0, 1}, all test images of a category.
        maps: same shape, float anomaly maps.

    Returns:
        ``(f1, threshold)``: the maximal F1 in [0, 1] and the map value that achieves it
        (pixels with ``map >= threshold`` are flagged). Among equal F1 values the highest
        threshold is returned.

    Example::

        >>> m = np.array([[[0, 1], [1, 0]]])
        >>> f1_max(m, [[[0.1, 0.9], [0.8, 0.2]]])
        (1.0, 0.8)
    """
    masks, maps = prepare_masks_maps(masks, maps, "F1-max")
    tp, fp, thresholds = _counts(masks.ravel(), maps.ravel())
    n_anomalous = tp[-1]
    # F1 = 2 TP / (|flagged| + |G|) with |flagged| = TP + FP; never 0 / 0 since |G| >= 1.
    f1 = 2.0 * tp / (tp + fp + n_anomalous)
    best = int(np.argmax(f1))  # first maximum = highest threshold
    return float(f1[best]), float(thresholds[best])


def iou_at(masks: Any, maps: Any, threshold: float) -> float:
    """IoU of the binarised maps ``map >= threshold`` with the ground truth, over the whole set.

    Intersection and union are summed over all images before dividing (not averaged per
    image), so defect-free images contribute only their false positives. When ``threshold``
    comes from :func:`f1_max` the result is optimistic for the same reason: it was chosen on
    the test labels.

    Args:
        masks: ``(N, H, W)`` or ``(N, 1, H, W)`` in {0, 1}, with at least one anomalous pixel.
        maps: same shape, float anomaly maps.
        threshold: pixels with ``map >= threshold`` count as predicted anomalous.

    Returns:
        IoU in [0, 1].
    """
    masks, maps = prepare_masks_maps(masks, maps, "IoU")
    predicted = maps >= threshold
    truth = masks > 0
    intersection = np.logical_and(predicted, truth).sum()
    union = np.logical_or(predicted, truth).sum()  # >= 1: the masks hold an anomalous pixel
    return float(intersection / union)
