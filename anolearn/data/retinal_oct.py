"""Retinal-OCT (Kaggle OCT2017) for one-class training, as SSM uses it.

Kermany et al., "Identifying Medical Diagnoses and Treatable Diseases by Image-Based Deep
Learning", Cell 172(5), 2018; data CC BY 4.0. Retinal OCT B-scans in four classes: NORMAL and
three diseases (CNV, DME, DRUSEN). Following SSM (``MediaBrain-SJTU/SSM``,
``datasets/retinaOCT.py``), the **training set is the NORMAL images of ``train``** (26,315)
and the **test set is all of ``test``** (242 per class: NORMAL = normal, label 0; the three
diseases = anomalous, label 1). The 32 images of ``val`` are not used. There are no pixel
masks: only image-level metrics apply. Images are grayscale JPEGs of varying size, resized
(squashed, not cropped, as the code's ``Resize([128, 128])``) to ``image_size`` and repeated
to 3 channels, values in [0, 1] without normalisation.

Get the data once with ``python data_scripts/fetch_retinal_oct.py --archive archive.zip``
(Kaggle needs a login, see that script), which writes the MVTec-like layout
``<ANOLEARN_DATA>/retinal_oct/oct/{train/good, test/good, test/cnv, test/dme, test/drusen}``.
:func:`load_dataset("retinal_oct", "oct", ...) <anolearn.data.load_dataset>` reads that
layout too; this module adds what 26k training images need:

* ``preload=True`` decodes every image once, in parallel threads, into one ``uint8`` tensor
  (26,315 x 128 x 128 grayscale = 431 MB) instead of decoding JPEGs in every epoch;
* ``limit`` picks a reproducible random subset (per class on the test split), for quick runs;
* it also accepts the raw Kaggle folder (``OCT2017/{train,test}/{CNV,DME,DRUSEN,NORMAL}``).

Example::

    train = RetinalOCT("train", image_size=128, preload=True)     # normal scans only
    test = RetinalOCT("test", image_size=128)
    ssm.fit(train); evaluate(ssm, test)                           # image AUROC only

The one-command reproduction of SSM's 98.3 % is ``benchmarks/ssm_retinal_oct.py``.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..paths import FETCH_COMMANDS, dataset_dir
from .convert import OCT_CLASSES, ConversionError, find_oct_root
from .images import read_image
from .mvtec import IMAGE_EXTENSIONS, DatasetError

CATEGORY = "oct"
DISEASES = ("cnv", "dme", "drusen")


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def index_oct(root: str | Path | None, split: str) -> list[tuple[Path, str]]:
    """``(path, class)`` pairs of a split, class in ``good, cnv, dme, drusen``.

    Args:
        root: the converted dataset (``.../retinal_oct`` or ``.../retinal_oct/oct``), or a raw
            Kaggle folder holding ``OCT2017``; None = ``<ANOLEARN_DATA>/retinal_oct``.
        split: ``"train"`` (NORMAL only) or ``"test"`` (all four classes).
    """
    if split not in ("train", "test"):
        raise DatasetError(f"split must be 'train' or 'test', got {split!r}.")
    root = Path(root).expanduser() if root is not None else dataset_dir("retinal_oct")
    if not root.is_dir():
        raise DatasetError(f"Retinal-OCT is not on this machine (looked in {root}). Fetch it with "
                           f"`{FETCH_COMMANDS['retinal_oct']} --archive archive.zip` (see its --help).")
    converted = root / CATEGORY if (root / CATEGORY / "train" / "good").is_dir() else root
    if (converted / "train" / "good").is_dir():  # the layout written by data_scripts/fetch_retinal_oct.py
        classes = ("good",) if split == "train" else ("good",) + DISEASES
        items = [(p, c) for c in classes for p in _files(converted / split / c)]
    else:  # the raw Kaggle folders
        try:
            base = find_oct_root(root)
        except ConversionError as err:
            raise DatasetError(str(err)) from err
        classes = ("NORMAL",) if split == "train" else OCT_CLASSES
        items = [(p, "good" if c == "NORMAL" else c.lower()) for c in classes for p in _files(base / split / c)]
    if not items:
        raise DatasetError(f"No {split} images found under {root}.")
    return items


class RetinalOCT(Dataset):
    """One split of Retinal-OCT as sample dicts (``image (3, H, W)``, ``mask`` all zeros, ``label``,
    ``defect``, ``path``), like :class:`~anolearn.data.MVTecDataset`.

    Args:
        split: ``"train"`` (NORMAL scans of train) or ``"test"`` (all of test).
        image_size: working resolution (square; 128 as SSM).
        root: see :func:`index_oct`.
        limit: keep a random subset of at most this many images (test: per class), seeded by ``seed``.
        preload: decode every image now into a ``uint8`` tensor (fast epochs, 16 KB per image at 128 px).
        workers: threads used by ``preload``.
        seed: seed of the ``limit`` subset.
        progress: progress bar while preloading.
    """

    has_masks = False

    def __init__(self, split: str = "train", image_size: int = 128, root: str | Path | None = None,
                 limit: int | None = None, preload: bool = False, workers: int = 8, seed: int = 0,
                 progress: bool = True):
        self.split, self.image_size = split, image_size
        items = index_oct(root, split)
        if limit is not None:
            items = self._subset(items, limit, seed)
        self.items = items
        self.pixels: torch.Tensor | None = None  # (N, 1, H, W) uint8 after preload
        if preload:
            self.preload(workers, progress)

    @staticmethod
    def _subset(items, limit: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        classes = sorted({c for _, c in items})
        per_class = max(1, limit // len(classes))
        keep = []
        for c in classes:
            members = [it for it in items if it[1] == c]
            order = torch.randperm(len(members), generator=g)[:per_class]
            keep += [members[i] for i in sorted(order.tolist())]
        return keep

    def _read(self, path: Path) -> torch.Tensor:
        return read_image(path, self.image_size)  # (3, H, W) in [0, 1]

    def preload(self, workers: int = 8, progress: bool = True) -> RetinalOCT:
        """Decode all images once (threads; OpenCV releases the GIL) into ``uint8`` grayscale."""
        def one(path):
            return (self._read(path)[:1] * 255).round().to(torch.uint8)  # B-scans are grayscale

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            images = list(tqdm(pool.map(one, [p for p, _ in self.items]), total=len(self.items),
                               desc=f"Retinal-OCT {self.split}: decoding", disable=not progress, leave=False))
        self.pixels = torch.stack(images)
        return self

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        path, cls = self.items[index]
        if self.pixels is not None:
            image = (self.pixels[index].float() / 255).expand(3, -1, -1).contiguous()
        else:
            image = self._read(path)
        label = int(cls != "good")
        return {"image": image, "mask": torch.zeros(1, *image.shape[-2:]), "label": label, "defect": cls,
                "path": str(path)}

    @property
    def labels(self) -> torch.Tensor:
        """``(N,)`` labels (0 = NORMAL) without reading any image."""
        return torch.tensor([int(c != "good") for _, c in self.items], dtype=torch.long)

    @property
    def defects(self) -> list[str]:
        return [c for _, c in self.items]

    def __repr__(self) -> str:
        counts = {c: self.defects.count(c) for c in dict.fromkeys(self.defects)}
        return f"RetinalOCT(split={self.split!r}, {len(self)} images {counts}, image_size={self.image_size})"


__all__ = ["CATEGORY", "DISEASES", "RetinalOCT", "index_oct"]
