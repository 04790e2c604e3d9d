"""Downloading and unpacking datasets: resumable, verified, safe and atomic.

The real datasets of this book are large (MVTec AD alone is a 5.3 GB archive), come from
servers we do not control, and are unpacked from archives we did not build. This module
makes that boring and safe:

* **Resumable.** Bytes are written to ``<file>.part``. If a download breaks off, the
  ``.part`` file stays, and the next run asks the server for the rest only
  (``Range: bytes=N-``). A server that ignores the request (answers ``200`` instead of
  ``206 Partial Content``) is handled by starting again from zero.
* **Verified.** The file is checked against its published SHA-256 (or MD5 where that is
  all that is published) and, when known, its size. Only a complete, verified download is
  renamed to its final name, so a file with the final name is always a good file: a
  broken connection or a wrong checksum can never leave a complete-looking archive behind.
* **Safe to unpack.** An archive is a list of *names* chosen by whoever built it. A
  *path-traversal* attack (also called "zip slip") uses names such as
  ``../../home/you/.bashrc`` or ``/etc/cron.d/job`` so that a naive ``extractall`` writes
  outside the folder you asked for; links (``evil -> /home/you``) followed by a member
  ``evil/.bashrc`` achieve the same in two steps, and device files can expose hardware.
  :func:`safe_extract` reads the whole member list first and refuses the archive, before
  writing anything, if any member is absolute, climbs out with ``..``, is a symbolic or
  hard link, or is a device. Dataset archives contain plain files and folders only.
* **Atomic.** Extraction goes into a temporary sibling folder ``<dest>.tmp-XXXX`` on the
  same disk and is renamed to ``<dest>`` only when every file is written. A rename within
  one file system is atomic: other code sees either no folder or the complete one, never
  a half-extracted tree (e.g. after Ctrl-C or a full disk). A marker file
  ``.anolearn_complete`` inside records which archive (name, size, checksum) produced the
  folder, so running the same command again finishes at once.

All HTTP goes through :mod:`urllib` from the standard library (which honours the usual
``http_proxy``/``https_proxy``/``no_proxy`` variables).

Example::

    >>> from anolearn.data.download import DTD, fetch
    >>> fetch(DTD, "/data/dtd")                    # doctest: +SKIP
    PosixPath('/data/dtd')
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import lzma
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

from tqdm.auto import tqdm

CHUNK_SIZE = 1 << 20  # 1 MiB: large enough for speed, small enough for a lively progress bar
MARKER_NAME = ".anolearn_complete"
USER_AGENT = "anolearn-data-fetch/1 (Python urllib)"
_ALGO_NAMES = {"sha256": "SHA-256", "md5": "MD5"}
# Hashing or copying files bigger than this shows a progress bar (small files would only flicker).
_BAR_THRESHOLD = 64 << 20


class DownloadError(RuntimeError):
    """A download failed; the message says what happened and what to do."""


class ChecksumError(DownloadError):
    """A downloaded file does not match its published checksum or size."""


class UnsafeArchiveError(RuntimeError):
    """An archive contains a member that could write outside the target folder (or a link/device)."""


class ExtractError(RuntimeError):
    """An archive could not be extracted (not an archive, target folder in the way, disk full, ...)."""


@dataclass(frozen=True)
class DownloadInfo:
    """Everything needed to download one file and check it.

    Attributes:
        name: human-readable name used in messages, e.g. ``"MVTec AD"``.
        url: where to download the file from.
        filename: name of the file on disk (usually the last part of the URL).
        sha256: published SHA-256 hex digest, or None.
        md5: published MD5 hex digest, or None (used only when no SHA-256 is published).
        size: exact size in bytes, or None when not known.
        licence: the licence of the data, quoted in help texts.
        mirrors: further URLs serving the same bytes, tried in order when ``url`` cannot be
            reached (the checksum makes sure any of them gives the right file).
        sha256_prefix: the first hex digits of the SHA-256 when only those are published
            (PyTorch/torchvision put them in weight file names, ``resnet18-f37072fd.pth``).
        page: a web page describing the data, quoted in error messages.
        approx_size: a human-readable size for help texts when ``size`` is unknown.
    """

    name: str
    url: str
    filename: str
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    licence: str = "unknown"
    mirrors: tuple[str, ...] = ()
    sha256_prefix: str | None = None
    page: str | None = None
    approx_size: str | None = None

    @property
    def urls(self) -> tuple[str, ...]:
        """The main URL followed by the mirrors."""
        return (self.url, *self.mirrors)

    @property
    def algorithm(self) -> str:
        """Hash algorithm used to verify the file: ``"sha256"`` unless only an MD5 is published."""
        if self.sha256 is None and self.sha256_prefix is None and self.md5 is not None:
            return "md5"
        return "sha256"

    @property
    def expected_digest(self) -> str | None:
        """The published digest (lower case; possibly just a SHA-256 prefix), or None."""
        value = self.sha256 or self.sha256_prefix or self.md5
        return value.lower() if value else None

    @property
    def size_text(self) -> str:
        """Size for humans, e.g. ``"5.3 GB"``."""
        if self.size is not None:
            return human_size(self.size)
        return self.approx_size or "unknown size"


# --------------------------------------------------------------------------------------
# The datasets of the book. Checksums are the ones published by the dataset authors or
# by widely used tools (anomalib); sizes are exact byte counts where known.
# --------------------------------------------------------------------------------------
MVTEC_AD = DownloadInfo(
    name="MVTec AD",
    url=(
        "https://www.mydrive.ch/shares/150996/b52ecdcbf521176e9db9c731f2304b27/download/"
        "420938113-1629960298/mvtec_anomaly_detection.tar.xz"
    ),
    # An older share of the same archive (same bytes, so the same checksum).
    mirrors=(
        "https://www.mydrive.ch/shares/38536/3830184030e49fe74747669442f0f282/download/"
        "420938113-1629952094/mvtec_anomaly_detection.tar.xz",
    ),
    filename="mvtec_anomaly_detection.tar.xz",
    sha256="cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d",
    size=5_264_982_680,
    licence="CC BY-NC-SA 4.0 (non-commercial use only)",
    page="https://www.mvtec.com/company/research/datasets/mvtec-ad",
)

VISA = DownloadInfo(
    name="VisA",
    url="https://amazon-visual-anomaly.s3.us-west-2.amazonaws.com/VisA_20220922.tar",
    filename="VisA_20220922.tar",
    sha256="2eb8690c803ab37de0324772964100169ec8ba1fa3f7e94291c9ca673f40f362",
    size=1_929_840_640,
    licence="CC BY 4.0",
    page="https://github.com/amazon-science/spot-diff",
)

BTAD = DownloadInfo(
    name="BTAD",
    url="https://avires.dimi.uniud.it/papers/btad/btad.zip",
    filename="btad.zip",
    md5="c1fa4d56ac50dd50908ce04e81037a8e",  # no SHA-256 is published for BTAD
    size=1_229_193_337,
    licence="CC BY-SA 4.0",
    page="https://avires.dimi.uniud.it/papers/btad/",
)

DTD = DownloadInfo(
    name="DTD (Describable Textures Dataset)",
    url="https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz",
    filename="dtd-r1.0.1.tar.gz",
    sha256="e42855a52a4950a3b59612834602aa253914755c95b0cff9ead6d07395f8e205",
    licence="research use only (no CC licence; do not redistribute)",
    page="https://www.robots.ox.ac.uk/~vgg/data/dtd/",
    approx_size="about 600 MB",
)

#: The datasets that can be downloaded directly, by the names used in :mod:`anolearn.paths`.
#: (Retinal-OCT is not here: Kaggle requires a login, see ``data_scripts/fetch_retinal_oct.py``.)
DATASETS: dict[str, DownloadInfo] = {"mvtec_ad": MVTEC_AD, "visa": VISA, "btad": BTAD, "dtd": DTD}


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------
def human_size(n_bytes: float) -> str:
    """Format a byte count with decimal units: ``human_size(5_264_982_680) == "5.3 GB"``."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n_bytes) < 1000 or unit == "TB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1000
    raise AssertionError("unreachable")


def _bar(total: int | None, desc: str, enabled: bool, initial: int = 0) -> tqdm:
    return tqdm(
        total=total, initial=initial, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
        disable=not enabled, leave=False,
    )


def file_digest(path: str | Path, algorithm: str = "sha256", progress: bool = False) -> str:
    """Hex digest of a file, read in chunks (never loads the whole file into memory).

    Args:
        path: the file.
        algorithm: any name :func:`hashlib.new` knows (``"sha256"``, ``"md5"``).
        progress: show a progress bar for large files.

    Returns:
        The lower-case hex digest.
    """
    path = Path(path)
    hasher = hashlib.new(algorithm)
    size = path.stat().st_size
    with open(path, "rb") as f, _bar(size, f"checking {path.name}", progress and size > _BAR_THRESHOLD) as bar:
        while chunk := f.read(CHUNK_SIZE):
            hasher.update(chunk)
            bar.update(len(chunk))
    return hasher.hexdigest()


def _where_to_get(info: DownloadInfo) -> str:
    return info.page or info.url


def verify_file(path: str | Path, info: DownloadInfo, progress: bool = False, digest: str | None = None) -> str:
    """Check a file against the size and checksum in ``info``.

    Args:
        path: the file to check.
        info: what it should be.
        progress: show a progress bar while hashing a large file.
        digest: the file's digest (``info.algorithm``) if already computed while
            downloading; saves reading a multi-gigabyte file a second time.

    Returns:
        The file's hex digest (``info.algorithm``), also when ``info`` publishes none,
        so that it can be recorded.

    Raises:
        ChecksumError: naming the file, the expected and the actual size or digest.
    """
    path = Path(path)
    actual_size = path.stat().st_size
    if info.size is not None and actual_size != info.size:
        raise ChecksumError(
            f"{path} has {actual_size:,} bytes but {info.name} ({info.filename}) has {info.size:,} bytes. "
            "Delete the file and run the command again; if that fails too, download it by hand from "
            f"{_where_to_get(info)}."
        )
    if digest is None:
        digest = file_digest(path, info.algorithm, progress)
    expected = info.expected_digest
    if expected is not None and not digest.startswith(expected):
        # startswith covers the torchvision case where only a SHA-256 prefix is published;
        # for full digests it is plain equality (same length).
        what = "SHA-256 prefix" if info.sha256 is None and info.sha256_prefix else _ALGO_NAMES[info.algorithm]
        raise ChecksumError(
            f"Checksum mismatch for {info.filename} ({info.name}): expected {what} {expected}, "
            f"got {digest}. The data is not the published file: it was corrupted on the way, or the "
            f"server now serves something else (e.g. an HTML error page). Run the command again to "
            f"retry from scratch; if the mismatch persists, download {_where_to_get(info)} by hand and "
            "compare its checksum with the expected value above."
        )
    return digest


# --------------------------------------------------------------------------------------
# Downloading
# --------------------------------------------------------------------------------------
class _URLFailed(Exception):
    """This URL could not be used at all (no byte received): the next mirror may work."""


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``"bytes 100-999/1000"`` -> ``(100, 1000)``; unknown parts are None."""
    match = re.match(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)", value or "")
    if not match:
        return None, None
    total = None if match.group(2) == "*" else int(match.group(2))
    return int(match.group(1)), total


def _fill_part(url: str, info: DownloadInfo, part: Path, progress: bool, timeout: float) -> str | None:
    """Download ``url`` into ``part``, resuming if it exists. Returns the running digest.

    Returns None when the digest has to be computed from the file (nothing was
    downloaded because the ``.part`` file already had every byte).
    """
    for _attempt in range(3):  # at most: resume refused -> restart from zero -> done
        offset = part.stat().st_size if part.exists() else 0
        if info.size is not None and offset > info.size:
            part.unlink()  # longer than the real file: cannot be a prefix of it
            offset = 0
        if info.size is not None and offset == info.size:
            return None  # every byte is there (an earlier run stopped just before renaming)

        headers = {"User-Agent": USER_AGENT}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
        except urllib.error.HTTPError as err:
            if err.code == 416 and offset:
                # "Range Not Satisfiable": our partial file does not fit the server's file
                # (e.g. it is from another version). Start again from zero.
                print(f"The server cannot resume {info.filename} at byte {offset:,}; starting again from zero.")
                part.unlink()
                continue
            raise _URLFailed(f"HTTP {err.code} {err.reason}") from err
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            raise _URLFailed(str(getattr(err, "reason", err))) from err

        with response:
            length = response.headers.get("Content-Length")
            length = int(length) if length and length.isdigit() else None
            if response.status == 206:
                start, total = _parse_content_range(response.headers.get("Content-Range"))
                if start != offset:
                    # A partial answer for some other range: useless here. Start from zero.
                    part.unlink(missing_ok=True)
                    continue
                if total is None and length is not None:
                    total = offset + length
                mode = "ab"
            else:
                # 200 OK although we asked for a range: the server sends the whole file, so
                # the bytes we already have must be discarded, not appended to.
                if offset:
                    print(f"The server does not support resuming; downloading {info.filename} from the start.")
                offset, total, mode = 0, length, "wb"

            if total is not None and info.size is not None and total != info.size:
                # Found before writing a byte: saves downloading gigabytes of the wrong thing.
                raise _URLFailed(
                    f"it offers {total:,} bytes but {info.filename} has {info.size:,} bytes, so it no longer "
                    "serves the expected file (moved, replaced, or an error page); nothing was downloaded"
                )

            hasher = hashlib.new(info.algorithm)
            if mode == "ab" and offset:
                # Hash the bytes we already have so the final digest needs no second pass.
                with open(part, "rb") as f:
                    while chunk := f.read(CHUNK_SIZE):
                        hasher.update(chunk)
            received, failure = offset, None
            expected_total = total if total is not None else info.size
            with open(part, mode) as f, _bar(expected_total, info.filename, progress, initial=offset) as bar:
                try:
                    while chunk := response.read(CHUNK_SIZE):
                        f.write(chunk)
                        hasher.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                except (OSError, http.client.HTTPException) as err:  # reset, timeout, IncompleteRead
                    failure = err
                f.flush()
                # fsync before any later rename, so that a power cut cannot leave a final
                # name pointing at data that never reached the disk.
                os.fsync(f.fileno())

        if failure is not None or (expected_total is not None and received < expected_total):
            of_total = f" of {expected_total:,}" if expected_total is not None else ""
            reason = f" ({type(failure).__name__}: {failure})" if failure is not None else " (connection closed early)"
            raise DownloadError(
                f"Download of {info.filename} from {url} stopped after {received:,}{of_total} bytes{reason}. "
                f"The bytes received are kept in {part}; run the same command again to resume from there."
            )
        return hasher.hexdigest()
    raise DownloadError(
        f"The server at {url} keeps refusing to resume {info.filename}. Delete {part} and run the command again."
    )


def download(info: DownloadInfo, dest_dir: str | Path, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download one file into ``dest_dir``, resuming and verifying it.

    If ``dest_dir/info.filename`` already exists and verifies, nothing is downloaded. If
    it exists but does not verify (e.g. a file a reader put there by hand), it is renamed
    aside to ``<name>.rejected`` (never deleted: it may be the reader's only copy) and the
    file is downloaded again.

    Args:
        info: what to download (URL, file name, checksum, size).
        dest_dir: folder for the file (created if missing).
        progress: show progress bars.
        timeout: seconds to wait for the server before giving up on a connection or read.

    Returns:
        Path of the complete, verified file.

    Raises:
        DownloadError: the download broke off (the ``.part`` file is kept for resuming),
            or no URL could be reached.
        ChecksumError: the data does not match the published checksum (the ``.part`` file
            is deleted, since resuming it would only reproduce the wrong bytes).
    """
    dest_dir = Path(dest_dir).expanduser()
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / info.filename
    part = final.with_name(final.name + ".part")

    kept_aside = None
    if final.exists():
        try:
            verify_file(final, info, progress)
            part.unlink(missing_ok=True)  # a stale leftover; the final file is what counts
            print(f"{final} is already downloaded and verified.")
            return final
        except ChecksumError:
            kept_aside = _set_aside(final)
            print(f"{final} does not match the published size/checksum of {info.name}: it is kept as {kept_aside} "
                  f"(not deleted), and {info.filename} is downloaded again.")

    failures = []
    digest = None
    for url in info.urls:
        try:
            digest = _fill_part(url, info, part, progress, timeout)
            break
        except _URLFailed as err:
            failures.append(f"  {url}: {err}")
    else:
        raise DownloadError(
            f"Could not download {info.filename} ({info.name}) from any of its URLs:\n" + "\n".join(failures)
            + "\nFor network errors, check your internet connection (and http_proxy/https_proxy settings). "
            f"You can also download the file by hand from {_where_to_get(info)} and put it at {final}; "
            "the next run verifies and uses it."
            + (f" The file that was there and did not verify is kept as {kept_aside}." if kept_aside else "")
        )

    try:
        digest = verify_file(part, info, progress, digest=digest)
    except ChecksumError:
        part.unlink(missing_ok=True)  # resuming wrong bytes would only give wrong bytes again
        raise
    if info.expected_digest is None:
        print(f"No checksum is published for {info.filename}; its {_ALGO_NAMES[info.algorithm]} is {digest}.")
    os.replace(part, final)  # only now does the final name appear
    return final


def _set_aside(path: Path) -> Path:
    """Rename ``path`` to ``<name>.rejected`` (``.rejected-2``, ... if taken) and return the new path."""
    for n in range(1, 1000):
        aside = path.with_name(path.name + (".rejected" if n == 1 else f".rejected-{n}"))
        if not aside.exists():
            os.replace(path, aside)
            return aside
    raise DownloadError(f"{path} does not verify, and there are already 999 rejected copies of it beside it; "
                        "remove some of them.")


# --------------------------------------------------------------------------------------
# Safe extraction
# --------------------------------------------------------------------------------------
def read_marker(folder: str | Path) -> dict | None:
    """The completion marker of a folder written by :func:`safe_extract` (or a converter), or None."""
    marker = Path(folder) / MARKER_NAME
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError):
        return None


def write_marker(folder: str | Path, **fields) -> None:
    """Write the completion marker (JSON) into ``folder``; call it last, just before the rename."""
    fields.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S"))
    (Path(folder) / MARKER_NAME).write_text(json.dumps(fields, indent=1, sort_keys=True) + "\n")


def _safe_member_path(name: str, archive: Path) -> PurePosixPath | None:
    """Check one member name; return it as a relative path, or None for the root entry ``./``.

    Raises:
        UnsafeArchiveError: if the name is absolute or climbs out with ``..``.
    """
    # Treat backslashes as separators too: archives made on Windows may use them, and
    # "..\\..\\x" must not slip through as a harmless-looking file name.
    cleaned = name.replace("\\", "/")
    if cleaned.startswith("/") or re.match(r"^[A-Za-z]:", cleaned):
        raise UnsafeArchiveError(
            f"Refusing to extract {archive.name}: member {name!r} has an absolute path, which would be "
            "written outside the target folder. The archive is damaged or malicious; delete it and "
            "download it again from the official source."
        )
    parts = [p for p in cleaned.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(
            f"Refusing to extract {archive.name}: member {name!r} contains '..', which could write "
            "outside the target folder (a path-traversal attack). The archive is damaged or malicious; "
            "delete it and download it again from the official source."
        )
    return PurePosixPath(*parts) if parts else None


def _refuse(archive: Path, name: str, what: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(
        f"Refusing to extract {archive.name}: member {name!r} is {what}. Dataset archives contain plain "
        "files and folders only; links and devices can make later members land outside the target "
        "folder. Delete the archive and download it again from the official source."
    )


@dataclass(frozen=True)
class _Member:
    path: PurePosixPath
    is_dir: bool
    size: int


def _check_tar_member(m: tarfile.TarInfo, archive: Path) -> _Member | None:
    path = _safe_member_path(m.name, archive)
    if m.issym():
        raise _refuse(archive, m.name, f"a symbolic link (to {m.linkname!r})")
    if m.islnk():
        raise _refuse(archive, m.name, f"a hard link (to {m.linkname!r})")
    if m.isdev():  # character/block device or FIFO
        raise _refuse(archive, m.name, "a device file")
    if not (m.isreg() or m.isdir()):
        raise _refuse(archive, m.name, f"of an unsupported type ({m.type!r})")
    if path is None:
        return None
    return _Member(path, m.isdir(), m.size if m.isreg() else 0)


def _check_zip_member(info: zipfile.ZipInfo, archive: Path) -> _Member | None:
    path = _safe_member_path(info.filename, archive)
    # Unix tools store the file type in the high 16 bits of external_attr.
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise _refuse(archive, info.filename, "a symbolic link")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        raise _refuse(archive, info.filename, "a device file")
    if info.flag_bits & 0x1:
        raise ExtractError(
            f"{archive.name}: member {info.filename!r} is encrypted. Extract the archive by hand with its "
            "password and point the script at the extracted folder."
        )
    if path is None:
        return None
    return _Member(path, info.is_dir(), 0 if info.is_dir() else info.file_size)


# What the decompressors raise on a truncated or corrupt archive.
_DAMAGED = (tarfile.TarError, zipfile.BadZipFile, EOFError, lzma.LZMAError, zlib.error, gzip.BadGzipFile)


def _damaged(archive: Path, err: BaseException) -> ExtractError:
    return ExtractError(
        f"{archive} is damaged ({type(err).__name__}: {err}). Delete it and download it again."
    )


def _archive_kind(archive: Path) -> str:
    if zipfile.is_zipfile(archive):
        return "zip"
    try:
        if tarfile.is_tarfile(archive):
            return "tar"
    except (OSError, tarfile.TarError, EOFError):
        pass
    raise ExtractError(
        f"{archive} is neither a zip nor a tar archive (.tar, .tar.gz, .tar.xz). It may be an HTML error "
        "page saved under the archive's name, or a truncated file. Delete it and download it again."
    )


def _iter_tar(archive: Path) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    # Streaming mode ("r|*") reads the archive front to back once, which is what compressed
    # archives (.tar.xz) are good at; random access would decompress from the start again.
    with open(archive, "rb") as f, tarfile.open(fileobj=f, mode="r|*") as tf:
        for m in tf:
            yield m, tf


def list_members(archive: str | Path) -> list[_Member]:
    """Read and check every member of a tar or zip archive without writing anything.

    Raises:
        UnsafeArchiveError: at the first member that is absolute, uses ``..``, a link or a device.
        ExtractError: the file is not a readable archive.
    """
    archive = Path(archive)
    kind = _archive_kind(archive)
    members: list[_Member] = []
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                members = [m for info in zf.infolist() if (m := _check_zip_member(info, archive))]
        else:
            members = [m for info, _ in _iter_tar(archive) if (m := _check_tar_member(info, archive))]
    except _DAMAGED as err:
        raise _damaged(archive, err) from err
    return members


def _marker_matches(marker: dict | None, archive_name: str, size: int | None, digest: str | None) -> bool:
    if not marker or marker.get("archive") != archive_name:
        return False
    if digest is not None and marker.get("digest") is not None:
        return marker["digest"].lower() == digest.lower()
    return size is None or marker.get("archive_size") == size


def _remove_stale_temps(dest: Path) -> None:
    # A run killed hard (SIGKILL, power cut) cannot clean up after itself; its temporary
    # folder is useless and may hold gigabytes. (Running two fetches of the same dataset
    # at the same time is not supported.)
    for stale in dest.parent.glob(f"{dest.name}.tmp-*"):
        if stale.is_dir():
            print(f"Removing {stale}, left over from an interrupted run.")
            shutil.rmtree(stale, ignore_errors=True)


def safe_extract(
    archive: str | Path, dest_dir: str | Path, digest: str | None = None, progress: bool = True
) -> Path:
    """Extract a tar (``.tar``, ``.tar.gz``, ``.tar.xz``) or zip archive safely and atomically.

    The archive's contents become the contents of ``dest_dir`` (which must not exist yet,
    unless it holds a complete extraction of the same archive, in which case nothing is
    done). Every member is checked before anything is written; the files are written to a
    temporary sibling folder that is renamed to ``dest_dir`` at the end, with a marker file
    ``.anolearn_complete`` recording the archive's name, size and digest.

    Args:
        archive: the archive file.
        dest_dir: the folder to create.
        digest: the archive's checksum, recorded in the marker (None: only name and size).
        progress: show a progress bar.

    Returns:
        ``dest_dir``.

    Raises:
        UnsafeArchiveError: a member is absolute, uses ``..``, is a link or a device (nothing
            is written).
        ExtractError: not an archive, damaged, not enough disk space, or ``dest_dir`` exists
            without a matching marker.
    """
    archive = Path(archive).expanduser()
    dest = Path(dest_dir).expanduser()
    archive_size = archive.stat().st_size
    if dest.exists():
        marker = read_marker(dest)
        if _marker_matches(marker, archive.name, archive_size, digest):
            print(f"{dest} is already extracted from {archive.name}.")
            return dest
        what = (
            f"an extraction of another archive ({marker.get('archive')})" if marker
            else "no completion marker (a partial or hand-made copy?)"
        )
        raise ExtractError(
            f"Cannot extract {archive.name} into {dest}: the folder exists and has {what}. "
            "Delete or rename that folder and run the command again."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(dest)

    members = list_members(archive)  # raises before anything is written
    needed = sum(m.size for m in members)
    free = shutil.disk_usage(dest.parent).free
    if needed > free:
        raise ExtractError(
            f"Extracting {archive.name} needs {human_size(needed)} but only {human_size(free)} is free on the "
            f"disk holding {dest.parent}. Free some space, or choose another folder with --root."
        )

    kind = _archive_kind(archive)
    tmp = Path(tempfile.mkdtemp(prefix=f"{dest.name}.tmp-", dir=dest.parent))
    try:
        with _bar(needed, f"extracting {archive.name}", progress and needed > _BAR_THRESHOLD) as bar:
            if kind == "zip":
                with zipfile.ZipFile(archive) as zf:
                    for info in zf.infolist():
                        member = _check_zip_member(info, archive)  # re-check what we write
                        if member is not None:
                            _write_member(tmp, member, lambda i=info: zf.open(i), bar)
            else:
                for info, tf in _iter_tar(archive):
                    member = _check_tar_member(info, archive)
                    if member is not None:
                        _write_member(tmp, member, lambda i=info, t=tf: t.extractfile(i), bar)
        write_marker(tmp, kind="extract", archive=archive.name, archive_size=archive_size, digest=digest,
                     files=sum(not m.is_dir for m in members))
        os.rename(tmp, dest)  # atomic: dest appears complete or not at all
    except BaseException as err:
        # Whatever went wrong (bad member, full disk, Ctrl-C), leave nothing half-written.
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, _DAMAGED):
            raise _damaged(archive, err) from err
        raise
    return dest


def _write_member(root: Path, member: _Member, open_source, bar: tqdm) -> None:
    target = root.joinpath(*member.path.parts)
    # Belt and braces: the name checks above already guarantee this, and the temporary
    # folder contains no links that could redirect a write.
    if os.path.commonpath([os.path.abspath(target), os.path.abspath(root)]) != os.path.abspath(root):
        raise UnsafeArchiveError(f"Refusing to write {member.path} outside {root}.")
    if member.is_dir:
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with open_source() as src, open(target, "wb") as dst:
        while chunk := src.read(CHUNK_SIZE):
            dst.write(chunk)
            bar.update(len(chunk))


# --------------------------------------------------------------------------------------
# Download + extract
# --------------------------------------------------------------------------------------
def is_fetched(info: DownloadInfo, root: str | Path) -> bool:
    """True if ``root`` holds a complete extraction of ``info``'s archive (no network, no hashing)."""
    return _marker_matches(read_marker(Path(root).expanduser()), info.filename, info.size, info.expected_digest)


def fetch(
    info: DownloadInfo,
    root: str | Path,
    extract: bool = True,
    download_dir: str | Path | None = None,
    keep_archive: bool = True,
    progress: bool = True,
) -> Path:
    """Download, verify and extract a dataset; does nothing if it is already there.

    Args:
        info: the dataset's archive (e.g. :data:`MVTEC_AD`).
        root: folder that will hold the archive's contents.
        extract: False to download (and verify) the archive only.
        download_dir: where the archive is saved; default ``<root's parent>/downloads``,
            i.e. ``<data>/downloads`` for the default roots, kept apart from ``root`` so that
            ``root`` can be created atomically.
        keep_archive: keep the archive after a successful extraction (False saves disk space;
            a later re-extraction then needs a new download).
        progress: show progress bars.

    Returns:
        ``root`` when extracting, else the archive's path.
    """
    root = Path(root).expanduser()
    if extract and is_fetched(info, root):
        # The marker is only written after a verified download and a complete extraction,
        # so trusting it is safe, and it avoids re-hashing gigabytes on every run.
        print(f"{info.name} is already in {root}.")
        return root
    download_dir = Path(download_dir).expanduser() if download_dir is not None else root.parent / "downloads"
    archive = download(info, download_dir, progress=progress)
    if not extract:
        return archive
    safe_extract(archive, root, digest=info.expected_digest, progress=progress)
    if not keep_archive:
        archive.unlink()
    return root


__all__ = [
    "DownloadInfo", "DownloadError", "ChecksumError", "UnsafeArchiveError", "ExtractError",
    "MVTEC_AD", "VISA", "BTAD", "DTD", "DATASETS", "MARKER_NAME",
    "download", "verify_file", "file_digest", "safe_extract", "list_members", "fetch", "is_fetched",
    "read_marker", "write_marker", "human_size",
]
