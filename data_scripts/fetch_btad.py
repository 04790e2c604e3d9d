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

import shutil
import sys
from pathlib import Path

try:
    import anolearn  # noqa: F401
except ImportError:  # running from a checkout without installing: use the repository's copy
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anolearn.data.convert import convert_btad
from anolearn.data.download import BTAD, fetch
from anolearn.data.fetch_cli import fetch_parser, print_ready, resolve_roots, run_guarded


def main(argv: list[str] | None = None) -> int:
    args = fetch_parser(__doc__, "btad", raw=True, workers=True).parse_args(argv)
    root, raw_root = resolve_roots(args, "btad")
    progress = not args.no_progress

    def fetch_and_convert():
        fetch(BTAD, raw_root, download_dir=args.download_dir or root.parent / "downloads",
              keep_archive=not args.delete_archive, progress=progress)
        return convert_btad(raw_root, root, workers=args.workers, progress=progress)

    print(f"BTAD ({BTAD.size_text}, licence {BTAD.licence}) -> {root}")
    result, status = run_guarded(fetch_and_convert)
    if status:
        return status

    for product, counts in sorted(result.counts.items()):
        print(f"  {product}: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())))
    for path in result.missing_masks:
        print(f"warning: {path} has no mask and was left out of the test set.", file=sys.stderr)
    if args.delete_raw:
        shutil.rmtree(raw_root)
        print(f"Deleted {raw_root}.")
    print_ready("BTAD", root, "01")
    return 0


if __name__ == "__main__":
    sys.exit(main())
