"""What every ``data_scripts/fetch_*.py`` command shares: options, error handling, closing lines.

Each script only says what is particular to its dataset (which archive, which converter,
which counts to check); the common parts live here so that all scripts behave alike:

* the same options (``--root``, ``--download-dir``, ``--delete-archive``, ``--raw-root``,
  ``--delete-raw``, ``--workers``, ``--no-progress``) with the same defaults;
* a data error (download, checksum, unsafe archive, extraction, conversion) is printed as one
  ``error: ...`` line with exit status 1, and Ctrl-C exits with 130 and says that re-running
  resumes (nothing half-written is ever kept);
* the same closing lines: where the data is and one command to load it.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from ..paths import dataset_dir
from .convert import ConversionError
from .download import DownloadError, ExtractError, UnsafeArchiveError

# ChecksumError is a DownloadError, so it is covered too.
FETCH_ERRORS = (DownloadError, ExtractError, UnsafeArchiveError, ConversionError)


def fetch_parser(doc: str | None, dataset: str, *, download: bool = True, raw: bool = False,
                 workers: bool = False) -> argparse.ArgumentParser:
    """The options shared by the fetch scripts.

    Args:
        doc: the script's docstring (shown by ``--help``).
        dataset: key of :func:`anolearn.paths.dataset_dir` (``"mvtec_ad"``, ``"visa"``, ...).
        download: add ``--download-dir`` and ``--delete-archive``.
        raw: the archive is unpacked to a raw folder and then converted: add ``--raw-root``
            and ``--delete-raw``.
        workers: add ``--workers`` (processes for the image conversion).
    """
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = "converted dataset folder" if raw else "dataset folder"
    parser.add_argument("--root", type=Path, default=None, help=f"{what} (default: {dataset_dir(dataset)})")
    if raw:
        parser.add_argument("--raw-root", type=Path, default=None,
                            help="folder for the unpacked archive (default: <root>_raw)")
    if download:
        parser.add_argument("--download-dir", type=Path, default=None,
                            help="where the archive is saved (default: <root>/../downloads)")
        parser.add_argument("--delete-archive", action="store_true", help="delete the archive after unpacking")
    if workers:
        parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                            help="processes for the image conversion (default: all CPU cores)")
    if raw:
        parser.add_argument("--delete-raw", action="store_true",
                            help="delete the unpacked raw folder after a successful conversion")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def resolve_roots(args: argparse.Namespace, dataset: str) -> tuple[Path, Path | None]:
    """``(root, raw_root)`` as absolute paths; ``raw_root`` is None when the parser has no ``--raw-root``."""
    root = (args.root or dataset_dir(dataset)).expanduser().resolve()
    if not hasattr(args, "raw_root"):
        return root, None
    return root, (args.raw_root or root.with_name(root.name + "_raw")).expanduser().resolve()


def run_guarded(step: Callable[[], object]) -> tuple[object, int]:
    """Run ``step()``; return ``(its result, 0)``, or ``(None, exit status)`` after a clear message."""
    try:
        return step(), 0
    except FETCH_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return None, 1
    except KeyboardInterrupt:
        print("\nInterrupted. Run the same command again to resume; nothing half-written was kept.",
              file=sys.stderr)
        return None, 130


def print_ready(name: str, root: Path, category: str, note: str = "") -> None:
    """The closing lines: where the data is, and a command that loads one category of it."""
    print(f"\n{name} is ready in {root}{f' ({note})' if note else ''}.")
    print("Next, load a category:")
    print(f"  python -c \"from anolearn.data.mvtec import MVTecDataset; "
          f"print(MVTecDataset({str(root)!r}, {category!r}, split='test'))\"")
