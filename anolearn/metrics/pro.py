r"""AUPRO: the area under the per-region-overlap curve, every defect counting equally.

Bergmann et al., "The MVTec Anomaly Detection Dataset: A Comprehensive Real-World Dataset for
Unsupervised Anomaly Detection" (IJCV 2021) introduced it because pixel AUROC lets one large
defect outweigh many small ones. The recipe, as in the MVTec AD evaluation code:

1. Split each ground-truth mask into connected regions ``C_1 ... C_K`` (8-connectivity: pixels
   touching at a corner belong to the same region), over all test images of a category.
2. For a threshold ``t``, binarise the maps, ``B_t = [map >= t]``, and compute

   .. math::

       \mathrm{FPR}(t) = \frac{|B_t \cap \text{normal pixels}|}{|\text{normal pixels}|},
       \qquad
       \mathrm{PRO}(t) = \frac{1}{K} \sum_{k=1}^{K} \frac{|B_t \cap C_k|}{|C_k|}.

   FPR is global (over all normal pixels of all images, defect-free images included);
   PRO is the mean over *all* regions of the fraction of each region that is detected.
3. Integrate PRO over FPR from 0 to ``fpr_limit`` (0.3 by convention) with the trapezoid rule,
   interpolating the curve at exactly ``fpr_limit``, and divide by ``fpr_limit``:

   .. math::  \mathrm{AUPRO}_{0.3} = \frac{1}{0.3} \int_0^{0.3} \mathrm{PRO}\; d\,\mathrm{FPR}.

Since PRO is at most 1, the normalised area is at most 1 (a perfect map gives exactly 1; an
implementation that returns more has a bug, as an old version of a popular library did). Chance
level is ``fpr_limit / 2`` = 0.15: a random map has PRO = FPR on average.

*Rewards*: finding every defect, small ones as much as large ones, at a low false-alarm rate.
*Misleads*: a one-pixel scratch weighs as much as a missing half of the object; it ignores
false positives beyond ``fpr_limit``; FPR 0.3 is still a lot of false alarms in absolute terms.
Within a region it does not care *which* pixels are found, and a map that spills over a region's
border is only penalised through FPR.

Implementation: every distinct score is a threshold, with no binning. A pixel crossing the
threshold raises FPR by ``1 / #normal`` if it is normal and PRO by ``1 / (|C_k| K)`` if it
belongs to region ``k``, so both curves are cumulative sums of per-pixel weights after one sort
(:func:`~anolearn.metrics.ranking.threshold_sweep`), O(P log P) for P pixels. Tied scores move
together. (The code sums weights ``1 / |C_k|`` and divides by their total, ``K``, at the end,
which keeps a fully covered set of regions at exactly 1 despite rounding.) Ten 256 x 256 maps
take well under a second.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from ._checks import prepare_masks_maps
from .ranking import threshold_sweep

# 8-connectivity: the 3 x 3 neighbourhood, diagonals included.
EIGHT_CONNECTED = np.ones((3, 3), dtype=int)


def label_regions(masks: np.ndarray) -> tuple[np.ndarray, int]:
    """Give every connected defect region of every image its own id.

    Args:
        masks: ``(N, H, W)`` binary.

    Returns:
        ``(regions, K)``: ``regions`` is ``(N, H, W)`` int, 0 for normal pixels and 1..K for the
        ``K`` regions; ids are unique across images (a region never spans two images).
    """
    regions = np.zeros(masks.shape, dtype=np.int64)
    n_regions = 0
    for i, mask in enumerate(masks):
        labelled, n = ndimage.label(mask, structure=EIGHT_CONNECTED)
        # Shift this image's ids past those of the previous images.
        regions[i] = np.where(labelled > 0, labelled + n_regions, 0)
        n_regions += n
    return regions, n_regions


def _pro(masks: np.ndarray, maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    regions, n_regions = label_regions(masks)
    regions, scores = regions.ravel(), maps.ravel()
    is_normal = (regions == 0).astype(np.float64)

    # Per-pixel weight 1 / |C_k|: region k adds exactly 1 once all its pixels are above t.
    region_size = np.bincount(regions, minlength=n_regions + 1).astype(np.float64)  # (K + 1,)
    weight_of_region = np.zeros(n_regions + 1)
    weight_of_region[1:] = 1.0 / region_size[1:]
    region_weight = weight_of_region[regions]  # (P,), 0 for normal pixels

    _, (n_false_positive, regions_found) = threshold_sweep(scores, is_normal, region_weight)
    fpr = n_false_positive / n_false_positive[-1]
    # regions_found[-1] is the sum of all weights, K up to rounding. Dividing by it rather
    # than by K makes PRO exactly 1 wherever every region is covered, and never more than 1
    # (a running sum of non-negative numbers never decreases, even in floating point).
    pro = regions_found / regions_found[-1]
    # Start at (0, 0): a threshold above every score flags nothing. The curve ends at (1, 1).
    return np.concatenate([[0.0], fpr]), np.concatenate([[0.0], pro])


def pro_curve(masks: Any, maps: Any) -> tuple[np.ndarray, np.ndarray]:
    """The per-region-overlap curve: mean region coverage against global false positive rate.

    Args:
        masks: ``(N, H, W)`` or ``(N, 1, H, W)`` in {0, 1}, all test images of a category
            (defect-free images have all-zero masks).
        maps: same shape, float anomaly maps, higher = more anomalous.

    Returns:
        ``(fpr, pro)``, each ``(T + 1,)`` for ``T`` distinct map values: the point ``(0, 0)``
        followed by one point per threshold from the highest value down; ``fpr`` is
        non-decreasing and ends at 1, ``pro`` ends at 1.
    """
    masks, maps = prepare_masks_maps(masks, maps, "AUPRO")
    return _pro(masks, maps)


def _area_to(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Trapezoid area under the polyline ``(x, y)`` from ``x[0]`` to ``x_max``.

    ``x`` is non-decreasing, starts at 0 and ends at 1. If ``x_max`` falls between two points,
    the curve is linearly interpolated there so that the area stops exactly at ``x_max``.
    """
    n_inside = int(np.searchsorted(x, x_max, side="right"))  # points with x <= x_max
    x_in, y_in = x[:n_inside], y[:n_inside]
    if n_inside < x.size and x_in[-1] < x_max:
        # The next point lies beyond x_max: cut the segment between them at x_max.
        x0, x1, y0, y1 = x[n_inside - 1], x[n_inside], y[n_inside - 1], y[n_inside]
        y_at_max = y0 + (y1 - y0) * (x_max - x0) / (x1 - x0)
        x_in = np.append(x_in, x_max)
        y_in = np.append(y_in, y_at_max)
    return float(np.sum(np.diff(x_in) * (y_in[1:] + y_in[:-1]) / 2.0))


def aupro(masks: Any, maps: Any, fpr_limit: float = 0.3) -> float:
    """Normalised area under the PRO curve up to ``fpr_limit`` (MVTec AD reference algorithm).

    Args:
        masks: ``(N, H, W)`` or ``(N, 1, H, W)`` in {0, 1}, all test images of a category,
            defect-free ones included (they add to the normal pixels of the FPR).
        maps: same shape, float anomaly maps at the mask resolution.
        fpr_limit: upper end of the integration, in (0, 1]; 0.3 by convention.

    Returns:
        AUPRO in [0, 1]: the area divided by ``fpr_limit``. 1 means every region is fully
        detected before any normal pixel is flagged.

    Example::

        >>> masks = np.zeros((1, 4, 4)); masks[0, :2, :2] = 1
        >>> aupro(masks, masks)  # a perfect map
        1.0
    """
    if not 0.0 < fpr_limit <= 1.0:
        raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit}; the convention is 0.3.")
    masks, maps = prepare_masks_maps(masks, maps, "AUPRO")
    fpr, pro = _pro(masks, maps)
    return _area_to(fpr, pro, fpr_limit) / fpr_limit
