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

import shutil
import sys
from pathlib import Path

try:
    import anolearn  # noqa: F401
except ImportError:  # running from a checkout without installing: use the repository's copy
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anolearn.data.convert import convert_retinal_oct
from anolearn.data.download import file_digest, read_marker, safe_extract
from anolearn.data.fetch_cli import fetch_parser, print_ready, resolve_roots, run_guarded

KAGGLE_PAGE = "https://www.kaggle.com/paultimothymooney/kermany2018"
# Kaggle OCT2017 counts of the folders we use.
EXPECTED = {"train/good": 26315, "test/good": 242, "test/cnv": 242, "test/dme": 242, "test/drusen": 242}


def _already_extracted(archive: Path, raw_root: Path) -> bool:
    # Avoids hashing a multi-gigabyte archive again when only the conversion is left to do.
    marker = read_marker(raw_root)
    return (bool(marker) and marker.get("archive") == archive.name
            and marker.get("archive_size") == archive.stat().st_size)


def main(argv: list[str] | None = None) -> int:
    # No direct download: Kaggle needs a login, so the reader passes the archive they fetched.
    parser = fetch_parser(__doc__, "retinal_oct", download=False, raw=True)
    parser.add_argument("--archive", type=Path, default=None,
                        help="the downloaded archive.zip / OCT2017.tar.gz, or a folder holding the extracted "
                             "OCT2017 (with train/ and test/)")
    args = parser.parse_args(argv)
    root, raw_root = resolve_roots(args, "retinal_oct")
    progress = not args.no_progress

    marker = read_marker(root / "oct")
    if marker and marker.get("kind") == "convert":
        print(f"Retinal-OCT is already converted in {root}.")
    else:
        if args.archive is None:
            parser.error(f"--archive is required: download the data from {KAGGLE_PAGE} first (see --help).")
        archive = args.archive.expanduser().resolve()
        if not archive.exists():
            print(f"error: {archive} does not exist. Download it from {KAGGLE_PAGE} (see --help).", file=sys.stderr)
            return 1

        def extract_and_convert() -> Path:
            if archive.is_dir():
                source = archive
            elif _already_extracted(archive, raw_root):
                print(f"{archive.name} is already extracted in {raw_root}.")
                source = raw_root
            else:
                print(f"Computing the SHA-256 of {archive.name} (no checksum is published; record this one)...")
                digest = file_digest(archive, "sha256", progress=progress)
                print(f"  SHA-256 {digest}  {archive.name}")
                safe_extract(archive, raw_root, digest=digest, progress=progress)
                source = raw_root
            convert_retinal_oct(source, root, progress=progress)
            return source

        source, status = run_guarded(extract_and_convert)
        if status:
            return status
        if args.delete_raw and source == raw_root:
            shutil.rmtree(raw_root)
            print(f"Deleted {raw_root}.")

    counts = (read_marker(root / "oct") or {}).get("counts", {})
    print("  " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())))
    different = {k: (counts.get(k, 0), n) for k, n in EXPECTED.items() if counts.get(k, 0) != n}
    if different:
        print("warning: these counts differ from Kaggle's OCT2017 split used by SSM (found, expected): "
              + ", ".join(f"{k} {a:,} vs {b:,}" for k, (a, b) in different.items()), file=sys.stderr)
    print_ready("Retinal-OCT", root, "oct", "image labels only: no pixel masks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
