r"""Ranking metrics: the ROC curve, AUROC, the precision-recall curve and average precision.

All four only look at the *order* of the scores, never at their values, so they need no
threshold: they summarise every threshold at once.

**ROC and AUROC.** Call a sample positive (anomalous) when its score is at least a threshold
``t``. Sweeping ``t`` from high to low traces the receiver operating characteristic

.. math::

    \mathrm{FPR}(t) = \frac{\#\{\text{normal},\ s \ge t\}}{\#\text{normal}}, \qquad
    \mathrm{TPR}(t) = \frac{\#\{\text{anomalous},\ s \ge t\}}{\#\text{anomalous}},

from (0, 0) to (1, 1). AUROC is the area under it (trapezoid rule). It equals the probability
that a random anomalous sample scores higher than a random normal one, ties counting one half:

.. math::  \mathrm{AUROC} = P(s_+ > s_-) + \tfrac12 P(s_+ = s_-).

The one half is exactly what the trapezoid rule gives: tied scores move FPR and TPR in the same
step, so the curve takes a diagonal through that block instead of a staircase. 0.5 is chance,
1 is a perfect ranking.

*Rewards*: a ranking in which anomalies come first. *Misleads*: it is blind to class
imbalance. At pixel level the normal pixels outnumber the anomalous ones 100 : 1 or more, and
most of them are easy (plain background), so FPR stays tiny even when the highest-scoring
pixels are mostly false alarms; pixel AUROC of 0.97 can go with a map that is useless to a
human inspector. It also weights pixels, not defects: one large defect dominates many small ones.

**Precision-recall and AP.** With ``TP(t)`` and ``FP(t)`` the counts above the threshold,
precision ``P = TP / (TP + FP)`` and recall ``R = TP / #anomalous``. Average precision is the
step-wise sum over the distinct thresholds ``t_1 > t_2 > ...``

.. math::  \mathrm{AP} = \sum_n (R_n - R_{n-1})\, P_n, \qquad R_0 = 0,

the definition of scikit-learn's ``average_precision_score`` (no interpolation of the curve:
linear interpolation of a PR curve is too optimistic).

*Rewards*: anomalies at the very top of the ranking, with few false alarms among them; it
does not dilute false positives among the many easy normals, which makes it the stricter pixel
metric. *Misleads*: its chance level is the anomaly rate, so it cannot be compared across
categories or test sets with different defect sizes or different numbers of normal images.

Implementation: one sort and cumulative sums (:func:`threshold_sweep`), O(P log P) for P
samples, with every distinct score as a threshold and tied scores moved together. The results
agree with scikit-learn to ~1e-12 (``tests/test_metrics.py``); :func:`roc_curve` keeps every
point, like scikit-learn's ``roc_curve(..., drop_intermediate=False)``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import prepare_labels_scores, prepare_masks_maps


def threshold_sweep(scores: np.ndarray,
                    *weights: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """For every distinct score ``t`` (high to low), sum each weight over samples with score >= t.

    This is the engine of every curve in this package. ROC uses the weights "is anomalous" and
    "is normal"; the PRO curve (:mod:`anolearn.metrics.pro`) uses per-pixel region weights.

    Args:
        scores: ``(P,)`` float, finite.
        *weights: any number of ``(P,)`` arrays, one value per sample.

    Returns:
        ``(thresholds, sums)``: ``thresholds`` is ``(T,)``, the distinct scores in decreasing
        order; ``sums[k]`` is ``(T,)`` with
        ``sums[k][i] = weights[k][scores >= thresholds[i]].sum()``.

    Example::

        >>> t, (n_pos,) = threshold_sweep(np.array([0.1, 0.5, 0.5]), np.ones(3))
        >>> t.tolist(), n_pos.tolist()
        ([0.5, 0.1], [2.0, 3.0])
    """
    order = np.argsort(-scores, kind="stable")  # highest score first
    sorted_scores = scores[order]
    # A threshold must move all tied samples at once, so we read the running sums only at the
    # last sample of each group of equal scores.
    last_of_group = np.append(np.flatnonzero(np.diff(sorted_scores)), sorted_scores.size - 1)
    thresholds = sorted_scores[last_of_group]
    sums = [np.cumsum(w[order])[last_of_group] for w in weights]
    return thresholds, sums


def _counts(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True and false positive counts at every distinct threshold (decreasing)."""
    thresholds, (tp, fp) = threshold_sweep(scores, labels, 1.0 - labels)
    return tp, fp, thresholds


def _roc(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tp, fp, thresholds = _counts(labels, scores)
    # Start at (0, 0): a threshold above every score flags nothing.
    fpr = np.concatenate([[0.0], fp / fp[-1]])
    tpr = np.concatenate([[0.0], tp / tp[-1]])
    return fpr, tpr, np.concatenate([[np.inf], thresholds])


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    """Area under the polyline through ``(x, y)`` (``x`` non-decreasing)."""
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def _auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    fpr, tpr, _ = _roc(labels, scores)
    return _trapezoid(tpr, fpr)


def _average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    tp, fp, _ = _counts(labels, scores)
    precision = tp / (tp + fp)  # tp + fp >= 1: every threshold is the score of some sample
    recall = tp / tp[-1]
    recall_step = np.diff(np.concatenate([[0.0], recall]))  # R_n - R_{n-1}
    return float(np.sum(recall_step * precision))


def roc_curve(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Receiver operating characteristic, one point per distinct score.

    Args:
        labels: ``(N,)`` in {0, 1}, 1 = anomalous; both classes present.
        scores: ``(N,)`` float, higher = more anomalous.

    Returns:
        ``(fpr, tpr, thresholds)``, each ``(T + 1,)`` for ``T`` distinct scores. The first point
        is ``(0, 0)`` with threshold ``+inf``; thresholds then decrease and a sample counts as
        anomalous when ``score >= threshold``. The last point is ``(1, 1)``.

    Example::

        >>> fpr, tpr, t = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        >>> fpr.tolist(), tpr.tolist()
        ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    labels, scores = prepare_labels_scores(labels, scores, "ROC")
    return _roc(labels, scores)


def precision_recall_curve(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision and recall at every distinct score, in scikit-learn's order.

    Args:
        labels: ``(N,)`` in {0, 1}, 1 = anomalous; both classes present.
        scores: ``(N,)`` float, higher = more anomalous.

    Returns:
        ``(precision, recall, thresholds)``: ``thresholds`` is ``(T,)``, the distinct scores in
        *increasing* order; ``precision`` and ``recall`` are ``(T + 1,)``, entry ``i`` for
        threshold ``i`` and a final point ``(precision 1, recall 0)`` for "flag nothing", the
        same layout as ``sklearn.metrics.precision_recall_curve``.
    """
    labels, scores = prepare_labels_scores(labels, scores, "The precision-recall curve")
    tp, fp, thresholds = _counts(labels, scores)
    precision = tp / (tp + fp)
    recall = tp / tp[-1]
    return (np.concatenate([precision[::-1], [1.0]]),
            np.concatenate([recall[::-1], [0.0]]),
            thresholds[::-1].copy())


def auroc(labels: Any, scores: Any) -> float:
    """Area under the ROC curve (trapezoid rule) for 1-D labels and scores.

    Args:
        labels: ``(N,)`` in {0, 1}, 1 = anomalous; both classes present.
        scores: ``(N,)`` float, higher = more anomalous.

    Returns:
        AUROC in [0, 1]; 0.5 is chance.
    """
    return _auroc(*prepare_labels_scores(labels, scores, "AUROC"))


def average_precision(labels: Any, scores: Any) -> float:
    """Average precision ``sum_n (R_n - R_{n-1}) P_n`` for 1-D labels and scores.

    Args:
        labels: ``(N,)`` in {0, 1}, 1 = anomalous; both classes present.
        scores: ``(N,)`` float, higher = more anomalous.

    Returns:
        AP in (0, 1]; chance level is the fraction of anomalous samples.
    """
    return _average_precision(*prepare_labels_scores(labels, scores, "Average precision"))


def image_auroc(labels: Any, scores: Any) -> float:
    """Image-level AUROC: does the image score separate defective from defect-free images?

    Args:
        labels: ``(N,)`` in {0, 1}, 1 = the test image contains a defect.
        scores: ``(N,)`` float, the image anomaly score (often the maximum of the map).

    Returns:
        AUROC in [0, 1]. It ignores *where* the defect is: an image flagged for the wrong
        reason counts as a hit.

    Example::

        >>> image_auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        0.75
    """
    return _auroc(*prepare_labels_scores(labels, scores, "AUROC"))


def pixel_auroc(masks: Any, maps: Any) -> float:
    """Pixel-level AUROC over all test pixels of a category, normal images included.

    Args:
        masks: ``(N, H, W)`` or ``(N, 1, H, W)`` in {0, 1}, the ground-truth defect masks
            (all zero for defect-free images).
        maps: same shape, float anomaly maps at the mask resolution.

    Returns:
        AUROC in [0, 1] with every pixel as one sample. Inflated by the many easy normal
        pixels; read it next to :func:`pixel_ap` and :func:`~anolearn.metrics.aupro`.
    """
    masks, maps = prepare_masks_maps(masks, maps, "Pixel AUROC")
    return _auroc(masks.ravel(), maps.ravel())


def pixel_ap(masks: Any, maps: Any) -> float:
    """Pixel-level average precision over all test pixels of a category, normal images included.

    Args:
        masks: ``(N, H, W)`` or ``(N, 1, H, W)`` in {0, 1}.
        maps: same shape, float anomaly maps.

    Returns:
        AP in (0, 1]. Its chance level is the fraction of anomalous pixels, so it moves when
        normal images are added to or removed from the test set.
    """
    masks, maps = prepare_masks_maps(masks, maps, "Pixel AP")
    return _average_precision(masks.ravel(), maps.ravel())
