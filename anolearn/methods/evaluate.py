"""Run a fitted method over a test set and score it with the book's metrics.

:func:`predict_dataset` collects image scores and anomaly maps (kept for figures);
:func:`evaluate` turns them into image AUROC, pixel AUROC, pixel AP, AUPRO (to FPR 0.3),
F1-max and IoU at the F1-optimal threshold (see chapter 2). Maps are compared with the
masks at the dataset's working resolution; a map of another size is resized bilinearly.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..metrics import compute_metrics
from .base import AnomalyMethod


@torch.no_grad()
def predict_dataset(method: AnomalyMethod, dataset, batch_size: int = 16, progress: bool = True) -> dict:
    """Predict every test image.

    Returns:
        dict with ``scores (N,)``, ``maps (N, H, W)``, ``labels (N,)``, ``masks (N, H, W)`` (CPU
        tensors), ``defects`` (list of str) and ``paths``.
    """
    device = method.device
    scores, maps, labels, masks, defects, paths = [], [], [], [], [], []
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for batch in tqdm(loader, desc=f"{method.name}: predict", disable=not progress, leave=False):
        images = batch["image"].to(device)
        out = method.predict(images)
        m = out.maps
        if m.shape[-2:] != batch["mask"].shape[-2:]:
            m = F.interpolate(m[:, None], size=batch["mask"].shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        scores.append(out.scores.float().cpu())
        maps.append(m.float().cpu())
        labels.append(batch["label"])
        masks.append(batch["mask"][:, 0])
        defects += list(batch["defect"])
        paths += list(batch["path"])
    return {
        "scores": torch.cat(scores),
        "maps": torch.cat(maps),
        "labels": torch.cat(labels),
        "masks": torch.cat(masks),
        "defects": defects,
        "paths": paths,
    }


def evaluate(method: AnomalyMethod, dataset, batch_size: int = 16, progress: bool = True,
             predictions: dict | None = None) -> dict[str, float]:
    """Metrics of ``method`` on ``dataset`` (a test split).

    Pixel metrics are skipped (only ``image_auroc`` is returned) when the dataset has no
    ground-truth masks (e.g. Retinal-OCT). Pass ``predictions`` from :func:`predict_dataset`
    to avoid predicting twice.
    """
    p = predictions if predictions is not None else predict_dataset(method, dataset, batch_size, progress)
    if getattr(dataset, "has_masks", True):
        return compute_metrics(p["labels"], p["scores"], p["masks"], p["maps"])
    return compute_metrics(p["labels"], p["scores"])
