"""Input validation shared by every metric.

A metric that silently returns a number for broken input is worse than one that fails: a NaN
in a score map makes ``argsort`` put it first or last depending on the library, a test set
with no defective image makes AUROC undefined, and a soft mask (values between 0 and 1 left
over from resizing) quietly changes which pixels count as anomalous. Every public metric runs
its inputs through the helpers below, which convert them to float64 numpy arrays and raise a
``ValueError`` that says what is wrong and what to do about it.

Conventions enforced here:

* labels and scores are 1-D, ``(N,)``;
* masks and maps are ``(N, H, W)`` or ``(N, 1, H, W)`` (a single ``(H, W)`` image is read as
  ``N = 1``); the channel axis is dropped;
* numpy arrays, torch tensors (any device, with or without grad) and nested lists are accepted.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def to_numpy(x: Any, name: str) -> np.ndarray:
    """Convert ``x`` (numpy array, torch tensor, list) to a float64 numpy array.

    Metrics are computed on the CPU in float64: the sums over millions of pixels that AUROC
    and AUPRO need lose digits in float32, and the curves are sorted once, not trained through.
    """
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    try:
        array = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{name} could not be converted to a float array ({error}); pass a numpy array "
            "or a torch tensor of numbers."
        ) from None
    return array


def check_finite(x: np.ndarray, name: str) -> None:
    """Raise if ``x`` holds NaN or inf, saying how many and where the first one is.

    For image-shaped arrays ``(N, H, W)`` the location is given as an image index, which is
    what a reader needs to find the broken image in the test set.
    """
    bad = ~np.isfinite(x)
    if not bad.any():
        return
    n_nan = int(np.isnan(x).sum())
    n_inf = int(bad.sum()) - n_nan
    parts = []
    if n_nan:
        parts.append(f"{n_nan} NaN value{'s' if n_nan > 1 else ''}")
    if n_inf:
        parts.append(f"{n_inf} infinite value{'s' if n_inf > 1 else ''}")
    first = np.unravel_index(int(np.argmax(bad)), x.shape)
    where = f"first at image {first[0]}" if x.ndim >= 3 else f"first at index {first[0]}"
    raise ValueError(
        f"{name} contains {' and '.join(parts)} ({where}); anomaly scores must be finite. "
        "Check the model's output for this input (a division by zero or an overflow), or "
        "replace them before evaluating, e.g. np.nan_to_num."
    )


def check_binary(x: np.ndarray, name: str) -> None:
    """Raise unless every entry of ``x`` is exactly 0 or 1."""
    not_binary = (x != 0) & (x != 1)
    if not_binary.any():
        examples = np.unique(x[not_binary])[:5]
        raise ValueError(
            f"{name} must be binary (0 = normal, 1 = anomalous), but {int(not_binary.sum())} "
            f"entries are not, e.g. {examples.tolist()}. Masks stored as 0/255 images (as in "
            "MVTec AD) must be divided by 255; masks resized with interpolation must be "
            "binarised again (mask > 0.5) or resized with nearest neighbour."
        )


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str,
                     shape_a: tuple | None = None, shape_b: tuple | None = None) -> None:
    """Raise if ``a`` and ``b`` differ in shape, quoting both (original) shapes."""
    if a.shape != b.shape:
        shape_a = a.shape if shape_a is None else shape_a
        shape_b = b.shape if shape_b is None else shape_b
        raise ValueError(
            f"{name_a} has shape {tuple(shape_a)} but {name_b} has shape {tuple(shape_b)}; "
            "they must describe the same samples/pixels. Upsample the score maps to the mask "
            "resolution (or downsample the masks with nearest neighbour) before evaluating."
        )


def check_both_classes(labels: np.ndarray, what: str, metric: str = "AUROC") -> None:
    """Raise if ``labels`` does not contain both 0s and 1s.

    Args:
        labels: binary array, already checked with :func:`check_binary`.
        what: ``"samples"`` or ``"pixels"``, used in the message.
        metric: name of the metric that needs both classes, used in the message.
    """
    n_anomalous = int(labels.sum())
    n_normal = labels.size - n_anomalous
    if n_anomalous == 0 or n_normal == 0:
        only = "normal" if n_anomalous == 0 else "anomalous"
        missing = "anomalous" if n_anomalous == 0 else "normal"
        raise ValueError(
            f"{metric} needs both normal and anomalous {what}; this category's test set has "
            f"only {only} {what} ({labels.size} of them, no {missing} {what[:-1]}). Evaluate "
            "on a test set that contains both defect-free and defective images."
        )


def prepare_labels_scores(labels: Any, scores: Any,
                          metric: str = "AUROC") -> tuple[np.ndarray, np.ndarray]:
    """Validate image-level input: labels ``(N,)`` in {0, 1} and finite scores ``(N,)``.

    Returns:
        ``(labels, scores)`` as 1-D float64 arrays.
    """
    labels = to_numpy(labels, "labels")
    scores = to_numpy(scores, "scores")
    if labels.ndim != 1 or scores.ndim != 1:
        raise ValueError(
            f"labels and scores must be 1-D (one entry per image), got shapes {labels.shape} "
            f"and {scores.shape}. For pixel-level metrics use pixel_auroc / pixel_ap / aupro."
        )
    check_same_shape(labels, scores, "labels", "scores")
    check_binary(labels, "labels")
    check_finite(scores, "scores")
    check_both_classes(labels, "samples", metric)
    return labels, scores


def _as_images(x: np.ndarray, name: str) -> np.ndarray:
    """``(N, 1, H, W)`` or ``(N, H, W)`` or ``(H, W)`` -> ``(N, H, W)``."""
    if x.ndim == 4 and x.shape[1] == 1:
        return x[:, 0]
    if x.ndim == 3:
        return x
    if x.ndim == 2:
        return x[None]
    raise ValueError(
        f"{name} must have shape (N, H, W) or (N, 1, H, W), got {x.shape}. Reduce colour or "
        "feature channels to one anomaly score per pixel first."
    )


def prepare_masks_maps(masks: Any, maps: Any,
                       metric: str = "AUROC") -> tuple[np.ndarray, np.ndarray]:
    """Validate pixel-level input: binary masks and finite maps of one shape.

    Args:
        masks: ``(N, H, W)`` or ``(N, 1, H, W)``, values in {0, 1}.
        maps: same shape as ``masks`` (the channel axis may be present on one and not the
            other), float, higher = more anomalous.
        metric: name of the calling metric, used in error messages.

    Returns:
        ``(masks, maps)`` as float64 arrays of shape ``(N, H, W)``.
    """
    masks = to_numpy(masks, "masks")
    maps = to_numpy(maps, "maps")
    original_mask_shape, original_map_shape = masks.shape, maps.shape
    masks = _as_images(masks, "masks")
    maps = _as_images(maps, "maps")
    check_same_shape(masks, maps, "masks", "maps", original_mask_shape, original_map_shape)
    check_binary(masks, "masks")
    check_finite(maps, "maps")
    # Every pixel metric here needs at least one normal and one anomalous pixel.
    check_both_classes(masks, "pixels", metric)
    return masks, maps
