"""Converting VisA, BTAD and Retinal-OCT to the MVTec AD folder layout.

Every method in this book reads one layout (see :mod:`anolearn.data.mvtec`)::

    <root>/<category>/train/good/000.png
    <root>/<category>/test/good/000.png
    <root>/<category>/test/<defect>/000.png
    <root>/<category>/ground_truth/<defect>/000_mask.png      0 = normal, 255 = anomalous

so other datasets are converted once, on disk, instead of teaching every method about
every dataset:

* **VisA** ships its images by object (``<object>/Data/Images/{Normal,Anomaly}/*.JPG``,
  masks in ``<object>/Data/Masks/Anomaly/*.png``) and a separate table saying which image
  is used for training and which for testing. The standard *one-class* protocol is
  ``split_csv/1cls.csv`` (columns ``object, split, label, image, mask``; label ``normal``
  or anything else = anomalous). Its masks are not 0/255 (anomalous pixels have small
  values such as 1 or 38 that look black in a viewer), so they are *binarised*: every
  non-zero pixel becomes 255. All anomaly types of an object end up in one defect folder,
  ``bad``, because the split table does not separate them.
* **BTAD** is already almost in MVTec layout (``BTech_Dataset_transformed/<product>/
  {train/ok, test/ok, test/ko, ground_truth/ko}``) but calls normal ``ok``, names masks
  like their images, and mixes ``.bmp`` and ``.png`` files.
* **Retinal-OCT** (the Kaggle ``OCT2017`` copy of Kermany et al. 2018) has folders per
  diagnosis. Following SSM, ``NORMAL`` scans of ``train`` are the training set and all
  four classes of ``test`` are the test set (the 32 images of ``val`` are not used). The
  dataset has **no pixel masks**, so only image-level metrics (image AUROC) apply.

Each category is built in a temporary folder ``<category>.tmp-XXXX`` next to its final
place and renamed when complete, with a marker ``.anolearn_complete`` inside; a second
run skips finished categories, and an interrupted run leaves no half-converted category
that could be mistaken for a complete one. Each category also gets ``source_files.csv``
mapping every new file to the raw file it came from.
"""
from __future__ import annotations

import csv
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .download import read_marker, write_marker

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
OCT_CLASSES = ("CNV", "DME", "DRUSEN", "NORMAL")


class ConversionError(RuntimeError):
    """The raw dataset is not laid out as expected; the message says what is missing and what to do."""


@dataclass
class ConvertResult:
    """What a conversion did.

    Attributes:
        out_root: the MVTec-layout folder.
        converted: categories written by this call.
        skipped: categories that were already complete (left untouched).
        counts: for every category, the number of files per folder, e.g.
            ``{"candle": {"train/good": 900, "test/good": 100, "test/bad": 100, "ground_truth/bad": 100}}``.
        missing_masks: anomalous images left out because they have no mask.
    """

    out_root: Path
    converted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    missing_masks: list[str] = field(default_factory=list)


# A job is (kind, source, destination, long side); kinds: "png" re-encode as PNG, "mask" binarise
# to 0/255 PNG, "copy" keep the bytes (hard link when possible: no extra disk space). A long side
# > 0 first resizes a "png" (bilinear) or "mask" (nearest) image so that its longer side has that
# many pixels; 0 keeps the size.
Job = tuple[str, str, str, int]


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)  # same disk: costs no space, and the raw file is never modified
    except OSError:
        shutil.copyfile(src, dst)


def _open_image(path: Path) -> Image.Image:
    try:
        img = Image.open(path)
        img.load()
    except (OSError, SyntaxError) as err:
        raise ConversionError(
            f"Cannot read {path} ({err}). The raw data is damaged: delete the raw folder and run the "
            "fetch script again."
        ) from err
    return img


def binarise_mask(img: Image.Image) -> Image.Image:
    """Turn any mask image into a single-channel PNG-ready image with values 0 and 255.

    Any non-zero pixel (in any colour channel; alpha ignored) counts as anomalous.
    """
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA")  # palette indices are not intensities: look the colours up
    arr = np.asarray(img)
    if arr.ndim == 3:
        arr = arr[..., :3] if arr.shape[2] >= 3 else arr[..., :1]
        arr = arr.any(axis=2)
    return Image.fromarray(np.where(arr != 0, 255, 0).astype(np.uint8), mode="L")


def resize_long_side(img: Image.Image, long_side: int, resample: Image.Resampling) -> Image.Image:
    """Resize ``img`` so that its longer side has ``long_side`` pixels (aspect ratio kept); 0 = as is."""
    w, h = img.size
    if long_side <= 0 or max(w, h) == long_side:
        return img
    scale = long_side / max(w, h)
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), resample)


def _run_job(job: Job) -> None:
    kind, src, dst, long_side = job
    src_p, dst_p = Path(src), Path(dst)
    if kind == "copy":
        _link_or_copy(src_p, dst_p)
        return
    img = _open_image(src_p)
    if kind == "mask":
        # binarised first, then resized by nearest neighbour: no grey values appear at a defect's border
        resize_long_side(binarise_mask(img), long_side, Image.Resampling.NEAREST).save(dst_p, format="PNG")
        return
    if img.mode not in ("RGB", "L", "I;16"):
        img = img.convert("RGB")
    img = resize_long_side(img, long_side, Image.Resampling.BILINEAR)
    # compress_level 1: much faster than the default 6 for a few percent larger files.
    img.save(dst_p, format="PNG", compress_level=1)


def _run_jobs(jobs: list[Job], workers: int, desc: str, progress: bool) -> None:
    bar = tqdm(total=len(jobs), desc=desc, unit="file", disable=not progress, leave=False)
    with bar:
        if workers <= 1 or len(jobs) < 50:
            for job in jobs:
                _run_job(job)
                bar.update()
            return
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for _ in pool.map(_run_job, jobs, chunksize=16):
                bar.update()


def _number_width(n: int) -> int:
    return max(3, len(str(max(n - 1, 0))))  # 000.png like MVTec, wider if a folder has > 1000 files


def _build_category(
    out_root: Path,
    category: str,
    plan: list[tuple[str, str, Path]],
    workers: int,
    progress: bool,
    source: str,
    long_side: int = 0,
) -> dict[str, int]:
    """Write one category atomically.

    ``plan`` rows are ``(job kind, destination relative to the category, source file)``;
    ``long_side > 0`` resizes every converted image and mask (see :data:`Job`).
    Returns the number of files per folder.
    """
    final = out_root / category
    for stale in out_root.glob(f"{category}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)  # from a run that was killed hard
    tmp = Path(tempfile.mkdtemp(prefix=f"{category}.tmp-", dir=out_root))
    try:
        jobs: list[Job] = []
        counts: dict[str, int] = {}
        for kind, rel, src in plan:
            dst = tmp / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            jobs.append((kind, str(src), str(dst), long_side))
            folder = str(Path(rel).parent)
            counts[folder] = counts.get(folder, 0) + 1
        _run_jobs(jobs, workers, f"converting {category}", progress)
        with open(tmp / "source_files.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "source"])
            for _, rel, src in plan:
                writer.writerow([rel, str(src)])
        resized = {"long_side": long_side} if long_side else {}  # a later run checks it asks for the same size
        write_marker(tmp, kind="convert", source=source, counts=counts, **resized)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return counts


def _check_free(out_root: Path, category: str) -> bool:
    """True if the category still has to be converted; False if a complete one is there."""
    final = out_root / category
    if not final.exists():
        return True
    marker = read_marker(final)
    if marker and marker.get("kind") == "convert":
        return False
    raise ConversionError(
        f"{final} exists but was not written (completely) by this converter: it has no completion "
        "marker. Delete or rename it and run the conversion again."
    )


def _image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


# --------------------------------------------------------------------------------------
# VisA
# --------------------------------------------------------------------------------------
def convert_visa(
    raw_root: str | Path,
    out_root: str | Path,
    keep_jpeg: bool = False,
    workers: int = 1,
    progress: bool = True,
) -> ConvertResult:
    """Convert extracted VisA to MVTec layout with the standard one-class split.

    Args:
        raw_root: the extracted archive (holds ``split_csv/1cls.csv`` and the object folders).
        out_root: where ``<object>/{train/good, test/good, test/bad, ground_truth/bad}`` go.
        keep_jpeg: keep the images as JPEG (``000.jpg``; hard-linked, no extra disk space)
            instead of converting them to PNG. PNG gives one uniform format; JPEG saves about
            ten times the disk space (the JPEG artefacts are in the data either way).
        workers: processes used for image conversion.
        progress: show progress bars.

    Returns:
        A :class:`ConvertResult`; images are numbered ``000.png, 001.png, ...`` per folder
        in the order of their raw file names, masks are ``000_mask.png, ...`` (0/255).

    Raises:
        ConversionError: ``1cls.csv`` or a file it names is missing.
    """
    raw_root, out_root = Path(raw_root).expanduser(), Path(out_root).expanduser()
    table = raw_root / "split_csv" / "1cls.csv"
    if not table.is_file():
        raise ConversionError(
            f"{table} not found: {raw_root} is not an extracted VisA archive (it should hold split_csv/ and "
            "one folder per object). Run data_scripts/fetch_visa.py, or pass the folder you extracted "
            "VisA_20220922.tar into."
        )
    with open(table, newline="") as f:
        reader = csv.DictReader(f)
        columns = {c.strip().lower() for c in reader.fieldnames or []}
        required = {"object", "split", "label", "image", "mask"}
        if not required <= columns:
            raise ConversionError(f"{table} has columns {sorted(columns)}; expected {sorted(required)}.")
        rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items()} for row in reader]

    by_object: dict[str, list[dict]] = {}
    for row in rows:
        by_object.setdefault(row["object"], []).append(row)

    out_root.mkdir(parents=True, exist_ok=True)
    result = ConvertResult(out_root)
    for obj in sorted(by_object):
        if not _check_free(out_root, obj):
            result.skipped.append(obj)
            result.counts[obj] = read_marker(out_root / obj).get("counts", {})
            continue
        groups: dict[tuple[str, str], list[dict]] = {}
        for row in by_object[obj]:
            split = row["split"].lower()
            if split not in ("train", "test"):
                raise ConversionError(f"{table}: unknown split {row['split']!r} for {row['image']}.")
            defect = "good" if row["label"].lower() == "normal" else "bad"
            groups.setdefault((split, defect), []).append(row)

        plan = []
        for (split, defect), group in sorted(groups.items()):
            group.sort(key=lambda r: r["image"])
            width = _number_width(len(group))
            for i, row in enumerate(group):
                src = raw_root / row["image"]
                if not src.is_file():
                    raise ConversionError(f"{src} (listed in {table}) is missing: the extraction is incomplete. "
                                          "Delete the raw folder and fetch VisA again.")
                suffix = src.suffix.lower() if keep_jpeg else ".png"
                kind = "copy" if keep_jpeg or suffix == src.suffix.lower() == ".png" else "png"
                plan.append((kind, f"{split}/{defect}/{i:0{width}d}{suffix}", src))
                if defect == "bad":
                    if not row["mask"]:
                        raise ConversionError(f"{table}: anomalous image {row['image']} has no mask entry.")
                    mask = raw_root / row["mask"]
                    if not mask.is_file():
                        raise ConversionError(f"Mask {mask} (listed in {table}) is missing. Fetch VisA again.")
                    plan.append(("mask", f"ground_truth/bad/{i:0{width}d}_mask.png", mask))
        result.counts[obj] = _build_category(out_root, obj, plan, workers, progress, source=str(table))
        result.converted.append(obj)
    return result


# --------------------------------------------------------------------------------------
# BTAD
# --------------------------------------------------------------------------------------
def _find_btad_root(raw_root: Path) -> Path:
    for candidate in (raw_root / "BTech_Dataset_transformed", raw_root):
        if any((candidate / p / "train").is_dir() for p in ("01", "02", "03")):
            return candidate
    raise ConversionError(
        f"No BTAD products found in {raw_root}: expected BTech_Dataset_transformed/{{01,02,03}}/"
        "{train/ok, test/ok, test/ko, ground_truth/ko}. Run data_scripts/fetch_btad.py, or pass the folder "
        "you extracted btad.zip into."
    )


def convert_btad(
    raw_root: str | Path, out_root: str | Path, workers: int = 1, progress: bool = True
) -> ConvertResult:
    """Convert extracted BTAD to MVTec layout.

    ``<product>/train/ok`` becomes ``train/good``, ``test/ok`` becomes ``test/good``,
    ``test/ko`` stays ``test/ko``, and the mask ``ground_truth/ko/<stem>.png`` of
    ``test/ko/<stem>.bmp`` becomes ``ground_truth/ko/<stem>_mask.png`` (binarised to 0/255).
    ``.bmp`` images are converted to PNG; PNG images are hard-linked (or copied). File stems
    are kept. An anomalous image without a mask is left out and listed in
    ``ConvertResult.missing_masks`` (a defective image without a mask cannot be evaluated
    at pixel level, and the MVTec loader would reject the category).

    Args:
        raw_root: the folder holding ``BTech_Dataset_transformed`` (or that folder itself).
        out_root: where ``01/``, ``02/``, ``03/`` go.
        workers: processes used for image conversion.
        progress: show progress bars.

    Returns:
        A :class:`ConvertResult`.
    """
    raw_root, out_root = Path(raw_root).expanduser(), Path(out_root).expanduser()
    base = _find_btad_root(raw_root)
    out_root.mkdir(parents=True, exist_ok=True)
    result = ConvertResult(out_root)
    products = sorted(p.name for p in base.iterdir() if p.is_dir() and (p / "train").is_dir())
    for product in products:
        if not _check_free(out_root, product):
            result.skipped.append(product)
            result.counts[product] = read_marker(out_root / product).get("counts", {})
            continue
        src_dir = base / product
        plan = []
        seen: dict[str, Path] = {}

        def add_image(src: Path, rel_folder: str) -> None:
            rel = f"{rel_folder}/{src.stem}.png"
            if rel in seen:
                raise ConversionError(f"{src} and {seen[rel]} would both become {rel}; remove one of them.")
            seen[rel] = src
            plan.append(("copy" if src.suffix.lower() == ".png" else "png", rel, src))

        for src in _image_files(src_dir / "train" / "ok"):
            add_image(src, "train/good")
        for src in _image_files(src_dir / "test" / "ok"):
            add_image(src, "test/good")
        masks = {p.stem: p for p in _image_files(src_dir / "ground_truth" / "ko")}
        for src in _image_files(src_dir / "test" / "ko"):
            mask = masks.get(src.stem)
            if mask is None:
                result.missing_masks.append(str(src))
                continue
            add_image(src, "test/ko")
            plan.append(("mask", f"ground_truth/ko/{src.stem}_mask.png", mask))
        if not any(rel.startswith("train/good/") for _, rel, _ in plan):
            raise ConversionError(f"{src_dir / 'train' / 'ok'} has no images: the extraction is incomplete.")
        result.counts[product] = _build_category(out_root, product, plan, workers, progress, source=str(src_dir))
        result.converted.append(product)
    return result


# --------------------------------------------------------------------------------------
# Retinal-OCT
# --------------------------------------------------------------------------------------
def find_oct_root(raw_root: str | Path, max_depth: int = 3) -> Path:
    """Find the folder holding ``train/NORMAL`` and ``test/NORMAL`` inside ``raw_root``.

    The Kaggle archive nests it (``OCT2017 /`` -- with a trailing space in the folder
    name -- possibly inside ``oct2017/``), so the folder is searched for rather than assumed.

    Raises:
        ConversionError: no such folder within ``max_depth`` levels.
    """
    raw_root = Path(raw_root).expanduser()
    level = [raw_root]
    for depth in range(max_depth + 1):
        for folder in level:
            if (folder / "train" / "NORMAL").is_dir() and (folder / "test" / "NORMAL").is_dir():
                return folder
        if depth < max_depth:
            level = [c for folder in level for c in sorted(folder.iterdir()) if c.is_dir()]
    raise ConversionError(
        f"No OCT2017 folder (with train/NORMAL and test/NORMAL) found in {raw_root}. Pass the Kaggle "
        "archive (archive.zip / OCT2017.tar.gz) or the folder you extracted it into."
    )


def convert_retinal_oct(
    raw_root: str | Path, out_root: str | Path, category: str = "oct", progress: bool = True
) -> ConvertResult:
    """Convert Kaggle OCT2017 to an MVTec-like layout for one-class training (as in SSM).

    Output::

        <out>/oct/train/good/      NORMAL images of train (the only training data)
        <out>/oct/test/good/       NORMAL images of test
        <out>/oct/test/{cnv,dme,drusen}/   diseased images of test (anomalies)

    There is no ``ground_truth`` folder: the dataset has no pixel masks, so only
    image-level metrics apply (the MVTec loader then gives all-zero masks, which must not
    be used for pixel metrics). File names (``NORMAL-<patient>-<n>.jpeg``) are kept, and the
    JPEG files are hard-linked (or copied), not re-encoded.

    Args:
        raw_root: folder containing (at any depth up to 3) ``train/`` and ``test/`` with
            ``CNV, DME, DRUSEN, NORMAL``.
        out_root: output folder.
        category: name of the single category folder.
        progress: show progress bars.

    Returns:
        A :class:`ConvertResult`.
    """
    out_root = Path(out_root).expanduser()
    base = find_oct_root(raw_root)
    out_root.mkdir(parents=True, exist_ok=True)
    result = ConvertResult(out_root)
    if not _check_free(out_root, category):
        result.skipped.append(category)
        result.counts[category] = read_marker(out_root / category).get("counts", {})
        return result
    plan = []
    for src in _image_files(base / "train" / "NORMAL"):
        plan.append(("copy", f"train/good/{src.name}", src))
    for cls in OCT_CLASSES:
        defect = "good" if cls == "NORMAL" else cls.lower()
        files = _image_files(base / "test" / cls)
        if not files:
            raise ConversionError(f"{base / 'test' / cls} has no images: the extraction is incomplete.")
        for src in files:
            plan.append(("copy", f"test/{defect}/{src.name}", src))
    if not any(rel.startswith("train/") for _, rel, _ in plan):
        raise ConversionError(f"{base / 'train' / 'NORMAL'} has no images: the extraction is incomplete.")
    result.counts[category] = _build_category(out_root, category, plan, 1, progress, source=str(base))
    result.converted.append(category)
    return result


__all__ = [
    "convert_visa", "convert_btad", "convert_retinal_oct",
    "find_oct_root", "binarise_mask", "resize_long_side",
    "ConvertResult", "ConversionError",
]
