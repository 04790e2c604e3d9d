#!/usr/bin/env python
"""Unpack Retinal-OCT (Kermany et al. 2018) from a local download and convert it for SSM.

What:     retinal OCT B-scans (grayscale JPEG, variable size) in four classes: NORMAL and
          three diseases, CNV, DME and DRUSEN. Kaggle's OCT2017 split has 83,484 training
          images (26,315 NORMAL) and 968 test images (242 per class). Kermany et al., Cell
          172(5), 2018; used by SSM as a medical anomaly-detection benchmark.
Get it:   there is no public direct URL: Kaggle needs a login. Download
            https://www.kaggle.com/paultimothymooney/kermany2018   ("Download" -> archive.zip)
          or with the Kaggle command-line tool and your API token:
            kaggle datasets download -d paultimothymooney/kermany2018
          then pass the zip (or an OCT2017.tar.gz, or a folder you already extracted) with
          --archive. No checksum is published, so none can be verified; the script prints
          the archive's SHA-256 so that you can record it. (The Mendeley Data release,
          https://data.mendeley.com/datasets/rscbjbr9sj/3, has a different split with 250
          test images per class; use the Kaggle OCT2017 split to compare with SSM.)
Licence:  CC BY 4.0 (Mendeley Data record).
Where:    the archive is unpacked to --raw-root (default <root>_raw) and converted to --root
          (default $ANOLEARN_DATA/retinal_oct):
            <root>/oct/train/good/               NORMAL images of train (training set)
            <root>/oct/test/good/                NORMAL images of test
            <root>/oct/test/{cnv,dme,drusen}/    diseased images of test (the anomalies)
          The dataset has NO pixel masks (no ground_truth folder): only image-level
          metrics (image AUROC) apply. The val split (8 images per class) is not used.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

try:
    import anolearn  # noqa: F401
except ImportError:  # running from a checkout without installing: use the repository's copy
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anolearn.data.convert import ConversionError, convert_retinal_oct
from anolearn.data.download import (
    ExtractError, UnsafeArchiveError, file_digest, read_marker, safe_extract,
)
from anolearn.paths import dataset_dir

KAGGLE_PAGE = "https://www.kaggle.com/paultimothymooney/kermany2018"
# Kaggle OCT2017 counts of the folders we use.
EXPECTED = {"train/good": 26315, "test/good": 242, "test/cnv": 242, "test/dme": 242, "test/drusen": 242}


def _already_extracted(archive: Path, raw_root: Path) -> bool:
    # Avoids hashing a multi-gigabyte archive again when only the conversion is left to do.
    marker = read_marker(raw_root)
    return (bool(marker) and marker.get("archive") == archive.name
            and marker.get("archive_size") == archive.stat().st_size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", type=Path, default=None,
                        help="the downloaded archive.zip / OCT2017.tar.gz, or a folder holding the extracted "
                             "OCT2017 (with train/ and test/)")
    parser.add_argument("--root", type=Path, default=None,
                        help=f"converted dataset folder (default: {dataset_dir('retinal_oct')})")
    parser.add_argument("--raw-root", type=Path, default=None,
                        help="folder for the unpacked archive (default: <root>_raw)")
    parser.add_argument("--delete-raw", action="store_true",
                        help="delete the unpacked raw folder after a successful conversion")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    root = (args.root or dataset_dir("retinal_oct")).expanduser().resolve()
    raw_root = (args.raw_root or root.with_name(root.name + "_raw")).expanduser().resolve()
    progress = not args.no_progress

    marker = read_marker(root / "oct")
    if marker and marker.get("kind") == "convert":
        print(f"Retinal-OCT is already converted in {root}.")
    else:
        if args.archive is None:
            parser.error(f"--archive is required: download the data from {KAGGLE_PAGE} first (see --help).")
        archive = args.archive.expanduser().resolve()
        try:
            if archive.is_dir():
                source = archive
            elif archive.is_file() and _already_extracted(archive, raw_root):
                print(f"{archive.name} is already extracted in {raw_root}.")
                source = raw_root
            elif archive.is_file():
                print(f"Computing the SHA-256 of {archive.name} (no checksum is published; record this one)...")
                digest = file_digest(archive, "sha256", progress=progress)
                print(f"  SHA-256 {digest}  {archive.name}")
                safe_extract(archive, raw_root, digest=digest, progress=progress)
                source = raw_root
            else:
                print(f"error: {archive} does not exist. Download it from {KAGGLE_PAGE} (see --help).",
                      file=sys.stderr)
                return 1
            convert_retinal_oct(source, root, progress=progress)
        except (ExtractError, UnsafeArchiveError, ConversionError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("\nInterrupted. Run the same command again; nothing half-written was kept.", file=sys.stderr)
            return 130
        if args.delete_raw and source == raw_root:
            shutil.rmtree(raw_root)
            print(f"Deleted {raw_root}.")

    counts = (read_marker(root / "oct") or {}).get("counts", {})
    print("  " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())))
    different = {k: (counts.get(k, 0), n) for k, n in EXPECTED.items() if counts.get(k, 0) != n}
    if different:
        print("warning: these counts differ from Kaggle's OCT2017 split used by SSM (found, expected): "
              + ", ".join(f"{k} {a:,} vs {b:,}" for k, (a, b) in different.items()), file=sys.stderr)
    print(f"\nRetinal-OCT is ready in {root} (image labels only: no pixel masks).")
    print("Next, load it:")
    print(f"  python -c \"from anolearn.data.mvtec import MVTecDataset; "
          f"print(MVTecDataset({str(root)!r}, 'oct', split='test'))\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
