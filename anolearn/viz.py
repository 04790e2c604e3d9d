"""Figures the chapters share: image grids, mask outlines, anomaly-map overlays, defect galleries, bar charts.

All functions take tensors in the library's conventions (images ``(3, H, W)`` or
``(B, 3, H, W)`` in [0, 1], masks and maps ``(H, W)``) and return the matplotlib figure, so a
chapter can ``plt.show()`` it or save it.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy import ndimage


def to_numpy_image(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """``(3, H, W)`` tensor in [0, 1] -> ``(H, W, 3)`` float array for ``imshow``."""
    if isinstance(image, torch.Tensor):
        image = image.detach().float().cpu()
        image = image.permute(1, 2, 0).numpy() if image.dim() == 3 else image.numpy()
    return np.clip(image, 0, 1)


def mask_outline(mask: torch.Tensor | np.ndarray) -> np.ndarray:
    """Boolean ``(H, W)`` array of the one-pixel boundary of a binary mask."""
    m = np.asarray(mask.detach().cpu() if isinstance(mask, torch.Tensor) else mask).squeeze() > 0.5
    return m & ~ndimage.binary_erosion(m)


def draw(ax, image, mask=None, heat=None, title: str | None = None, heat_alpha: float = 0.5,
         vmin: float | None = None, vmax: float | None = None, outline_color=(1.0, 0.1, 0.1)):
    """Show an image on ``ax``, optionally with an anomaly map (jet, semi-transparent) and a mask outline."""
    img = to_numpy_image(image).copy()
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
    if heat is not None:
        h = heat.detach().float().cpu().numpy() if isinstance(heat, torch.Tensor) else np.asarray(heat)
        ax.imshow(h.squeeze(), cmap="jet", alpha=heat_alpha, vmin=vmin, vmax=vmax)
    if mask is not None:
        edge = mask_outline(mask)
        overlay = np.zeros((*edge.shape, 4))
        overlay[edge] = (*outline_color, 1.0)
        ax.imshow(overlay)
    if title:
        ax.set_title(title, fontsize=9)
    ax.axis("off")
    return ax


def image_grid(images: Sequence, titles: Sequence[str] | None = None, masks: Sequence | None = None,
               heats: Sequence | None = None, ncols: int = 6, size: float = 1.8, suptitle: str | None = None):
    """A grid of images with optional mask outlines and heat-map overlays; returns the figure."""
    n = len(images)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        draw(ax, images[i], None if masks is None else masks[i], None if heats is None else heats[i],
             None if titles is None else titles[i])
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def defect_gallery(dataset, predictions: dict, title: str | None = None, size: float = 1.7):
    """One example of each defect type and one normal image: the image, its ground truth and the
    anomaly map over the image, in three rows; returns the figure.

    The example of each type is its first image in ``dataset``. All maps share one colour scale
    (from the 1st to the 99.5th percentile of the shown maps), so a normal image looks as hot or as
    cold as the method really makes it, not stretched to its own range.

    Args:
        dataset: a test split (items with ``image``, ``mask``; ``dataset.defects`` names each item's type).
        predictions: :func:`anolearn.methods.predict_dataset` output for ``dataset`` (``maps`` ``(N, H, W)``).
    """
    defects = list(dataset.defects)
    kinds = sorted(set(defects) - {"good"}) + (["good"] if "good" in defects else [])
    picks = [defects.index(k) for k in kinds]
    maps = torch.as_tensor(predictions["maps"])[picks].float()  # (K, H, W)
    vmin, vmax = np.percentile(maps.numpy(), [1.0, 99.5])
    fig, axes = plt.subplots(3, len(picks), figsize=(size * len(picks), size * 3 + (0.5 if title else 0.2)),
                             squeeze=False)
    for j, (i, kind) in enumerate(zip(picks, kinds)):
        item = dataset[i]
        draw(axes[0, j], item["image"], title=kind)
        axes[1, j].imshow(np.asarray(item["mask"].squeeze().cpu()), cmap="gray", vmin=0, vmax=1)
        axes[1, j].axis("off")
        draw(axes[2, j], item["image"], heat=maps[j], vmin=vmin, vmax=vmax)
    for row, label in enumerate(("image", "ground truth", "map")):
        axes[row, 0].text(-0.08, 0.5, label, transform=axes[row, 0].transAxes, rotation=90, ha="right",
                          va="center", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def metric_bars(table, metrics: Sequence[str], title: str | None = None, ylim=(0.0, 1.0), chance: float | None = 0.5):
    """Grouped bar chart of a ``metrics_table`` DataFrame (rows = categories, one group per row).

    Args:
        table: DataFrame with categories as index and metric columns; a column level per method is
            allowed as ``{method: DataFrame}``.
        metrics: which columns to plot.
    """
    frames = table if isinstance(table, dict) else {"": table}
    first = next(iter(frames.values()))
    rows = [r for r in first.index]
    width = 0.8 / (len(frames) * len(metrics))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows) * len(frames)), 3.2))
    x = np.arange(len(rows))
    k = 0
    for label, frame in frames.items():
        for metric in metrics:
            name = f"{label} {metric}".strip()
            ax.bar(x + (k - (len(frames) * len(metrics) - 1) / 2) * width, frame.loc[rows, metric], width, label=name)
            k += 1
    if chance is not None:
        ax.axhline(chance, color="gray", lw=0.8, ls="--")
    ax.set_xticks(x, rows, rotation=0)
    ax.set_ylim(*ylim)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
