"""Writing the synthetic dataset to disk in the MVTec AD folder layout.

::

    <root>/<category>/train/good/000.png
    <root>/<category>/test/good/000.png
    <root>/<category>/test/<defect>/000.png
    <root>/<category>/ground_truth/<defect>/000_mask.png   (L mode, 0 or 255)
    <root>/<category>/manifest.json

so that one loader serves the real MVTec AD and this dataset.

Every image has its own random generator, seeded from ``(seed, category, split, index)``
through :class:`numpy.random.SeedSequence`: an image never depends on how many others were
made, and the same parameters give byte-identical files.

A category is written into a hidden temporary sibling folder and renamed into place at the
end, so a crash never leaves a half-written category behind. A run killed hard (SIGKILL, a
power cut) cannot remove its temporary folder; the next run removes such a folder once nothing
in it has changed for :data:`STALE_AFTER` seconds (a live writer adds an image every second or
so, so another process still writing the same category is left alone). The parameters are
checked before any folder is created. ``manifest.json`` records the parameters and a format
version; a folder whose manifest matches is left alone, one whose manifest differs is
regenerated. Bump :data:`FORMAT_VERSION` whenever a change to the renderers changes the
pixels, so that stale copies on readers' disks are rewritten.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
import zlib
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from ...config import Profile, get_profile
from ...paths import data_root
from .catalog import CATEGORIES, category_info
from .render import MIN_SIZE, render_normal, render_pair

FORMAT_VERSION = 1
_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 3]
STALE_AFTER = 600.0  # seconds without a change after which a temporary folder is a leftover


def image_rng(seed: int, category: str, split: str, index: int) -> np.random.Generator:
    """The generator of one image, e.g. ``image_rng(0, "wood", "test/crack", 7)``.

    ``zlib.crc32`` turns the names into integers (Python's ``hash`` changes between runs).
    """
    if int(seed) < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    key = [int(seed), zlib.crc32(category.encode()), zlib.crc32(split.encode()), int(index)]
    return np.random.default_rng(np.random.SeedSequence(key))


def split_counts(n: int, defects: tuple[str, ...]) -> dict[str, int]:
    """Spread ``n`` defective test images evenly over ``defects`` (the first ones get the rest)."""
    k = len(defects)
    return {d: n // k + (1 if i < n % k else 0) for i, d in enumerate(defects)}


def _write_png(path: Path, array: np.ndarray) -> None:
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", array, _PNG)
    if not ok:
        raise OSError(f"PNG encoding failed for {path}")
    path.write_bytes(buf.tobytes())


def check_parameters(size: int, n_train: int, n_test_good: int, n_test_defect: int, seed: int) -> None:
    """Raise ``ValueError`` naming the first parameter a category cannot be written with."""
    def whole(value) -> bool:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

    if not whole(size) or size < MIN_SIZE:
        raise ValueError(f"size must be a whole number of pixels >= {MIN_SIZE}, got {size!r}.")
    if not whole(n_train) or n_train < 1:
        raise ValueError(f"n_train must be >= 1 (a category needs training images), got {n_train!r}.")
    for name, value in (("n_test_good", n_test_good), ("n_test_defect", n_test_defect), ("seed", seed)):
        if not whole(value) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0, got {value!r}.")


def _remove_stale_temps(root: Path, category: str) -> None:
    """Remove the temporary folders of ``category`` that runs killed hard left in ``root``."""
    now = time.time()
    for leftover in [*root.glob(f".{category}.tmp-*"), *root.glob(f".{category}.old-*")]:
        if not leftover.is_dir():
            continue
        try:
            newest = max([leftover.stat().st_mtime] + [p.stat().st_mtime for p in leftover.rglob("*")])
        except OSError:  # removed meanwhile by the process that made it
            continue
        if now - newest > STALE_AFTER:
            print(f"Removing {leftover}, left over from an interrupted run.")
            shutil.rmtree(leftover, ignore_errors=True)


def _manifest(category: str, size: int, n_train: int, n_test_good: int, n_test_defect: int,
              seed: int) -> dict:
    info = category_info(category)
    return {
        "format": "anolearn-synthetic",
        "format_version": FORMAT_VERSION,
        "category": category,
        "kind": info.kind,
        "size": int(size),
        "n_train": int(n_train),
        "n_test_good": int(n_test_good),
        "n_test_defect": int(n_test_defect),
        "seed": int(seed),
        "defects": split_counts(int(n_test_defect), info.defects),
    }


def read_manifest(folder: Path) -> dict | None:
    """The manifest of a written category folder, or ``None`` if there is none (or it is unreadable)."""
    try:
        return json.loads((Path(folder) / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


def _generate(folder: Path, manifest: dict, progress: bool) -> None:
    category, size, seed = manifest["category"], manifest["size"], manifest["seed"]
    digits = max(3, len(str(max(manifest["n_train"], manifest["n_test_good"],
                                *manifest["defects"].values(), 1) - 1)))
    jobs = [("train/good", manifest["n_train"]), ("test/good", manifest["n_test_good"])]
    jobs += [(f"test/{d}", n) for d, n in manifest["defects"].items()]
    total = sum(n for _, n in jobs)
    with tqdm(total=total, desc=f"synthetic {category} {size}px", unit="img",
              disable=not progress, leave=False) as bar:
        for split, n in jobs:
            out = folder / split
            out.mkdir(parents=True, exist_ok=True)
            defect = split.split("/")[1]
            gt = folder / "ground_truth" / defect
            if defect != "good":
                gt.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                rng = image_rng(seed, category, split, i)
                name = f"{i:0{digits}d}"
                if defect == "good":
                    image, _ = render_normal(category, size, rng)
                else:
                    sample = render_pair(category, defect, size, rng)
                    image = sample.image
                    _write_png(gt / f"{name}_mask.png", sample.mask.astype(np.uint8) * 255)
                _write_png(out / f"{name}.png", image)
                bar.update(1)
    # the manifest goes last: a folder with a manifest is complete
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def write_category(root: str | Path, category: str, size: int = 256, n_train: int = 200,
                   n_test_good: int = 40, n_test_defect: int = 80, seed: int = 0,
                   overwrite: bool = False, progress: bool = True) -> Path:
    """Write one synthetic category in the MVTec AD layout (atomically).

    Args:
        root: folder that holds the category folders (created if missing).
        category: a name from ``CATEGORIES``.
        size: image side in pixels.
        n_train: normal training images.
        n_test_good: normal test images.
        n_test_defect: defective test images, spread evenly over the category's defects.
        seed: non-negative integer; same seed and parameters -> byte-identical files.
        overwrite: regenerate even if an identical manifest is already there.
        progress: show a tqdm bar while writing.

    Returns:
        The category folder ``root / category``.

    Raises:
        ValueError: a size below ``MIN_SIZE`` (32), no training image, a negative count or seed
            (before any folder is created).

    Example:
        >>> write_category("/tmp/syn", "wood", size=64, n_train=4, n_test_good=2,
        ...                n_test_defect=5, progress=False)
        PosixPath('/tmp/syn/wood')
    """
    root = Path(root).expanduser()
    check_parameters(size, n_train, n_test_good, n_test_defect, seed)
    manifest = _manifest(category, size, n_train, n_test_good, n_test_defect, seed)
    final = root / category
    if root.is_dir():
        _remove_stale_temps(root, category)
    if final.exists() and not overwrite:
        old = read_manifest(final)
        if old == manifest:
            return final
        if old is None:
            print(f"{final} exists without a readable manifest.json: regenerating it.")
        else:
            changed = sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))
            print(f"{final} was written with other parameters ({', '.join(changed)}): regenerating it.")
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{category}.tmp-", dir=root))
    try:
        _generate(tmp, manifest, progress)
        if final.exists():
            trash = root / f".{category}.old-{uuid.uuid4().hex[:8]}"
            final.rename(trash)
            tmp.rename(final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            try:
                tmp.rename(final)
            except OSError:
                # another process finished the same category first; keep theirs if it matches
                if read_manifest(final) != manifest:
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def default_root(profile: Profile) -> Path:
    """``<data>/synthetic/<size>px-<profile>``, e.g. ``~/.cache/anolearn/synthetic/128px-quick``."""
    return data_root() / "synthetic" / profile.synthetic_folder


def ensure_synthetic(categories: str | list[str] | tuple[str, ...] | None = None,
                     profile: Profile | str | None = None, root: str | Path | None = None,
                     seed: int | None = None) -> Path:
    """Make sure the synthetic dataset of a profile is on disk; write what is missing.

    Args:
        categories: one name or several; ``None`` means all of ``CATEGORIES``.
        profile: a :class:`~anolearn.config.Profile` or its name; ``None`` is the active one.
            Its ``synthetic_size``, ``n_train``, ``n_test_good``, ``n_test_defect`` and ``seed``
            are used.
        root: folder for the category folders; default :func:`default_root`.
        seed: overrides ``profile.seed``.

    Returns:
        The folder that holds the category folders (pass it to the MVTec-style loader).

    Example:
        >>> root = ensure_synthetic(["wood", "washer"], profile="quick")  # doctest: +SKIP
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    if categories is None:
        names = list(CATEGORIES)
    elif isinstance(categories, str):
        names = [categories]
    else:
        names = list(categories)
    for name in names:
        category_info(name)
    out = Path(root).expanduser() if root is not None else default_root(prof)
    seed = prof.seed if seed is None else seed
    for name in tqdm(names, desc="synthetic categories", unit="cat", disable=len(names) < 2):
        write_category(out, name, size=prof.synthetic_size, n_train=prof.n_train,
                       n_test_good=prof.n_test_good, n_test_defect=prof.n_test_defect,
                       seed=seed, progress=True)
    return out
