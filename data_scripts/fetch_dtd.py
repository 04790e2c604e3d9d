#!/usr/bin/env python
"""Download DTD, the Describable Textures Dataset (the anomaly source of DRAEM and SGSF).

What:     5,640 texture photographs, 47 categories x 120 images, JPEG of varying size
          (about 300 to 640 px a side).
          DRAEM-style methods paste pieces of these textures into normal images to forge
          training anomalies. Cimpoi et al., "Describing Textures in the Wild", CVPR 2014.
Download: dtd-r1.0.1.tar.gz, about 600 MB, SHA-256
          e42855a52a4950a3b59612834602aa253914755c95b0cff9ead6d07395f8e205.
Licence:  "made available to the computer vision community for research purposes" --
          research use only; do not redistribute. https://www.robots.ox.ac.uk/~vgg/data/dtd/
Where:    --root (default $ANOLEARN_DATA/dtd); the images are in
          <root>/dtd/images/<category>/<category>_NNNN.jpg (plus dtd/labels and dtd/imdb).

Running the command again resumes the download, and does nothing once it is complete.
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
    import anolearn  # noqa: F401
except ImportError:  # running from a checkout without installing: use the repository's copy
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anolearn.data.download import DTD, fetch
from anolearn.data.fetch_cli import fetch_parser, resolve_roots, run_guarded


def main(argv: list[str] | None = None) -> int:
    args = fetch_parser(__doc__, "dtd").parse_args(argv)
    root, _ = resolve_roots(args, "dtd")

    print(f"DTD ({DTD.size_text}, licence: {DTD.licence}) -> {root}")
    _, status = run_guarded(lambda: fetch(DTD, root, download_dir=args.download_dir,
                                          keep_archive=not args.delete_archive, progress=not args.no_progress))
    if status:
        return status

    # DTD is an anomaly *source* (textures), not a dataset in MVTec layout: report what is there.
    images = root / "dtd" / "images"
    n_cat = sum(1 for p in images.iterdir() if p.is_dir()) if images.is_dir() else 0
    n_img = len(list(images.glob("*/*.jpg")))
    print(f"\nDTD is ready: {n_img:,} images in {n_cat} categories under {images}")
    if (n_cat, n_img) != (47, 5640):
        print("warning: expected 5,640 images in 47 categories.", file=sys.stderr)
    print("Next, look at a few textures:")
    print(f"  python -c \"from pathlib import Path; print(sorted(Path({str(images)!r}).glob('*/*.jpg'))[:3])\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
