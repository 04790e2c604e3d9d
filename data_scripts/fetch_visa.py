#!/usr/bin/env python
"""Download VisA and convert it to the MVTec AD layout with the standard one-class split.

What:     12 objects (PCBs, capsules, candles, macaroni, cashews, chewing gum, fryums),
          10,821 images (9,621 normal, 1,200 anomalous with pixel masks), about 1.5k x 1k px.
          Zou et al., "SPot-the-Difference ...", ECCV 2022 (github.com/amazon-science/spot-diff).
Download: VisA_20220922.tar, 1,929,840,640 bytes (1.9 GB), SHA-256
          2eb8690c803ab37de0324772964100169ec8ba1fa3f7e94291c9ca673f40f362.
Licence:  CC BY 4.0 (the official README and LICENSE-DATASET in the archive).
Where:    the archive is unpacked to --raw-root (default <root>_raw) and converted, following
          split_csv/1cls.csv, to --root (default $ANOLEARN_DATA/visa):
          <root>/<object>/{train/good, test/good, test/bad, ground_truth/bad}, images
          numbered 000.png, 001.png, ... and masks 000_mask.png binarised to 0/255
          (VisA's raw masks use small values such as 1 that look black).
          Expected totals: 8,659 training and 2,162 test images (962 good, 1,200 bad).

Disk: converting JPEG to PNG makes the images about ten times larger (tens of GB in all);
--keep-jpeg keeps the JPEG files instead (hard links, no extra space). The conversion of
~10,000 large images takes a while; --workers uses several processes.
Running the command again resumes the download, skips finished objects, and does nothing
once everything is complete.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

try:
    import anolearn  # noqa: F401
except ImportError:  # running from a checkout without installing: use the repository's copy
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anolearn.data.convert import convert_visa
from anolearn.data.download import VISA, fetch
from anolearn.data.fetch_cli import fetch_parser, print_ready, resolve_roots, run_guarded

EXPECTED_TOTALS = {"train/good": 8659, "test/good": 962, "test/bad": 1200}


def main(argv: list[str] | None = None) -> int:
    parser = fetch_parser(__doc__, "visa", raw=True, workers=True)
    parser.add_argument("--keep-jpeg", action="store_true", help="keep images as JPEG instead of PNG")
    args = parser.parse_args(argv)
    root, raw_root = resolve_roots(args, "visa")
    progress = not args.no_progress

    def fetch_and_convert():
        fetch(VISA, raw_root, download_dir=args.download_dir or root.parent / "downloads",
              keep_archive=not args.delete_archive, progress=progress)
        return convert_visa(raw_root, root, keep_jpeg=args.keep_jpeg, workers=args.workers, progress=progress)

    print(f"VisA ({VISA.size_text}, licence {VISA.licence}) -> {root}")
    result, status = run_guarded(fetch_and_convert)
    if status:
        return status

    totals: dict[str, int] = {}
    for counts in result.counts.values():
        for folder, n in counts.items():
            totals[folder] = totals.get(folder, 0) + n
    print(f"Converted {len(result.converted)} objects, {len(result.skipped)} were already done: "
          + ", ".join(f"{k} {v:,}" for k, v in sorted(totals.items())))
    for folder, n in EXPECTED_TOTALS.items():
        if totals.get(folder, 0) != n:
            print(f"warning: {folder} has {totals.get(folder, 0):,} images in all, expected {n:,}.", file=sys.stderr)
    if args.delete_raw:
        shutil.rmtree(raw_root)
        print(f"Deleted {raw_root}.")
    print_ready("VisA", root, "candle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
