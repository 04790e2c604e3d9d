"""Run folders: one trained model with its manifest, checkpoint, costs and results.

A run folder written by ``python -m anolearn train`` (and each cell of a benchmark)::

    RUN_DIR/
      run.json      what was trained: method, data, category, profile, seed, method settings
      model.pt      the checkpoint, written atomically (a temporary file, then a rename)
      training.pt   while training: its progress, written every few minutes; a rerun resumes
                    from it (deleted once model.pt is written)
      train.json    costs of training: seconds, peak memory, device, number of images
      results.csv   one row per evaluation, appended (rewritten only to add a new column)

Before anything is written, :meth:`RunDir.check` compares the folder's ``run.json`` with the
new run: a folder that holds *another* run is refused (one line saying what to do), a folder
holding the *same* run is resumed (a finished checkpoint is not trained again). Only once every
other input has been checked too does :meth:`RunDir.claim` write ``run.json``, so a command
refused for a bad setting leaves its ``--out`` as it was.

``results.csv`` files (of a run and of a benchmark) only ever grow by whole rows: each append is
one write call followed by ``fsync``. A row cut off by a kill in the middle of that write (or by
a full disk) is detected when the file is next read or appended to, dropped with a warning, and
the file goes on from its last whole row.
"""
from __future__ import annotations

import csv
import io
import json
import os
import sys
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
    """Write ``payload`` as JSON atomically (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's files are private; these are ordinary results
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _whole_rows_length(data: bytes) -> int:
    """How many bytes of ``data`` (a CSV file's content) end with its last whole row.

    Every whole row ends with a line break, so anything after the last one is a torn row. A
    quoted field may hold a line break too, so the text is parsed to find where the last
    complete row ends.
    """
    if not data or data.endswith(b"\n"):
        return len(data)
    text = data.decode("utf-8", errors="replace")
    keep = text[: text.rfind("\n") + 1]
    header = next(csv.reader(io.StringIO(keep)), None) if keep else None
    # A row that opened a quoted field and never closed it swallowed the line breaks after it.
    while keep and header is not None:
        try:
            rows = list(csv.reader(io.StringIO(keep), strict=True))
        except csv.Error:
            rows = None
        if rows is not None and all(len(r) == len(header) for r in rows[1:]):
            break
        keep = keep[: keep.rstrip("\r\n").rfind("\n") + 1]
    return len(keep.encode("utf-8"))


def _whole_rows(path: Path, repair: bool = True, warn=None) -> bytes:
    """The content of the CSV file ``path`` up to its last whole row; a torn row after it is
    reported and, with ``repair``, cut off the file (a reader of another folder's file, such as
    ``merge`` reading a shard that may still be running, leaves the file alone)."""
    with open(path, "rb") as f:
        data = f.read()
    length = _whole_rows_length(data)
    if length < len(data):
        action = "dropped it; rerunning the command that wrote it writes it again" if repair else "ignored it"
        (warn or _warn)(f"warning: the last row of {path} was cut off ({len(data) - length} bytes; a run killed while "
                        f"writing it?): {action}.")
        if repair:
            with open(path, "r+b") as f:
                f.truncate(length)
                f.flush()
                os.fsync(f.fileno())
    return data[:length]


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def append_rows(path: Path, rows: list[dict]) -> None:
    """Append whole rows to a CSV file, writing the header once.

    Columns follow the existing header; a row with a column the header lacks rewrites the file
    once (atomically) with the column added, so nothing is silently dropped. The rows are
    written with one ``write`` call and ``fsync``-ed, so a kill leaves at most one torn row,
    which the next read drops (see :func:`_whole_rows`).
    """
    if not rows:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    exists = path.exists() and path.stat().st_size > 0
    fields = list(dict.fromkeys(k for r in rows for k in r))
    if exists:
        header = next(csv.reader(io.StringIO(_whole_rows(path).decode("utf-8"))), [])
        extra = [k for k in fields if k not in header]
        if extra:  # a column added since the file was started: rewrite it once, with the column
            old = read_rows(path)
            _write_csv(path, header + extra, old + rows)
            return
        fields = header
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, restval="")
    if not exists:
        writer.writeheader()
    writer.writerows(rows)
    data = buffer.getvalue().encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
        while written < len(data):  # a regular file takes it in one go; this is only a safeguard
            written += os.write(fd, data[written:])
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_csv(path: Path, fields: list[str], rows: list[dict]) -> None:
    """Write ``rows`` as a new CSV file atomically (temporary file, then rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, restval="")
            writer.writeheader()
            writer.writerows(rows)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_rows(path: Path, repair: bool = True, warn=None) -> list[dict]:
    """The rows of a CSV file (none if it does not exist); a torn last row is left out (and,
    with ``repair``, cut off the file; see :func:`_whole_rows`)."""
    if not path.exists():
        return []
    return list(csv.DictReader(io.StringIO(_whole_rows(path, repair, warn).decode("utf-8"), newline="")))


class RunDir:
    """The folder of one trained model (see the module docstring)."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()

    manifest = property(lambda self: self.path / "run.json")
    checkpoint = property(lambda self: self.path / "model.pt")
    training = property(lambda self: self.path / "training.pt")
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

    def check(self, identity: dict) -> bool:
        """Can the run ``identity`` use this folder? Reads only; writes nothing.

        Returns:
            True if this run already finished training here (resume: skip training).

        Raises:
            CliError: if the path is a file, or the folder holds another run or unrelated files.
        """
        if self.path.exists() and not self.path.is_dir():
            raise CliError(f"--out {self.path} is a file, not a folder; choose a new --out (a folder to create).")
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
        return False

    def claim(self, identity: dict) -> None:
        """Write ``run.json`` for the run ``identity`` (after :meth:`check` accepted it)."""
        if not self.manifest.exists():
            write_json(self.manifest, {**_plain(identity), "created": now()})
