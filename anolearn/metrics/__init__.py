"""Evaluation metrics for anomaly detection and localisation (chapter 2 of the book).

One idea per file:

* :mod:`~anolearn.metrics.ranking`: ROC curve, AUROC, precision-recall curve, average
  precision; ``image_auroc``, ``pixel_auroc``, ``pixel_ap``;
* :mod:`~anolearn.metrics.pro`: the per-region-overlap (PRO) curve and AUPRO (MVTec AD algorithm);
* :mod:`~anolearn.metrics.threshold`: F1-max and IoU of binarised maps (optimistic: the
  threshold is chosen on the test labels);
* :mod:`~anolearn.metrics.report`: all metrics of a category, the per-category table and its
  markdown form;
* :mod:`~anolearn.metrics.seeds`: several training seeds: means with standard errors, paired
  differences between two methods (``seed_summary``, ``seed_pairs``);
* :mod:`~anolearn.metrics._checks`: input validation with helpful error messages.

Conventions (the book's, section "Evaluation conventions" of chapter 2): pixel metrics over all
test pixels of a category, defect-free images included; AUPRO integrated to FPR 0.3 and divided
by 0.3. Inputs may be numpy arrays or torch tensors; everything is computed in float64 numpy.
"""
from .pro import aupro, pro_curve
from .ranking import (
    auroc,
    average_precision,
    image_auroc,
    pixel_ap,
    pixel_auroc,
    precision_recall_curve,
    roc_curve,
)
from .report import compute_metrics, metrics_table, to_markdown
from .threshold import f1_max, iou_at

__all__ = [
    "aupro",
    "auroc",
    "average_precision",
    "compute_metrics",
    "f1_max",
    "image_auroc",
    "iou_at",
    "metrics_table",
    "pixel_ap",
    "pixel_auroc",
    "precision_recall_curve",
    "pro_curve",
    "roc_curve",
    "to_markdown",
]
