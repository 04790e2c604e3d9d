"""Tests for anolearn.metrics against oracles.

* AUROC, AP, ROC and PR curves: scikit-learn.
* AUPRO: a slow reference written here (one threshold at a time, regions labelled by
  scikit-image rather than scipy), plus hand-built cases whose value is known exactly.
* F1-max: scikit-learn's precision-recall curve.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.measure import label as skimage_label
from sklearn import metrics as skm

from anolearn.metrics import (
    aupro,
    auroc,
    average_precision,
    compute_metrics,
    f1_max,
    image_auroc,
    iou_at,
    metrics_table,
    pixel_ap,
    pixel_auroc,
    precision_recall_curve,
    pro_curve,
    roc_curve,
    to_markdown,
)
from anolearn.metrics.pro import label_regions

SEEDS = [0, 1, 2, 3, 4]


# ----------------------------------------------------------------------------------------------
# helpers


def random_labels_scores(seed: int, n: int = 200, decimals: int | None = None):
    """Labels with ~30 % anomalies and scores that separate them somewhat."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(int)
    labels[:2] = [0, 1]  # both classes always present
    scores = rng.normal(size=n) + 1.0 * labels
    if decimals is not None:
        scores = np.round(scores, decimals)  # many ties
    return labels, scores


def blob_case(seed: int, n_images: int = 3, size: int = 24, decimals: int | None = None):
    """Small images with a few blob defects (some images defect-free) and noisy maps."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n_images, size, size), dtype=np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n_images - 1):  # the last image stays defect-free
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.integers(2, size - 2, size=2)
            ry, rx = rng.uniform(0.8, 4.0, size=2)
            masks[i] |= (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1).astype(np.uint8)
    smooth = ndimage.gaussian_filter(masks.astype(float), sigma=(0, 1.5, 1.5))
    maps = smooth + 0.3 * rng.normal(size=masks.shape)
    if decimals is not None:
        maps = np.round(maps, decimals)
    return masks, maps


def reference_pro_curve(masks: np.ndarray, maps: np.ndarray):
    """Slow PRO curve: binarise at every distinct threshold, one at a time."""
    region_masks = []
    for mask_i, mask in enumerate(masks):
        labelled = skimage_label(mask, connectivity=2)  # 8-connectivity, a different labeller
        for region_id in range(1, labelled.max() + 1):
            region = np.zeros(masks.shape, dtype=bool)
            region[mask_i] = labelled == region_id
            region_masks.append(region)
    normal = masks == 0
    fprs, pros = [0.0], [0.0]
    for t in np.unique(maps)[::-1]:
        flagged = maps >= t
        fprs.append(flagged[normal].sum() / normal.sum())
        pros.append(np.mean([flagged[r].sum() / r.sum() for r in region_masks]))
    return np.array(fprs), np.array(pros)


def reference_aupro(masks: np.ndarray, maps: np.ndarray, fpr_limit: float = 0.3) -> float:
    """Walk the segments of the slow curve, clipping the one that crosses ``fpr_limit``."""
    fprs, pros = reference_pro_curve(masks, maps)
    area = 0.0
    for x0, x1, y0, y1 in zip(fprs[:-1], fprs[1:], pros[:-1], pros[1:]):
        if x0 >= fpr_limit:
            break
        if x1 > fpr_limit:  # cut the segment at the limit, interpolating linearly
            y1 = y0 + (y1 - y0) * (fpr_limit - x0) / (x1 - x0)
            x1 = fpr_limit
        area += (x1 - x0) * (y0 + y1) / 2
    return area / fpr_limit


# ----------------------------------------------------------------------------------------------
# ranking metrics vs scikit-learn


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("decimals", [None, 1])
def test_auroc_and_ap_match_sklearn(seed, decimals):
    labels, scores = random_labels_scores(seed, decimals=decimals)
    expected_auroc = skm.roc_auc_score(labels, scores)
    assert image_auroc(labels, scores) == pytest.approx(expected_auroc, abs=1e-10)
    assert auroc(labels, scores) == pytest.approx(expected_auroc, abs=1e-10)
    assert average_precision(labels, scores) == pytest.approx(
        skm.average_precision_score(labels, scores), abs=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("decimals", [None, 1])
def test_roc_and_pr_curves_match_sklearn(seed, decimals):
    labels, scores = random_labels_scores(seed, decimals=decimals)
    fpr, tpr, thresholds = roc_curve(labels, scores)
    fpr_sk, tpr_sk, thresholds_sk = skm.roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, fpr_sk, atol=1e-12)
    np.testing.assert_allclose(tpr, tpr_sk, atol=1e-12)
    np.testing.assert_array_equal(thresholds, thresholds_sk)

    precision, recall, thresholds = precision_recall_curve(labels, scores)
    precision_sk, recall_sk, thresholds_sk = skm.precision_recall_curve(labels, scores)
    np.testing.assert_allclose(precision, precision_sk, atol=1e-12)
    np.testing.assert_allclose(recall, recall_sk, atol=1e-12)
    np.testing.assert_array_equal(thresholds, thresholds_sk)


@pytest.mark.parametrize("seed", SEEDS[:3])
@pytest.mark.parametrize("decimals", [None, 1])
def test_pixel_auroc_and_ap_match_sklearn(seed, decimals):
    masks, maps = blob_case(seed, decimals=decimals)
    y, s = masks.ravel(), maps.ravel()
    assert pixel_auroc(masks, maps) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-10)
    assert pixel_ap(masks, maps) == pytest.approx(skm.average_precision_score(y, s), abs=1e-10)


def test_auroc_counts_ties_as_one_half():
    # One anomalous and one normal sample with equal scores: AUROC is exactly 0.5.
    assert image_auroc([0, 1], [0.3, 0.3]) == 0.5
    # Perfect and inverted rankings.
    assert image_auroc([0, 0, 1], [0.1, 0.2, 0.9]) == 1.0
    assert image_auroc([0, 0, 1], [0.5, 0.2, 0.1]) == 0.0


# ----------------------------------------------------------------------------------------------
# AUPRO vs the slow reference


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("decimals", [None, 1])
def test_aupro_matches_slow_reference(seed, decimals):
    masks, maps = blob_case(seed, decimals=decimals)
    assert aupro(masks, maps) == pytest.approx(reference_aupro(masks, maps), abs=1e-9)


@pytest.mark.parametrize("fpr_limit", [0.05, 0.3, 1.0])
def test_aupro_other_limits_match_reference(fpr_limit):
    masks, maps = blob_case(7, decimals=2)
    assert aupro(masks, maps, fpr_limit=fpr_limit) == pytest.approx(
        reference_aupro(masks, maps, fpr_limit), abs=1e-9)


def test_pro_curve_matches_reference_points():
    masks, maps = blob_case(5, decimals=1)
    fpr, pro = pro_curve(masks, maps)
    fpr_ref, pro_ref = reference_pro_curve(masks, maps)
    np.testing.assert_allclose(fpr, fpr_ref, atol=1e-12)
    np.testing.assert_allclose(pro, pro_ref, atol=1e-12)
    assert (fpr[0], pro[0]) == (0.0, 0.0)
    assert fpr[-1] == pytest.approx(1.0) and pro[-1] == pytest.approx(1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(pro) >= -1e-15)


# ----------------------------------------------------------------------------------------------
# AUPRO: hand-built cases with known values


def _two_regions():
    """One image, a 1-pixel region A and a 5x5 region B, far apart."""
    masks = np.zeros((1, 16, 16))
    masks[0, 2, 2] = 1  # region A
    masks[0, 8:13, 8:13] = 1  # region B
    return masks


def test_aupro_perfect_map_is_one():
    masks, _ = blob_case(0)
    assert aupro(masks, masks.astype(float)) == 1.0
    # Any map that ranks all defect pixels above all normal pixels is perfect.
    assert aupro(masks, masks + 0.01 * np.random.default_rng(0).random(masks.shape)) == 1.0


def test_aupro_constant_map():
    # One threshold flags everything at once: the curve is the diagonal from (0, 0) to (1, 1),
    # so the area to 0.3 is 0.3^2 / 2 = 0.045 and AUPRO = 0.045 / 0.3 = 0.15.
    masks, _ = blob_case(1)
    assert aupro(masks, np.full(masks.shape, 0.7)) == pytest.approx(0.15, abs=1e-12)


def test_aupro_one_region_found_one_missed_below_background():
    # A (1 pixel) scores 1, background 0, B (25 pixels) -1. Curve: (0,0) -> (0, 1/2) at t=1,
    # (1, 1/2) at t=0, (1, 1) at t=-1. AUPRO = 1/2 exactly, although A is 1 of 26 defect pixels.
    masks = _two_regions()
    maps = np.zeros_like(masks)
    maps[0, 2, 2] = 1.0
    maps[0, 8:13, 8:13] = -1.0
    assert aupro(masks, maps) == pytest.approx(0.5, abs=1e-12)


def test_aupro_one_region_found_one_missed_tied_with_background():
    # As above but B scores 0 like the background. Curve: (0, 1/2), then one tied step to (1, 1).
    # Area to 0.3: trapezoid from (0, 0.5) to (0.3, 0.65) = 0.3 * 1.15 / 2; AUPRO = 0.575.
    masks = _two_regions()
    maps = np.zeros_like(masks)
    maps[0, 2, 2] = 1.0
    assert aupro(masks, maps) == pytest.approx(0.575, abs=1e-12)


def test_aupro_uses_8_connectivity():
    # Two pixels touching at a corner form ONE region, plus a separate single-pixel region.
    masks = np.zeros((1, 12, 12))
    masks[0, 2, 2] = masks[0, 3, 3] = 1  # diagonal pair
    masks[0, 9, 9] = 1
    _, n_regions = label_regions(masks)
    assert n_regions == 2
    # Detect (2,2) and (9,9) only; (3,3) scores below the background.
    maps = np.zeros_like(masks)
    maps[0, 2, 2] = maps[0, 9, 9] = 1.0
    maps[0, 3, 3] = -1.0
    # 8-connectivity: PRO = (1/2 + 1) / 2 = 0.75 up to FPR 1. (4-connectivity would give 2/3.)
    assert aupro(masks, maps) == pytest.approx(0.75, abs=1e-12)


def test_regions_do_not_span_images():
    masks = np.zeros((2, 8, 8))
    masks[:, 3:5, 3:5] = 1  # same place in two images: two regions
    assert label_regions(masks)[1] == 2


@pytest.mark.parametrize("seed", range(30))
def test_aupro_never_exceeds_one(seed):
    rng = np.random.default_rng(seed)
    masks = (rng.random((3, 16, 16)) < rng.uniform(0.02, 0.4)).astype(float)
    masks[0, 0, 0], masks[0, 0, 1] = 1, 0  # both classes present
    maps = rng.random(masks.shape) + rng.uniform(0, 3) * masks
    if seed % 3 == 0:
        maps = np.round(maps, 1)  # ties
    if seed % 5 == 0:
        maps = masks.copy()  # perfect map with many odd-sized regions: rounding is the risk
    value = aupro(masks, maps)
    assert 0.0 <= value <= 1.0
    _, pro = pro_curve(masks, maps)
    assert pro.max() <= 1.0


def test_aupro_is_fast_enough():
    import time

    rng = np.random.default_rng(0)
    masks = np.zeros((10, 256, 256))
    masks[:5, 100:140, 60:120] = 1
    maps = rng.random(masks.shape) + masks
    start = time.perf_counter()
    aupro(masks, maps)
    assert time.perf_counter() - start < 2.0  # typically ~0.25 s on 2 CPU cores


# ----------------------------------------------------------------------------------------------
# thresholded metrics


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_f1_max_matches_sklearn_pr_curve(seed):
    masks, maps = blob_case(seed, decimals=2)
    precision, recall, thresholds = skm.precision_recall_curve(masks.ravel(), maps.ravel())
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))[:-1]
    f1_value, threshold = f1_max(masks, maps)
    assert f1_value == pytest.approx(f1.max(), abs=1e-12)
    # F1 of the returned threshold, recomputed by scikit-learn.
    f1_sklearn = skm.f1_score(masks.ravel(), maps.ravel() >= threshold)
    assert f1_sklearn == pytest.approx(f1_value, abs=1e-12)
    # For one binary prediction IoU = F1 / (2 - F1).
    assert iou_at(masks, maps, threshold) == pytest.approx(f1_value / (2 - f1_value), abs=1e-12)


def test_iou_at_hand_case():
    masks = np.zeros((2, 4, 4))
    masks[0, :2, :2] = 1  # 4 defect pixels
    maps = np.zeros_like(masks)
    maps[0, :2, :1] = 1.0  # 2 of them found
    maps[1, 0, 0] = 1.0  # 1 false positive in the defect-free image
    assert iou_at(masks, maps, 0.5) == pytest.approx(2 / 5)
    assert f1_max(masks, masks) == (1.0, 1.0)


# ----------------------------------------------------------------------------------------------
# input handling


def test_torch_tensors_and_channel_axis_accepted():
    masks, maps = blob_case(3)
    expected = compute_metrics(masks.max(axis=(1, 2)), maps.max(axis=(1, 2)), masks, maps)
    masks_t = torch.from_numpy(masks)[:, None]  # (N, 1, H, W)
    maps_t = torch.from_numpy(maps).float()[:, None].requires_grad_()
    labels_t = torch.from_numpy(masks.max(axis=(1, 2)))
    scores_t = torch.from_numpy(maps.max(axis=(1, 2)))
    got = compute_metrics(labels_t, scores_t, masks_t, maps_t)
    assert got.keys() == expected.keys()
    for key in expected:  # float32 maps can reorder near-ties slightly
        assert got[key] == pytest.approx(expected[key], abs=1e-3)
    # Exact equality for a float64 tensor, and for a channel axis on one side only.
    assert aupro(torch.from_numpy(masks), torch.from_numpy(maps)) == aupro(masks, maps)
    assert pixel_auroc(masks[:, None], maps) == pixel_auroc(masks, maps)
    assert image_auroc([0, 1, 1], torch.tensor([0.1, 0.5, 0.9])) == 1.0


def test_compute_metrics_keys_and_types():
    masks, maps = blob_case(2)
    labels, scores = masks.max(axis=(1, 2)), maps.max(axis=(1, 2))
    assert compute_metrics(labels, scores).keys() == {"image_auroc"}
    result = compute_metrics(labels, scores, masks, maps)
    assert list(result) == [
        "image_auroc", "pixel_auroc", "pixel_ap", "aupro", "f1_max", "iou_at_f1"]
    assert all(type(v) is float for v in result.values())


def test_only_one_class_in_labels():
    with pytest.raises(ValueError, match="needs both normal and anomalous samples.*only normal"):
        image_auroc([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="only anomalous samples"):
        image_auroc([1, 1], [0.1, 0.2])


@pytest.mark.parametrize("metric", [pixel_auroc, pixel_ap, aupro, f1_max])
def test_no_anomalous_or_no_normal_pixel(metric):
    masks = np.zeros((2, 8, 8))
    with pytest.raises(ValueError, match="no anomalous pixel"):
        metric(masks, np.random.default_rng(0).random(masks.shape))
    with pytest.raises(ValueError, match="no normal pixel"):
        metric(np.ones_like(masks), np.random.default_rng(0).random(masks.shape))


def test_nan_and_inf_are_reported_with_location():
    masks, maps = blob_case(0, n_images=5)
    maps[3, :3, :4] = np.nan
    with pytest.raises(ValueError, match=r"maps contains 12 NaN values \(first at image 3\)"):
        aupro(masks, maps)
    with pytest.raises(ValueError, match=r"scores contains 1 infinite value \(first at index 2\)"):
        image_auroc([0, 1, 1], [0.1, 0.2, np.inf])


def test_shape_mismatch_quotes_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 8, 8\).*\(2, 16, 16\)"):
        pixel_auroc(np.zeros((2, 8, 8)), np.zeros((2, 16, 16)))
    with pytest.raises(ValueError, match=r"labels has shape \(3,\) but scores has shape \(4,\)"):
        image_auroc([0, 1, 1], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match=r"\(N, H, W\) or \(N, 1, H, W\)"):
        aupro(np.zeros((2, 3, 8, 8)), np.zeros((2, 3, 8, 8)))


def test_non_binary_masks_and_labels():
    masks, maps = blob_case(0)
    soft = ndimage.gaussian_filter(masks.astype(float), 1)
    with pytest.raises(ValueError, match="masks must be binary"):
        aupro(soft, maps)
    with pytest.raises(ValueError, match="labels must be binary"):
        image_auroc([0, 2, 1], [0.1, 0.2, 0.3])


def test_other_argument_errors():
    masks, maps = blob_case(0)
    with pytest.raises(ValueError, match="fpr_limit"):
        aupro(masks, maps, fpr_limit=0)
    with pytest.raises(ValueError, match="got masks but no maps"):
        compute_metrics([0, 1], [0.1, 0.2], masks=masks)
    with pytest.raises(ValueError, match="clashes with the mean row"):
        metrics_table({"mean": {"aupro": 0.5}})


# ----------------------------------------------------------------------------------------------
# tables


def test_metrics_table_and_markdown():
    results = {
        "bottle": {"image_auroc": 1.0, "aupro": 0.8},
        "screw": {"image_auroc": 0.5, "aupro": 0.6},
    }
    table = metrics_table(results)
    assert list(table.index) == ["bottle", "screw", "mean"]
    assert list(table.columns) == ["image_auroc", "aupro"]
    assert table.loc["mean", "aupro"] == pytest.approx(0.7)
    assert list(metrics_table(results, mean_row=False).index) == ["bottle", "screw"]

    text = to_markdown(table, digits=2)
    assert text.splitlines() == [
        "| category | image_auroc | aupro |",
        "|:---|---:|---:|",
        "| bottle | 1.00 | 0.80 |",
        "| screw | 0.50 | 0.60 |",
        "| mean | 0.75 | 0.70 |",
    ]
    # A metric missing for one category: n/a in that cell and in the mean.
    partial = metrics_table({"a": {"x": 0.5, "y": 0.1}, "b": {"x": 0.7}})
    assert to_markdown(partial).splitlines()[-1] == "| mean | 0.600 | n/a |"
