#!/usr/bin/env python
"""Download KolektorSDD (Kolektor Surface-Defect Dataset) and convert it to the MVTec AD layout.

What:     grayscale photographs of the plastic embedding of electrical commutators, some
          with small cracks: 50 items (kos01 ... kos50), each photographed as 8 surfaces
          (Part0 ... Part7, 500 px wide, 1240-1282 px tall) with a label image per surface.
          Tabernik, Sela, Skvarc and Skocaj, "Segmentation-based deep-learning approach for
          surface-defect detection", Journal of Intelligent Manufacturing 31 (2020) 759-776.
          https://www.vicos.si/resources/kolektorsdd/
Download: KolektorSDD.zip, about 100 MB, from data.vicos.si (where the dataset page's link
          leads). The authors publish no checksum; the archive is checked against the SHA-256
          that anomalib's Kolektor datamodule checks,
          65dc621693418585de9c4467d1340ea7958a6181816f0dc2883a1e8b61f9d4dc.
Licence:  CC BY-NC-SA 4.0 (non-commercial use only; share derived data under the same licence).
Where:    the zip is unpacked to --raw-root (default <root>_raw) and converted to --root
          (default $ANOLEARN_DATA/kolektorsdd) as one category, commutator:
            train/good            defect-free parts of items kos01-kos35
            test/good             defect-free parts of items kos36-kos50
            test/defect           every defective part (a label image with any non-zero pixel)
            ground_truth/defect   NNN_mask.png for test/defect/NNN.png, binarised to 0/255
          The split follows the items, so the parts of one commutator are never divided
          between training and test. Images are resized so that the long side has 512 px
          (bilinear; masks nearest neighbour after binarising), saved as 8-bit grayscale PNG;
          --long-side 0 keeps the originals. source_files.csv names each file's original.
Duplicates: a part with the same pixels as an earlier part is left out and reported. A
          public copy of the dataset (GitHub songpeixuan22/Unet-Defect-Detection-in-kolektorSSD)
          repeats kos01 as kos26, kos27 as kos34, kos38 as kos39 (its parts shifted by two) and
          kos21's Part6 as its Part7; without them it gives 230 training, 97 good and 48
          defective test images (47 items). Whether the official archive holds the same
          repeats has not been checked here (no download was possible); the counts and the
          parts left out are printed, so that you can compare.

Then: python -m anolearn train --method feature_knn --data kolektorsdd:commutator --out runs/kos_knn --evaluate
Running the command again resumes the download, skips a finished conversion, and does
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

from anolearn.data.convert import KOLEKTOR_CATEGORY, convert_kolektorsdd
from anolearn.data.download import KOLEKTORSDD, fetch
from anolearn.data.fetch_cli import fetch_parser, print_ready, resolve_roots, run_guarded

#: What the public copy named in the docstring gives after its duplicates are left out.
PUBLIC_COPY_COUNTS = {"train/good": 230, "test/good": 97, "test/defect": 48, "ground_truth/defect": 48}


def main(argv: list[str] | None = None) -> int:
    parser = fetch_parser(__doc__, "kolektorsdd", raw=True, workers=True)
    parser.add_argument("--long-side", type=int, default=512,
                        help="resize so that the long side has this many pixels (default 512; 0 keeps the originals)")
    args = parser.parse_args(argv)
    if args.long_side < 0:
        parser.error(f"--long-side must be 0 (keep the originals) or a number of pixels, got {args.long_side}.")
    root, raw_root = resolve_roots(args, "kolektorsdd")
    progress = not args.no_progress

    def fetch_and_convert():
        fetch(KOLEKTORSDD, raw_root, download_dir=args.download_dir or root.parent / "downloads",
              keep_archive=not args.delete_archive, progress=progress)
        return convert_kolektorsdd(raw_root, root, long_side=args.long_side, workers=args.workers, progress=progress)

    print(f"KolektorSDD ({KOLEKTORSDD.size_text}, licence {KOLEKTORSDD.licence}) -> {root}")
    result, status = run_guarded(fetch_and_convert)
    if status:
        return status

    counts = result.counts[KOLEKTOR_CATEGORY]
    done = "converted" if result.converted else "already converted"
    print(f"{KOLEKTOR_CATEGORY} ({done}): " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())))
    if result.duplicates:
        print(f"Left out {len(result.duplicates)} duplicate parts:")
        for line in result.duplicates:
            print(f"  {line}")
    if counts != PUBLIC_COPY_COUNTS:
        print("note: the public copy named in --help gives " + ", ".join(f"{k} {v}" for k, v in PUBLIC_COPY_COUNTS.items())
              + "; results on this conversion are not directly comparable with results on that one.")
    if args.delete_raw:
        shutil.rmtree(raw_root)
        print(f"Deleted {raw_root}.")
    print_ready("KolektorSDD", root, KOLEKTOR_CATEGORY, f"licence {KOLEKTORSDD.licence}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
