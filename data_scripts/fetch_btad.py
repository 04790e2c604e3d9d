#!/usr/bin/env python
"""Download BTAD (beanTech Anomaly Detection) and convert it to the MVTec AD layout.

What:     3 industrial products (01, 02, 03): 2,540 images, 1,799 normal training images
          and 741 test images (290 defective, with pixel masks); 1600x1600, 600x600 and
          800x600 px. Mishra et al., "VT-ADL", ISIE 2021.
Download: btad.zip, 1,229,193,337 bytes (1.2 GB), MD5 c1fa4d56ac50dd50908ce04e81037a8e
          (no SHA-256 is published for BTAD).
Licence:  CC BY-SA 4.0.
Where:    the zip is unpacked to --raw-root (default <root>_raw) and converted to --root
          (default $ANOLEARN_DATA/btad): <root>/{01,02,03}/{train/good, test/good, test/ko,
          ground_truth/ko}; ok -> good, .bmp -> .png, masks renamed <stem>_mask.png and
          binarised to 0/255. A defective image without a mask is left out and reported.

Running the command again resumes the download, skips finished products, and does
nothing once everything is complete.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

try:
    import anolearn  # noqa: F401
except ImportError:  # running from a checkout without installing: use the repository's copy
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anolearn.data.convert import ConversionError, convert_btad
from anolearn.data.download import BTAD, DownloadError, ExtractError, UnsafeArchiveError, fetch
from anolearn.paths import dataset_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=None,
                        help=f"converted dataset folder (default: {dataset_dir('btad')})")
    parser.add_argument("--raw-root", type=Path, default=None,
                        help="folder for the unpacked zip (default: <root>_raw)")
    parser.add_argument("--download-dir", type=Path, default=None,
                        help="where the zip is saved (default: <root>/../downloads)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes for the image conversion (default: all CPU cores)")
    parser.add_argument("--delete-archive", action="store_true", help="delete the zip after unpacking")
    parser.add_argument("--delete-raw", action="store_true",
                        help="delete the unpacked raw folder after a successful conversion")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    root = (args.root or dataset_dir("btad")).expanduser().resolve()
    raw_root = (args.raw_root or root.with_name(root.name + "_raw")).expanduser().resolve()
    progress = not args.no_progress

    print(f"BTAD ({BTAD.size_text}, licence {BTAD.licence}) -> {root}")
    try:
        fetch(BTAD, raw_root, download_dir=args.download_dir or root.parent / "downloads",
              keep_archive=not args.delete_archive, progress=progress)
        result = convert_btad(raw_root, root, workers=args.workers, progress=progress)
    except (DownloadError, ExtractError, UnsafeArchiveError, ConversionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted. Run the same command again to continue where it stopped.", file=sys.stderr)
        return 130

    for product, counts in sorted(result.counts.items()):
        print(f"  {product}: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())))
    for path in result.missing_masks:
        print(f"warning: {path} has no mask and was left out of the test set.", file=sys.stderr)
    if args.delete_raw:
        shutil.rmtree(raw_root)
        print(f"Deleted {raw_root}.")

    print(f"\nBTAD is ready in {root}")
    print("Next, load a product:")
    print(f"  python -c \"from anolearn.data.mvtec import MVTecDataset; "
          f"print(MVTecDataset({str(root)!r}, '01', split='test'))\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
