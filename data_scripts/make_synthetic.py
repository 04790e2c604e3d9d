#!/usr/bin/env python
"""Write anolearn's built-in synthetic anomaly dataset (MVTec AD layout) to disk.

Nothing is downloaded: every image is rendered from a seed. Examples::

    python data_scripts/make_synthetic.py                          # active profile, all categories
    python data_scripts/make_synthetic.py --profile full           # 256 px, full counts
    python data_scripts/make_synthetic.py --categories wood,washer --size 96 --root /tmp/syn

Categories whose folder already holds an identical ``manifest.json`` are skipped. Bad options
(a size below 32 px, an unknown category) stop with one ``error:`` line and exit status 2,
before any folder is created; temporary folders left by a run that was killed are removed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import anolearn  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anolearn.config import PROFILE_NAMES, get_profile  # noqa: E402
from anolearn.data.synthetic import CATEGORIES, default_root, write_category  # noqa: E402
from anolearn.data.synthetic.render import MIN_SIZE  # noqa: E402
from anolearn.data.synthetic.writer import check_parameters  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", choices=PROFILE_NAMES, default=None,
                   help="sizes and counts to use (default: $ANOLEARN_PROFILE or quick)")
    p.add_argument("--root", type=Path, default=None,
                   help="folder that will hold the category folders "
                        "(default: <data>/synthetic/<size>px-<profile>)")
    p.add_argument("--size", type=int, default=None,
                   help=f"image side in pixels, >= {MIN_SIZE} (default: the profile's)")
    p.add_argument("--categories", default=None,
                   help=f"comma-separated subset of {','.join(CATEGORIES)} (default: all)")
    p.add_argument("--seed", type=int, default=None, help="generation seed (default: the profile's)")
    p.add_argument("--overwrite", action="store_true", help="regenerate even if up to date")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    try:
        profile = get_profile(args.profile)
    except ValueError as err:  # ANOLEARN_PROFILE names no profile
        _fail(str(err))
    if args.size is not None:
        profile = get_profile(profile.name, synthetic_size=args.size)
    names = list(CATEGORIES) if not args.categories else [
        c.strip() for c in args.categories.split(",") if c.strip()]
    unknown = [c for c in names if c not in CATEGORIES]
    if unknown:
        _fail(f"--categories: unknown {', '.join(unknown)}; choose from {', '.join(CATEGORIES)}.")
    seed = profile.seed if args.seed is None else args.seed
    try:
        check_parameters(profile.synthetic_size, profile.n_train, profile.n_test_good, profile.n_test_defect, seed)
    except ValueError as err:  # before anything is created
        option = "--size" if str(err).startswith("size") else "--seed" if str(err).startswith("seed") else "profile"
        _fail(f"{option}: {err}")
    if args.root is not None and args.root.expanduser().exists() and not args.root.expanduser().is_dir():
        _fail(f"--root {args.root} is a file; give a folder.")
    root = args.root.expanduser() if args.root else default_root(profile)
    for name in names:
        folder = write_category(root, name, size=profile.synthetic_size, n_train=profile.n_train,
                                n_test_good=profile.n_test_good,
                                n_test_defect=profile.n_test_defect, seed=seed,
                                overwrite=args.overwrite, progress=not args.quiet)
        print(f"{name}: {folder}")
    print(f"Synthetic dataset ({profile.synthetic_size}px, profile {profile.name}, seed {seed}) "
          f"written to {root}")
    return root


if __name__ == "__main__":
    main()
