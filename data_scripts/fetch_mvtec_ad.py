#!/usr/bin/env python
"""Download and unpack MVTec AD, the standard benchmark of industrial anomaly detection.

What:     15 categories (5 textures, 10 objects): 3,629 normal training images and 1,725
          test images (467 good, 1,258 defective, with pixel masks), PNG, 700-1024 px.
          Bergmann et al., CVPR 2019 / IJCV 2021.
Download: mvtec_anomaly_detection.tar.xz, 5,264,982,680 bytes (5.3 GB), SHA-256
          cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d;
          about 4.9 GB once unpacked (keep about 11 GB free while both exist).
Licence:  CC BY-NC-SA 4.0 -- non-commercial use only; see license.txt inside and
          https://www.mvtec.com/company/research/datasets/mvtec-ad
Where:    --root (default $ANOLEARN_DATA/mvtec_ad), laid out as
          <root>/<category>/{train/good, test/<defect>, ground_truth/<defect>};
          the archive is kept in <root>/../downloads unless --delete-archive.

The download resumes if interrupted (run the command again) and is verified before it
is unpacked; running the command again on complete data does nothing.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

try:
    import anolearn  # noqa: F401
except ImportError:  # running from a checkout without installing: use the repository's copy
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anolearn.data.download import MVTEC_AD, fetch
from anolearn.data.fetch_cli import fetch_parser, print_ready, resolve_roots, run_guarded
from anolearn.paths import dataset_dir

# Per category: (train good, test good, test defective), from the MVTec AD paper.
EXPECTED = {
    "carpet": (280, 28, 89), "grid": (264, 21, 57), "leather": (245, 32, 92), "tile": (230, 33, 84),
    "wood": (247, 19, 60), "bottle": (209, 20, 63), "cable": (224, 58, 92), "capsule": (219, 23, 109),
    "hazelnut": (391, 40, 70), "metal_nut": (220, 22, 93), "pill": (267, 26, 141), "screw": (320, 41, 119),
    "toothbrush": (60, 12, 30), "transistor": (213, 60, 40), "zipper": (240, 32, 119),
}


def check_counts(root: Path) -> list[str]:
    """Compare the image counts on disk with the published ones; returns the differences."""
    problems = []
    for cat, (n_train, n_good, n_bad) in EXPECTED.items():
        folder = root / cat
        train = len(list(folder.glob("train/good/*.png")))
        good = len(list(folder.glob("test/good/*.png")))
        bad = len([p for p in folder.glob("test/*/*.png") if p.parent.name != "good"])
        if (train, good, bad) != (n_train, n_good, n_bad):
            problems.append(f"{cat}: found {train}/{good}/{bad} (train/test good/test defective), "
                            f"expected {n_train}/{n_good}/{n_bad}")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = fetch_parser(__doc__, "mvtec_ad").parse_args(argv)
    root, _ = resolve_roots(args, "mvtec_ad")

    print(f"MVTec AD ({MVTEC_AD.size_text}, licence {MVTEC_AD.licence}) -> {root}")
    _, status = run_guarded(lambda: fetch(MVTEC_AD, root, download_dir=args.download_dir,
                                          keep_archive=not args.delete_archive, progress=not args.no_progress))
    if status:
        return status

    problems = check_counts(root)
    for line in problems:
        print(f"warning: {line}", file=sys.stderr)
    print_ready("MVTec AD", root, "bottle",
                "with the differences listed above" if problems else "all 15 categories complete")
    if root != dataset_dir("mvtec_ad").resolve() and root.name == "mvtec_ad":
        print(f"(set ANOLEARN_DATA={shlex.quote(str(root.parent))} so that the book finds it by default)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
