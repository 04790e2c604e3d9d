"""Run folders: one trained model with its manifest, checkpoint, costs and results.

A run folder written by ``python -m anolearn train`` (and each cell of a benchmark)::

    RUN_DIR/
      run.json      what was trained: method, data, category, profile, seed, method settings
      model.pt      the checkpoint, written atomically (a temporary file, then a rename)
      train.json    costs of training: seconds, peak memory, device, number of images
      results.csv   one row per evaluation, appended, never rewritten

Before anything is written, :meth:`RunDir.claim` compares the folder's ``run.json`` with the
new run: a folder that holds *another* run is refused (one line saying what to do), a folder
holding the *same* run is resumed (a finished checkpoint is not trained again).
"""
from __future__ import annotations

import csv
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .spec import CliError

# The fields that identify a run; anything else in run.json is informative.
IDENTITY = ("method", "data", "category", "profile", "image_size", "seed", "config")


def _plain(value: Any) -> Any:
    """JSON-friendly copy (tuples become lists) so that a reloaded manifest compares equal."""
    return json.loads(json.dumps(value, default=str))


def write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` as JSON atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(payload, f, indent=2, default=str)
    os.replace(tmp, path)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def append_rows(path: Path, rows: list[dict]) -> None:
    """Append rows to a CSV file, writing the header once; columns follow the existing header,
    new columns are refused rather than silently dropped."""
    if not rows:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    exists = path.exists() and path.stat().st_size > 0
    fields = list(rows[0])
    if exists:
        with open(path, newline="") as f:
            header = next(csv.reader(f))
        extra = [k for r in rows for k in r if k not in header]
        if extra:
            raise CliError(f"{path} has other columns than this run writes ({', '.join(sorted(set(extra)))}); "
                           f"write to a new --out.")
        fields = header
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        if not exists:
            writer.writeheader()
        writer.writerows(rows)
        f.flush()
        os.fsync(f.fileno())


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class RunDir:
    """The folder of one trained model (see the module docstring)."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()

    manifest = property(lambda self: self.path / "run.json")
    checkpoint = property(lambda self: self.path / "model.pt")
    train_info = property(lambda self: self.path / "train.json")
    results = property(lambda self: self.path / "results.csv")

    def read_manifest(self) -> dict:
        if not self.manifest.exists():
            raise CliError(f"{self.path} is not a run folder (no run.json); train one with "
                           f"`python -m anolearn train ... --out {self.path}`.")
        try:
            return json.loads(self.manifest.read_text())
        except json.JSONDecodeError as err:
            raise CliError(f"{self.manifest} is corrupt ({err}); delete the folder and train again.") from None

    def claim(self, identity: dict) -> bool:
        """Take the folder for the run ``identity``.

        Returns:
            True if this run already finished training here (resume: skip training).

        Raises:
            CliError: if the folder holds another run, or unrelated files.
        """
        identity = _plain(identity)
        if self.manifest.exists():
            old = self.read_manifest()
            diff = [k for k in IDENTITY if old.get(k) != identity.get(k)]
            if diff:
                what = ", ".join(f"{k}: {old.get(k)!r} here vs {identity.get(k)!r} now" for k in diff)
                raise CliError(f"{self.path} holds another run ({what}); choose a new --out or delete that folder.")
            return self.checkpoint.exists() and self.train_info.exists()
        if self.path.exists() and any(self.path.iterdir()):
            raise CliError(f"{self.path} is not empty and holds no anolearn run; choose a new --out.")
        write_json(self.manifest, {**identity, "created": now()})
        return False
