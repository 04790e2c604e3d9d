"""A dataset for the MVTec AD folder layout, which also serves custom folders.

The layout (MVTec AD; VisA and BTAD after conversion; the built-in synthetic dataset)::

    <root>/<category>/train/good/000.png            normal training images
    <root>/<category>/test/good/000.png             normal test images
    <root>/<category>/test/<defect>/000.png         defective test images
    <root>/<category>/ground_truth/<defect>/000_mask.png   their masks (0 = normal, 255 = anomalous)

A custom folder with only ``train/good`` (your own normal images) works for training.
Every sample is a dict::

    image  (3, H, W) float32 in [0, 1]   grayscale files are repeated to 3 channels
    mask   (1, H, W) float32 in {0, 1}   all zeros for good images
    label  int, 0 = good, 1 = defective
    defect str, "good" or the defect folder name
    path   str, the image file

Everything that can be checked cheaply is checked when the dataset is created (missing
folders, empty train folder, a defect image without its mask); a corrupt image or a mask
whose size differs from its image is reported, naming the file, when it is read.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..paths import FETCH_COMMANDS
from .images import ImageReadError, image_size_of, read_image, read_mask

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
SPLITS = ("train", "test")


class DatasetError(ValueError):
    """The dataset folder is missing or not laid out as expected; the message says how to fix it."""


@dataclass(frozen=True)
class SampleInfo:
    """Where one sample lives on disk (``mask_path`` is None for good images)."""

    path: Path
    label: int
    defect: str
    mask_path: Path | None


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def _how_to_get(root: Path) -> str:
    return (
        f"To fetch a real dataset run e.g. `{FETCH_COMMANDS['mvtec_ad']} --root {root}`; for the "
        f"built-in synthetic dataset call `anolearn.data.load_dataset('synthetic', CATEGORY)` or run "
        f"`{FETCH_COMMANDS['synthetic']}`."
    )


class MVTecDataset(Dataset):
    """Images, masks and labels of one category in MVTec AD layout.

    Args:
        root: the dataset folder holding the category folders (e.g. ``.../mvtec_anomaly_detection``),
            or the category folder itself when ``category`` is None.
        category: category name (``"bottle"``, ``"washer"``, ...) or None.
        split: ``"train"`` (normal images only) or ``"test"`` (good and defective).
        image_size: output size (int for square, or ``(H, W)``); None keeps the file's size.
        cache: keep decoded, resized samples in memory (fast repeated epochs on small data).

    Raises:
        DatasetError: with the reason and the fix (which script fetches the data, which file is missing).

    Example::

        >>> ds = MVTecDataset(root, "bottle", split="test", image_size=256)  # doctest: +SKIP
        >>> s = ds[0]; s["image"].shape, s["mask"].shape, s["label"]          # doctest: +SKIP
        (torch.Size([3, 256, 256]), torch.Size([1, 256, 256]), 0)
    """

    def __init__(
        self,
        root: str | Path,
        category: str | None = None,
        split: str = "train",
        image_size: int | tuple[int, int] | None = 256,
        cache: bool = False,
    ) -> None:
        if split not in SPLITS:
            raise DatasetError(f"split must be one of {SPLITS}, got {split!r}.")
        self.root = Path(root).expanduser()
        self.category = category
        self.split = split
        self.image_size = image_size
        self.folder = self._category_folder()
        self.has_masks = (self.folder / "ground_truth").is_dir()
        self.samples: list[SampleInfo] = self._index()
        self._cache: dict[int, dict] | None = {} if cache else None

    # ------------------------------------------------------------------ indexing
    def _category_folder(self) -> Path:
        if not self.root.is_dir():
            raise DatasetError(f"Dataset folder {self.root} does not exist. {_how_to_get(self.root)}")
        if self.category is None:
            return self.root
        folder = self.root / self.category
        if not folder.is_dir():
            found = sorted(p.name for p in self.root.iterdir() if (p / "train").is_dir())
            hint = f"Categories found there: {', '.join(found)}." if found else _how_to_get(self.root)
            raise DatasetError(f"Category {self.category!r} not found in {self.root}. {hint}")
        return folder

    def _index(self) -> list[SampleInfo]:
        split_dir = self.folder / self.split
        if not split_dir.is_dir():
            if self.split == "test" and (self.folder / "train").is_dir():
                raise DatasetError(
                    f"{self.folder} has no test/ folder: it holds training images only (a custom "
                    "folder of good images). Use split='train', or add test/good and "
                    "test/<defect> folders (with ground_truth/<defect>/<name>_mask.png) to evaluate."
                )
            raise DatasetError(
                f"{self.folder} is not in MVTec AD layout: expected a {self.split}/ folder "
                f"(train/good, test/good, test/<defect>, ground_truth/<defect>). {_how_to_get(self.root)}"
            )
        if self.split == "train":
            good = split_dir / "good"
            files = _image_files(good) if good.is_dir() else []
            if not files:
                raise DatasetError(
                    f"No training images in {good}: put your normal images (PNG/JPEG/BMP) there."
                )
            return [SampleInfo(p, 0, "good", None) for p in files]

        samples: list[SampleInfo] = []
        for defect_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            defect = defect_dir.name
            for path in _image_files(defect_dir):
                if defect == "good":
                    samples.append(SampleInfo(path, 0, "good", None))
                    continue
                mask_path = None
                if self.has_masks:
                    mask_path = self._mask_path(defect, path)
                samples.append(SampleInfo(path, 1, defect, mask_path))
        if not samples:
            raise DatasetError(f"No test images found in {split_dir}.")
        return samples

    def _mask_path(self, defect: str, image_path: Path) -> Path:
        gt_dir = self.folder / "ground_truth" / defect
        # MVTec names masks <stem>_mask.png; some converted datasets keep <stem>.png.
        for candidate in (gt_dir / f"{image_path.stem}_mask.png", gt_dir / f"{image_path.stem}.png"):
            if candidate.is_file():
                return candidate
        raise DatasetError(
            f"Defective image {image_path} has no mask: expected {gt_dir / (image_path.stem + '_mask.png')}. "
            "Re-fetch the dataset, or remove the image if it has no annotation."
        )

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        info = self.samples[index]
        image = read_image(info.path, self.image_size)
        if info.mask_path is None:
            mask = torch.zeros(1, *image.shape[1:])
        else:
            self._check_same_size(info)
            mask = read_mask(info.mask_path, tuple(image.shape[1:]))
        sample = {"image": image, "mask": mask, "label": info.label, "defect": info.defect, "path": str(info.path)}
        if self._cache is not None:
            self._cache[index] = sample
        return sample

    @staticmethod
    def _check_same_size(info: SampleInfo) -> None:
        # Resizing both to the working size would hide a mismatch; compare the files' own sizes.
        image_hw, mask_hw = image_size_of(info.path), image_size_of(info.mask_path)
        if image_hw != mask_hw:
            raise DatasetError(
                f"Mask {info.mask_path} is {mask_hw[1]}x{mask_hw[0]} but its image {info.path} is "
                f"{image_hw[1]}x{image_hw[0]}: they must have the same size. Re-fetch or fix the mask."
            )

    @property
    def labels(self) -> torch.Tensor:
        """``(N,)`` long tensor of labels, without reading any image."""
        return torch.tensor([s.label for s in self.samples], dtype=torch.long)

    @property
    def defects(self) -> list[str]:
        """Defect name of every sample (``"good"`` for normal ones)."""
        return [s.defect for s in self.samples]

    def tensors(self, progress: bool = False) -> dict[str, torch.Tensor | list]:
        """Load every sample and stack them: ``image (N,3,H,W)``, ``mask (N,1,H,W)``, ``label (N,)``.

        Convenient for the small datasets of the quick profile; for large ones use a DataLoader.
        """
        from tqdm.auto import tqdm

        items = [self[i] for i in tqdm(range(len(self)), desc=f"loading {self.split}", disable=not progress)]
        return {
            "image": torch.stack([s["image"] for s in items]),
            "mask": torch.stack([s["mask"] for s in items]),
            "label": torch.tensor([s["label"] for s in items], dtype=torch.long),
            "defect": [s["defect"] for s in items],
            "path": [s["path"] for s in items],
        }

    def __repr__(self) -> str:
        n_bad = sum(s.label for s in self.samples)
        return (
            f"MVTecDataset({self.folder}, split={self.split!r}, {len(self)} images "
            f"({len(self) - n_bad} good, {n_bad} defective), image_size={self.image_size})"
        )


__all__ = ["MVTecDataset", "DatasetError", "ImageReadError", "SampleInfo", "IMAGE_EXTENSIONS"]
