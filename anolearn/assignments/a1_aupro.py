"""Checks for assignment A1 (Part I, data and metrics): implement AUPRO.

The student writes ``aupro(masks, maps, fpr_limit=0.3) -> float`` and the checks below
compare it with :func:`anolearn.metrics.aupro` on inputs built to expose the usual
mistakes, one per check:

* the overlap weighted by pixels instead of averaged over regions;
* 4-connected regions instead of the MVTec convention, 8-connected;
* false positive rate computed without the defect-free images;
* the integral stopped at the last curve point before ``fpr_limit`` (no interpolation);
* not normalising by ``fpr_limit``;
* map values used as they are instead of only their order.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..metrics import aupro as reference_aupro
from .feedback import CheckFailed, Feedback, run_checks

TOLERANCE = 1e-6


def _call(student: Callable, masks: np.ndarray, maps: np.ndarray, **kwargs) -> float:
    value = student(masks, maps, **kwargs)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise CheckFailed(f"aupro must return one number (a float); it returned {type(value).__name__}.") from None
    return value


def _compare(student: Callable, masks, maps, what: str, hint: str, **kwargs) -> None:
    got = _call(student, masks, maps, **kwargs)
    want = reference_aupro(masks, maps, **kwargs)
    if not np.isfinite(got) or abs(got - want) > TOLERANCE:
        raise CheckFailed(f"On {what}, your aupro gives {got:.4f}, the reference {want:.4f}.\n{hint}")


def _random_case(seed: int, n: int = 4, size: int = 24):
    """Blurred random blobs as masks and noisy blurred masks as maps; image 0 is defect-free."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.normal(size=(n, size, size)), sigma=(0, 2, 2))
    masks = (field > np.quantile(field, 0.9)).astype(np.uint8)
    masks[0] = 0
    maps = ndimage.gaussian_filter(masks.astype(float), sigma=(0, 1.5, 1.5)) + 0.3 * rng.random((n, size, size))
    return masks, maps


# ----------------------------------------------------------------------------- the inputs
def _two_regions():
    """One 100-pixel region detected at once, one 4-pixel region detected only late."""
    masks = np.zeros((2, 20, 20), dtype=np.uint8)
    masks[0, 2:12, 2:12] = 1  # large region, 100 px
    masks[0, 16:18, 16:18] = 1  # small region, 4 px
    maps = np.zeros((2, 20, 20))
    maps[0, 2:12, 2:12] = 1.0  # found before any normal pixel
    maps[0, 16:18, 16:18] = 0.3  # found only after many normal pixels
    rng = np.random.default_rng(0)
    maps += 0.5 * rng.random(maps.shape) * (masks == 0)  # normal pixels spread over [0, 0.5)
    return masks, maps


def _diagonal_regions():
    """Two blocks touching only at a corner: one region with 8-connectivity, two with 4."""
    masks = np.zeros((1, 16, 16), dtype=np.uint8)
    masks[0, 2:6, 2:6] = 1
    masks[0, 6:8, 6:8] = 1  # touches the first block diagonally at (5, 5)-(6, 6)
    maps = np.zeros((1, 16, 16))
    maps[0, 2:6, 2:6] = 1.0
    maps[0, 6:8, 6:8] = 0.2
    maps += 0.4 * np.random.default_rng(1).random(maps.shape) * (masks == 0)
    return masks, maps


def _single_region(seed: int, n_normal: int = 1, size: int = 24):
    """One rectangular defect plus ``n_normal`` defect-free images.

    With a single region, pixel-weighted and region-averaged overlap agree and connectivity
    does not matter, so a check on this input probes only the FPR and the integral.
    """
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    masks = np.zeros((1 + n_normal, size, size), dtype=np.uint8)
    masks[0, 6:14, 5:17] = 1
    maps = ndimage.gaussian_filter(masks.astype(float), sigma=(0, 2, 2)) + 0.4 * rng.random(masks.shape)
    return masks, maps


def _with_normal_images():
    """A defective image plus three defect-free ones whose pixels add false positives."""
    return _single_region(3, n_normal=3)


def _coarse_curve():
    """Few distinct map values, so no curve point falls at FPR 0.3 and interpolation matters."""
    masks = np.zeros((1, 10, 10), dtype=np.uint8)
    masks[0, :3, :3] = 1
    maps = np.zeros((1, 10, 10))
    maps[0, :3, :3] = np.array([[3, 3, 2], [2, 2, 1], [1, 1, 0]], dtype=float)
    maps[0, 5:, :] = 1.0  # 50 normal pixels tied with part of the defect: a long segment
    return masks, maps


# ----------------------------------------------------------------------------- the checks
def aupro_checks(student: Callable) -> list[tuple[str, Callable[[], None]]]:
    """The named property checks for a student's ``aupro`` function."""

    def returns_float():
        masks, maps = _random_case(0)
        value = _call(student, masks, maps)
        if not (np.isfinite(value) and 0.0 <= value <= 1.0):
            raise CheckFailed(f"aupro must lie in [0, 1]; on a random test set it returned {value!r}.")

    def perfect_map():
        masks, _ = _random_case(1)
        value = _call(student, masks, masks.astype(float))
        if abs(value - 1.0) > TOLERANCE:
            if abs(value - 0.3) < TOLERANCE:
                hint = "You return the raw area: divide it by fpr_limit."
            elif abs(value) < TOLERANCE:
                hint = ("Here the curve goes (0, 0) -> (0, 1) -> (1, 1) and has no point at FPR 0.3: "
                        "interpolate the last segment at fpr_limit instead of stopping at the last point before it.")
            else:
                hint = "Check that thresholds run from the highest map value down and that the curve starts at (0, 0)."
            raise CheckFailed(
                f"With maps equal to the masks (every defect pixel above every normal pixel) AUPRO is 1; "
                f"yours gives {value:.4f}. {hint}"
            )

    def inverted_map():
        masks, _ = _random_case(2)
        value = _call(student, masks, 1.0 - masks.astype(float))
        if abs(value) > TOLERANCE:
            raise CheckFailed(
                f"With the map inverted (every normal pixel above every defect pixel) no region is found "
                f"before the FPR reaches 1, so AUPRO is 0; yours gives {value:.4f}."
            )

    def order_only():
        masks, maps = _random_case(5)
        a, b = _call(student, masks, maps), _call(student, masks, np.exp(4.0 * maps) - 7.0)
        if abs(a - b) > TOLERANCE:
            raise CheckFailed(
                f"AUPRO depends only on the order of the map values: a monotone rescaling "
                f"(exp(4 m) - 7) changed yours from {a:.4f} to {b:.4f}. Use thresholds, not the values themselves."
            )

    def regions_equal():
        masks, maps = _two_regions()
        _compare(
            student, masks, maps, "one 100-pixel region found at once and one 4-pixel region found late",
            "PRO is the mean over connected regions of the fraction of each region above the threshold: "
            "the 4-pixel region counts as much as the 100-pixel one. A pixel-weighted overlap hides small defects.",
        )

    def eight_connected():
        masks, maps = _diagonal_regions()
        _compare(
            student, masks, maps, "two blocks touching only at a corner",
            "Regions are 8-connected (the MVTec convention): pixels touching at a corner belong to one region. "
            "With scipy, `ndimage.label(mask, structure=np.ones((3, 3)))`.",
        )

    def normal_images_count():
        masks, maps = _with_normal_images()
        _compare(
            student, masks, maps, "one defective image (a single region) and three defect-free images",
            "The false positive rate counts the normal pixels of *all* test images, defect-free ones included, "
            "so false alarms on good parts lower the score.",
        )

    def stops_at_limit():
        masks, maps = _coarse_curve()
        _compare(
            student, masks, maps, "a map with only four distinct values (no curve point at FPR 0.3)",
            "Integrate exactly up to fpr_limit: where the curve jumps past it, interpolate the PRO value at "
            "fpr_limit linearly and stop there. Then divide the area by fpr_limit.",
        )

    def other_limits():
        masks, maps = _single_region(6)
        for limit in (0.1, 1.0):
            _compare(
                student, masks, maps, f"a single-region test set with fpr_limit={limit}",
                "Use the fpr_limit argument for both the end of the integral and the normalisation.",
                fpr_limit=limit,
            )

    def random_cases():
        for seed in (7, 8, 9):
            masks, maps = _random_case(seed, n=5, size=32)
            _compare(student, masks, maps, f"random test set #{seed}", "Compare your PRO curve with anolearn.metrics.pro_curve.")

    return [
        ("returns a float in [0, 1]", returns_float),
        ("a perfect map scores 1", perfect_map),
        ("an inverted map scores 0", inverted_map),
        ("only the order of map values matters", order_only),
        ("every region counts the same, whatever its size", regions_equal),
        ("regions are 8-connected", eight_connected),
        ("defect-free images count in the FPR", normal_images_count),
        ("the integral stops exactly at fpr_limit", stops_at_limit),
        ("fpr_limit is respected", other_limits),
        ("matches the reference on random test sets", random_cases),
    ]


def check_aupro(student: Callable, verbose: bool = True, raise_on_fail: bool = True) -> Feedback:
    """Check a student's ``aupro(masks, maps, fpr_limit=0.3)`` and print specific feedback."""
    return run_checks("Assignment A1 (AUPRO)", aupro_checks(student), verbose=verbose, raise_on_fail=raise_on_fail)
