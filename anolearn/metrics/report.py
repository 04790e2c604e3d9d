"""All metrics of one category at once, and the per-category table every chapter prints.

No single number describes an anomaly detector, so the book always reports a row of them:

* ``image_auroc``: detection, is the image defective? (ignores where);
* ``pixel_auroc``: localisation ranked over all pixels (inflated by easy normal pixels);
* ``pixel_ap``: localisation with false alarms counted against the few anomalous pixels
  (depends on the anomaly rate);
* ``aupro``: localisation with every defect region counting equally, to FPR 0.3;
* ``f1_max`` and ``iou_at_f1``: quality of the best binarised map (optimistic: the threshold is
  chosen on the test labels).

:func:`metrics_table` stacks the rows of several categories with a ``mean`` row, and
:func:`to_markdown` prints it without the optional ``tabulate`` dependency.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .pro import aupro
from .ranking import image_auroc, pixel_ap, pixel_auroc
from .threshold import f1_max, iou_at

MEAN_ROW = "mean"


def compute_metrics(labels: Any, scores: Any, masks: Any = None, maps: Any = None,
                    fpr_limit: float = 0.3) -> dict[str, float]:
    """Every metric of the book for one category.

    Args:
        labels: ``(N,)`` in {0, 1}, 1 = defective test image.
        scores: ``(N,)`` float image anomaly scores.
        masks: optional ``(N, H, W)`` or ``(N, 1, H, W)`` ground-truth masks in {0, 1}.
        maps: optional anomaly maps of the same shape; give both or neither.
        fpr_limit: integration limit of AUPRO.

    Returns:
        ``{"image_auroc": ...}`` and, with masks and maps, also ``pixel_auroc``, ``pixel_ap``,
        ``aupro``, ``f1_max`` and ``iou_at_f1``; all values are Python floats.

    Example::

        >>> compute_metrics([0, 1], [0.2, 0.7])
        {'image_auroc': 1.0}
    """
    results = {"image_auroc": image_auroc(labels, scores)}
    if (masks is None) != (maps is None):
        given, missing = ("masks", "maps") if maps is None else ("maps", "masks")
        raise ValueError(
            f"compute_metrics got {given} but no {missing}; pass both for the pixel-level "
            "metrics, or neither for image AUROC only."
        )
    if masks is not None:
        f1, threshold = f1_max(masks, maps)
        results.update(
            pixel_auroc=pixel_auroc(masks, maps),
            pixel_ap=pixel_ap(masks, maps),
            aupro=aupro(masks, maps, fpr_limit=fpr_limit),
            f1_max=f1,
            iou_at_f1=iou_at(masks, maps, threshold),
        )
    return {name: float(value) for name, value in results.items()}


def metrics_table(results: dict[str, dict[str, float]], mean_row: bool = True) -> pd.DataFrame:
    """One row per category, one column per metric, and a ``mean`` row.

    Args:
        results: ``{category: {metric: value}}``, e.g. ``{"bottle": compute_metrics(...)}``.
        mean_row: append the column means as a row named ``"mean"``. A metric missing for
            some category gives a NaN mean (a mean over a subset of categories would not be
            comparable with other tables).

    Returns:
        A ``pandas.DataFrame`` indexed by category (index name ``"category"``), columns in
        order of first appearance.
    """
    if not results:
        raise ValueError("metrics_table got no categories; pass {category: {metric: value}}.")
    if mean_row and MEAN_ROW in results:
        raise ValueError(
            f"A category is called {MEAN_ROW!r}, which clashes with the mean row; rename it "
            "or pass mean_row=False."
        )
    table = pd.DataFrame.from_dict(results, orient="index").astype(float)
    table.index.name = "category"
    if mean_row:
        table.loc[MEAN_ROW] = table.mean(axis=0, skipna=False)
    return table


def _format_cell(value: Any, digits: int) -> str:
    if isinstance(value, (float, np.floating)):
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(value)
    return str(value).replace("|", r"\|")  # a pipe would end the cell


def to_markdown(df: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-flavoured markdown table of ``df`` (index as first column), no ``tabulate``.

    Args:
        df: e.g. the output of :func:`metrics_table`.
        digits: decimals for float cells; NaN prints as ``n/a``.

    Returns:
        The table as one string, numeric columns right-aligned.

    Example::

        >>> print(to_markdown(metrics_table({"toy": {"aupro": 0.5}}, mean_row=False)))
        | category | aupro |
        |:---|---:|
        | toy | 0.500 |
    """
    header = [df.index.name or ""] + [str(c) for c in df.columns]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    align = [":---"] + ["---:" if is_num else ":---" for is_num in numeric]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for index, row in df.iterrows():
        cells = [_format_cell(index, digits)] + [_format_cell(v, digits) for v in row.tolist()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
