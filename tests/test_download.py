"""Tests of anolearn.data.download against a misbehaving HTTP server on 127.0.0.1.

The server runs in a thread of the test process, serves in-memory bytes, understands
``Range`` requests (answering 206), and can be told to close the connection after K bytes
while announcing the full Content-Length, or to ignore ``Range`` (answering 200).
Nothing here touches any other network address.
"""
from __future__ import annotations

import csv
import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anolearn.data import download as dl
from anolearn.data.download import (
    ChecksumError,
    DownloadError,
    DownloadInfo,
    ExtractError,
    UnsafeArchiveError,
    download,
    fetch,
    safe_extract,
)


# ----------------------------------------------------------------------------- server
@dataclass
class ServerState:
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    truncate_after: int | None = None  # one-shot: close after this many body bytes
    ignore_range: bool = False


def _make_handler(state: ServerState):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server naming)
            rng = self.headers.get("Range")
            state.requests.append((self.path, rng))
            data = state.files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            start = 0
            if rng and not state.ignore_range:
                start = int(rng.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if state.truncate_after is not None:
                body = body[: state.truncate_after]
                state.truncate_after = None
            self.wfile.write(body)
            # HTTP/1.0 (the default): the connection closes after the handler returns, so a
            # short body is seen by the client as a connection closed early.

        def log_message(self, *args):  # keep test output quiet
            pass

    return Handler


@pytest.fixture
def server(monkeypatch):
    # A proxy configured in the environment must not intercept loopback requests.
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    state = ServerState()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()


# ----------------------------------------------------------------------------- archives
CONTENT = {
    "bottle/train/good/000.png": b"\x89PNG fake image 0" * 50,
    "bottle/test/good/000.png": b"\x89PNG fake image 1" * 50,
    "bottle/ground_truth/broken/000_mask.png": b"mask" * 10,
    "license.txt": b"CC BY-NC-SA 4.0\n",
}


def make_tar(members: dict[str, bytes], mode: str = "w:gz", extra=()) -> bytes:
    """Build a tar archive in memory; ``extra`` are ready-made TarInfo objects (links, devices)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for info in extra:
            tf.addfile(info)
    return buf.getvalue()


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)  # ZipInfo keeps the name exactly as given
    return buf.getvalue()


def info_for(server: ServerState, name: str, data: bytes, **overrides) -> DownloadInfo:
    server.files[f"/{name}"] = data
    fields = dict(name="Test data", url=f"{server.base_url}/{name}", filename=name,
                  sha256=hashlib.sha256(data).hexdigest(), size=len(data), licence="test")
    fields.update(overrides)
    return DownloadInfo(**fields)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- download + fetch
def test_good_archive_fetch_is_idempotent(server, tmp_path):
    data = make_tar(CONTENT)
    info = info_for(server, "data.tar.gz", data)
    root = tmp_path / "ds"
    assert fetch(info, root, progress=False) == root
    files = tree(root)
    assert {k: v for k, v in files.items() if k != dl.MARKER_NAME} == CONTENT
    marker = dl.read_marker(root)
    assert marker["digest"] == info.sha256 and marker["archive"] == "data.tar.gz"
    assert (tmp_path / "downloads" / "data.tar.gz").read_bytes() == data
    assert not list(tmp_path.glob("downloads/*.part"))
    assert len(server.requests) == 1

    # Second run: complete marker -> no HTTP request, nothing rewritten.
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    assert fetch(info, root, progress=False) == root
    assert len(server.requests) == 1
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == mtimes


def test_existing_verified_file_is_not_downloaded_again(server, tmp_path):
    data = b"x" * 5000
    info = info_for(server, "blob.bin", data)
    download(info, tmp_path, progress=False)
    download(info, tmp_path, progress=False)
    assert len(server.requests) == 1


def test_fetch_without_extract_and_without_keeping_archive(server, tmp_path):
    info = info_for(server, "d.zip", make_zip(CONTENT))
    archive = fetch(info, tmp_path / "ds", extract=False, progress=False)
    assert archive == tmp_path / "downloads" / "d.zip" and not (tmp_path / "ds").exists()
    fetch(info, tmp_path / "ds", keep_archive=False, progress=False)
    assert not archive.exists() and (tmp_path / "ds" / "license.txt").is_file()
    assert len(server.requests) == 1  # the archive already on disk was verified, not re-downloaded


def test_truncated_download_keeps_part_and_resumes(server, tmp_path):
    data = make_tar(CONTENT, mode="w")  # uncompressed tar: large enough to cut in the middle
    k = len(data) // 3
    info = info_for(server, "data.tar", data)
    server.truncate_after = k
    root = tmp_path / "ds"
    downloads = tmp_path / "downloads"

    with pytest.raises(DownloadError, match=r"stopped after .* bytes.*run the same command again to resume"):
        fetch(info, root, progress=False)
    assert sorted(p.name for p in downloads.iterdir()) == ["data.tar.part"]
    assert (downloads / "data.tar.part").stat().st_size == k
    assert not root.exists() and not list(tmp_path.glob("ds.tmp-*"))

    fetch(info, root, progress=False)
    assert server.requests[-1][1] == f"bytes={k}-"
    assert (downloads / "data.tar").read_bytes() == data
    assert not (downloads / "data.tar.part").exists()
    assert {k2: v for k2, v in tree(root).items() if k2 != dl.MARKER_NAME} == CONTENT


def test_truncated_download_without_known_size_is_detected(server, tmp_path):
    # Only Content-Length tells the client that bytes are missing.
    data = bytes(range(256)) * 40
    info = info_for(server, "blob.bin", data, size=None)
    server.truncate_after = 1000
    with pytest.raises(DownloadError, match="stopped after 1,000 of 10,240 bytes"):
        download(info, tmp_path, progress=False)
    assert not (tmp_path / "blob.bin").exists()
    assert download(info, tmp_path, progress=False).read_bytes() == data


def test_checksum_mismatch(server, tmp_path):
    data = b"the real bytes" * 100
    wrong = "0" * 64
    info = info_for(server, "blob.bin", data, sha256=wrong)
    with pytest.raises(ChecksumError) as excinfo:
        download(info, tmp_path, progress=False)
    message = str(excinfo.value)
    assert "blob.bin" in message and wrong in message and hashlib.sha256(data).hexdigest() in message
    assert "again" in message  # says what to do
    assert list(tmp_path.iterdir()) == []  # neither the final file nor a .part


def test_md5_only_checksum(server, tmp_path):
    data = b"btad-like" * 300
    info = info_for(server, "b.zip", data, sha256=None, md5=hashlib.md5(data).hexdigest())
    assert info.algorithm == "md5"
    assert download(info, tmp_path, progress=False).read_bytes() == data
    bad = info_for(server, "c.zip", data, sha256=None, md5="f" * 32)
    with pytest.raises(ChecksumError, match="expected MD5 f{32}"):
        download(bad, tmp_path, progress=False)


def test_sha256_prefix_like_torchvision(server, tmp_path):
    data = b"weights" * 100
    prefix = hashlib.sha256(data).hexdigest()[:8]
    info = info_for(server, f"net-{prefix}.pth", data, sha256=None, size=None, sha256_prefix=prefix)
    assert download(info, tmp_path, progress=False).name == f"net-{prefix}.pth"


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    data = bytes(range(256)) * 64
    info = info_for(server, "blob.bin", data)
    server.ignore_range = True
    (tmp_path / "blob.bin.part").write_bytes(b"garbage that must not be kept" * 3)
    path = download(info, tmp_path, progress=False)
    assert server.requests[0][1] is not None  # we asked for a range ...
    assert path.read_bytes() == data          # ... got 200, and started again from zero
    assert not (tmp_path / "blob.bin.part").exists()


def test_part_longer_than_file_is_discarded(server, tmp_path):
    data = b"abc" * 100
    info = info_for(server, "blob.bin", data)
    (tmp_path / "blob.bin.part").write_bytes(b"z" * 1000)
    assert download(info, tmp_path, progress=False).read_bytes() == data
    assert server.requests[0][1] is None


def test_wrong_size_announced_by_server_downloads_nothing(server, tmp_path):
    info = info_for(server, "page.html", b"<html>moved</html>", size=123_456, sha256="1" * 64)
    with pytest.raises(DownloadError, match="offers 18 bytes"):
        download(info, tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_url_falls_back_to_mirror(server, tmp_path):
    data = b"mirror data" * 10
    info = info_for(server, "m.bin", data)
    info = DownloadInfo(**{**info.__dict__, "url": f"{server.base_url}/missing", "mirrors": (info.url,)})
    assert download(info, tmp_path, progress=False).read_bytes() == data
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(DownloadInfo("x", f"{server.base_url}/nope", "nope.bin"), tmp_path, progress=False)


# ----------------------------------------------------------------------------- safe_extract
def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _assert_nothing_written(tmp_path: Path, archive: Path) -> None:
    assert sorted(tmp_path.iterdir()) == [archive]  # no target, no temp folder, nothing outside


@pytest.mark.parametrize("mode,suffix", [("w", ".tar"), ("w:gz", ".tar.gz"), ("w:xz", ".tar.xz")])
def test_extract_tar_formats_and_marker(tmp_path, mode, suffix):
    archive = _write(tmp_path, "a" + suffix, make_tar(CONTENT, mode=mode))
    dest = safe_extract(archive, tmp_path / "out", digest="abc", progress=False)
    assert {k: v for k, v in tree(dest).items() if k != dl.MARKER_NAME} == CONTENT
    assert dl.read_marker(dest)["digest"] == "abc"
    before = {p: p.stat().st_mtime_ns for p in dest.rglob("*")}
    safe_extract(archive, dest, digest="abc", progress=False)  # complete: nothing happens
    assert {p: p.stat().st_mtime_ns for p in dest.rglob("*")} == before


def test_extract_refuses_existing_unmarked_folder(tmp_path):
    archive = _write(tmp_path, "a.zip", make_zip(CONTENT))
    (tmp_path / "out").mkdir()
    with pytest.raises(ExtractError, match="no completion marker"):
        safe_extract(archive, tmp_path / "out", progress=False)


@pytest.mark.parametrize("evil", ["../evil", "bottle/../../evil", "/tmp/anolearn_evil_abs"])
def test_tar_traversal_refused(tmp_path, evil):
    members = {"ok/first.txt": b"written first in the archive", evil: b"pwned"}
    archive = _write(tmp_path, "evil.tar", make_tar(members, mode="w"))
    with pytest.raises(UnsafeArchiveError, match="Refusing to extract evil.tar"):
        safe_extract(archive, tmp_path / "out", progress=False)
    _assert_nothing_written(tmp_path, archive)
    assert not (tmp_path.parent / "evil").exists()
    assert not Path("/tmp/anolearn_evil_abs").exists()


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize(
    "link",
    [
        _link("escape", "/etc", tarfile.SYMTYPE),
        _link("escape", "../../outside", tarfile.SYMTYPE),
        _link("inside_but_still_a_link", "ok/first.txt", tarfile.SYMTYPE),
        _link("hard", "../outside.txt", tarfile.LNKTYPE),
        _link("hard_abs", "/etc/passwd", tarfile.LNKTYPE),
    ],
    ids=["symlink-abs", "symlink-dotdot", "symlink-inside", "hardlink-dotdot", "hardlink-abs"],
)
def test_tar_links_refused(tmp_path, link):
    # A link followed by a member written "through" it is the two-step version of the
    # traversal attack, so links are refused outright.
    archive = _write(tmp_path, "links.tar", make_tar({"ok/first.txt": b"1"}, mode="w",
                                                     extra=[link, tarfile.TarInfo("escape_after")]))
    with pytest.raises(UnsafeArchiveError, match="link"):
        safe_extract(archive, tmp_path / "out", progress=False)
    _assert_nothing_written(tmp_path, archive)


def test_tar_device_refused(tmp_path):
    dev = tarfile.TarInfo("dev/sda")
    dev.type = tarfile.BLKTYPE
    archive = _write(tmp_path, "dev.tar", make_tar({"a.txt": b"1"}, mode="w", extra=[dev]))
    with pytest.raises(UnsafeArchiveError, match="device"):
        safe_extract(archive, tmp_path / "out", progress=False)
    _assert_nothing_written(tmp_path, archive)


@pytest.mark.parametrize(
    "evil", ["/abs/evil.txt", "../evil.txt", "a/../../evil.txt", "..\\..\\evil.txt", "C:/evil.txt"]
)
def test_zip_traversal_refused(tmp_path, evil):
    archive = _write(tmp_path, "evil.zip", make_zip({"good.txt": b"ok", evil: b"pwned"}))
    with pytest.raises(UnsafeArchiveError, match="evil.zip"):
        safe_extract(archive, tmp_path / "out", progress=False)
    _assert_nothing_written(tmp_path, archive)


def test_zip_symlink_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16)  # S_IFLNK: how Unix zip tools store a symlink
        zf.writestr(info, "/etc/passwd")
    archive = _write(tmp_path, "link.zip", buf.getvalue())
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        safe_extract(archive, tmp_path / "out", progress=False)
    _assert_nothing_written(tmp_path, archive)


def test_not_an_archive_and_damaged_archive(tmp_path):
    page = _write(tmp_path, "x.tar.gz", b"<html>Please log in</html>")
    with pytest.raises(ExtractError, match="neither a zip nor a tar"):
        safe_extract(page, tmp_path / "out", progress=False)
    good = make_tar({"big.bin": bytes(200_000)}, mode="w")
    cut = _write(tmp_path, "cut.tar", good[: len(good) // 2])
    with pytest.raises(ExtractError, match="damaged"):
        safe_extract(cut, tmp_path / "out2", progress=False)
    assert not (tmp_path / "out2").exists() and not list(tmp_path.glob("out2.tmp-*"))


def test_registered_infos_are_consistent():
    for key, info in dl.DATASETS.items():
        assert info.url.startswith("https://") and info.url.endswith(info.filename), key
        assert info.expected_digest and len(info.expected_digest) in (32, 64), key
        assert info.licence and info.licence != "unknown", key
    assert dl.BTAD.algorithm == "md5" and dl.MVTEC_AD.algorithm == "sha256"
    assert dl.human_size(dl.MVTEC_AD.size) == "5.3 GB"


# ----------------------------------------------------------------------------- the scripts
def load_script(name: str):
    """Import ``data_scripts/<name>.py`` as a module (the scripts are not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "data_scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_script_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fetch_dtd_script(server, tmp_path, monkeypatch, capsys):
    script = load_script("fetch_dtd")
    members = {f"dtd/images/{c}/{c}_0001.jpg": b"jpeg" for c in ("banded", "woven")}
    monkeypatch.setattr(script, "DTD", info_for(server, "dtd-r1.0.1.tar.gz", make_tar(members)))
    assert script.main(["--root", str(tmp_path / "dtd"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "2 images in 2 categories" in out and "Next" in out
    assert (tmp_path / "dtd/dtd/images/woven/woven_0001.jpg").is_file()
    assert script.main(["--root", str(tmp_path / "dtd"), "--no-progress"]) == 0
    assert len(server.requests) == 1


def test_fetch_btad_script_reports_errors(server, tmp_path, monkeypatch, capsys):
    script = load_script("fetch_btad")
    info = info_for(server, "btad.zip", make_zip(CONTENT), sha256=None, md5="0" * 32)
    monkeypatch.setattr(script, "BTAD", info)
    assert script.main(["--root", str(tmp_path / "btad"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Checksum mismatch for btad.zip") and "expected MD5 " + "0" * 32 in err
    assert not (tmp_path / "btad").exists() and not (tmp_path / "btad_raw").exists()


