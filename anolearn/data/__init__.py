"""Datasets: the MVTec AD folder layout, the built-in synthetic dataset, real datasets.

:func:`load_dataset` is the one entry point the chapters use::

    train = load_dataset("synthetic", "washer", split="train")      # built in, written on first use
    test  = load_dataset("mvtec_ad", "bottle", split="test")        # after data_scripts/fetch_mvtec_ad.py
    mine  = load_dataset("/path/to/my_parts", None, split="train")  # a folder with train/good
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..config import Profile, get_profile
from ..paths import FETCH_COMMANDS, dataset_dir
from .images import ImageReadError, read_image, read_mask
from .mvtec import DatasetError, MVTecDataset

# Real datasets in MVTec layout after their data script ran: name -> sub-folder of the data root.
REAL_DATASETS = {"mvtec_ad": "mvtec_ad", "visa": "visa", "btad": "btad", "retinal_oct": "retinal_oct"}

MVTEC_AD_CATEGORIES = (
    "bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut", "pill", "screw",
    "tile", "toothbrush", "transistor", "wood", "zipper",
)


def list_categories(source: str, profile: Profile | None = None) -> list[str]:
    """Category names of a dataset: the synthetic ones, MVTec AD's 15, or the folders found on disk."""
    if source == "synthetic":
        from .synthetic import CATEGORIES

        return list(CATEGORIES)
    if source == "mvtec_ad" and not dataset_dir("mvtec_ad").is_dir():
        return list(MVTEC_AD_CATEGORIES)
    root = dataset_root(source, profile)
    return sorted(p.name for p in root.iterdir() if (p / "train").is_dir())


def dataset_root(source: str, profile: Profile | None = None, category: str | None = None) -> Path:
    """Folder holding the category folders of ``source`` (writing the synthetic data if needed)."""
    if source == "synthetic":
        from .synthetic import ensure_synthetic

        return ensure_synthetic([category] if category else None, profile=profile)
    if source in REAL_DATASETS:
        root = dataset_dir(REAL_DATASETS[source])
        if not root.is_dir() or not any(root.iterdir()):
            raise DatasetError(
                f"{source} is not on this machine (looked in {root}). Fetch it with "
                f"`{FETCH_COMMANDS[source]}` (needs the internet), or set ANOLEARN_DATA to the folder that holds it."
            )
        return root
    return Path(source).expanduser()


def load_dataset(source: str, category: str | None, split: str = "train", profile: Profile | None = None,
                 image_size: int | None = None, cache: bool = True) -> MVTecDataset:
    """Open one category of a dataset at the profile's working resolution.

    Args:
        source: ``"synthetic"``, a real dataset name (``"mvtec_ad"``, ``"visa"``, ``"btad"``,
            ``"retinal_oct"``) or a folder in MVTec layout.
        category: category name, or None when ``source`` is the category folder itself.
        split: ``"train"`` or ``"test"``.
        profile: defaults to :func:`anolearn.config.get_profile`.
        image_size: overrides ``profile.image_size``.
        cache: keep decoded images in memory (the quick profile's datasets are small).
    """
    profile = profile or get_profile()
    root = dataset_root(source, profile, category)
    return MVTecDataset(root, category, split=split, image_size=image_size or profile.image_size, cache=cache)


def first_images(source: str, category: str | None, n: int, profile: Profile | None = None,
                 split: str = "train") -> torch.Tensor:
    """The first ``n`` images of one split, stacked: ``(n, 3, H, W)`` float in [0, 1] on the CPU.

    For figures and statistics over a few images (training streams through a DataLoader).
    Fewer than ``n`` when the split holds fewer.

    Example::

        images = first_images("synthetic", "washer", 8)       # (8, 3, H, W)
    """
    dataset = load_dataset(source, category, split, profile)
    return torch.stack([dataset[i]["image"] for i in range(min(n, len(dataset)))])


__all__ = ["DatasetError", "ImageReadError", "MVTEC_AD_CATEGORIES", "MVTecDataset", "REAL_DATASETS", "dataset_root",
           "first_images", "list_categories", "load_dataset",
           "read_image", "read_mask"]
