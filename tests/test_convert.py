"""Tests of anolearn.data.convert on tiny fake VisA, BTAD and OCT2017 trees built with PIL."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anolearn.data.convert import (
    ConversionError,
    binarise_mask,
    convert_btad,
    convert_retinal_oct,
    convert_visa,
    find_oct_root,
)
from anolearn.data.download import MARKER_NAME, read_marker

RNG = np.random.default_rng(0)


def _image(path: Path, size=(24, 16), fmt=None, gray=False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size[1], size[0]) if gray else (size[1], size[0], 3)
    Image.fromarray(RNG.integers(0, 256, shape, dtype=np.uint8)).save(path, format=fmt)


def _mask(path: Path, value: int, size=(24, 16), box=(2, 3, 6, 8)) -> None:
    """A mask whose anomalous box (x0, y0, x1, y1) has ``value`` (VisA uses small values like 1 or 38)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((size[1], size[0]), np.uint8)
    x0, y0, x1, y1 = box
    arr[y0:y1, x0:x1] = value
    Image.fromarray(arr).save(path)


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _mtimes(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*")}


# ----------------------------------------------------------------------------- VisA
@pytest.fixture
def raw_visa(tmp_path) -> Path:
    raw = tmp_path / "visa_raw"
    rows = []
    for obj, n_train, n_test_good, mask_value in (("candle", 3, 2, 1), ("pcb1", 2, 1, 38)):
        base = raw / obj / "Data"
        normals = [f"{i:04d}.JPG" for i in range(n_train + n_test_good)]
        for name in normals:
            _image(base / "Images" / "Normal" / name, fmt="JPEG")
        for i, name in enumerate(normals):
            split = "train" if i < n_train else "test"
            rows.append([obj, split, "normal", f"{obj}/Data/Images/Normal/{name}", ""])
        for name in ("001", "000"):  # listed out of order on purpose: output follows file names
            _image(base / "Images" / "Anomaly" / f"{name}.JPG", fmt="JPEG")
            _mask(base / "Masks" / "Anomaly" / f"{name}.png", mask_value,
                  box=(2, 3, 6, 8) if name == "000" else (10, 1, 12, 4))
            rows.append([obj, "test", "anomaly", f"{obj}/Data/Images/Anomaly/{name}.JPG",
                         f"{obj}/Data/Masks/Anomaly/{name}.png"])
    (raw / "split_csv").mkdir(parents=True)
    with open(raw / "split_csv" / "1cls.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["object", "split", "label", "image", "mask"])
        writer.writerows(rows)
    return raw


def test_convert_visa_layout(raw_visa, tmp_path):
    out = tmp_path / "visa"
    result = convert_visa(raw_visa, out, progress=False)
    assert result.converted == ["candle", "pcb1"] and result.skipped == []
    assert _files(out / "candle") == [
        MARKER_NAME,
        "ground_truth/bad/000_mask.png", "ground_truth/bad/001_mask.png",
        "source_files.csv",
        "test/bad/000.png", "test/bad/001.png",
        "test/good/000.png", "test/good/001.png",
        "train/good/000.png", "train/good/001.png", "train/good/002.png",
    ]
    assert result.counts["pcb1"] == {"train/good": 2, "test/good": 1, "test/bad": 2, "ground_truth/bad": 2}
    assert not list(out.glob("*.tmp-*"))

    for obj in ("candle", "pcb1"):
        for path in (out / obj).rglob("*.png"):
            with Image.open(path) as img:
                assert img.format == "PNG"
                if path.name.endswith("_mask.png"):
                    arr = np.asarray(img)
                    assert img.mode == "L" and set(np.unique(arr)) == {0, 255}
                else:
                    assert img.mode == "RGB" and img.size == (24, 16)
        # 000 is the raw 000.JPG, whose mask box is at x 2..5, y 3..7.
        mask = np.asarray(Image.open(out / obj / "ground_truth/bad/000_mask.png"))
        assert mask[3:8, 2:6].min() == 255 and mask.sum() == 255 * 20

    with open(out / "candle" / "source_files.csv") as f:
        sources = dict(csv.reader(f))
    assert sources["test/bad/001.png"].endswith("candle/Data/Images/Anomaly/001.JPG")


def test_convert_visa_is_idempotent(raw_visa, tmp_path):
    out = tmp_path / "visa"
    first = convert_visa(raw_visa, out, progress=False)
    before = _mtimes(out)
    second = convert_visa(raw_visa, out, progress=False)
    assert second.converted == [] and second.skipped == ["candle", "pcb1"]
    assert second.counts == first.counts
    assert _mtimes(out) == before


def test_convert_visa_keep_jpeg(raw_visa, tmp_path):
    out = tmp_path / "visa"
    convert_visa(raw_visa, out, keep_jpeg=True, progress=False)
    raw_jpeg = raw_visa / "candle/Data/Images/Normal/0000.JPG"
    assert (out / "candle/train/good/000.jpg").read_bytes() == raw_jpeg.read_bytes()
    assert (out / "candle/ground_truth/bad/000_mask.png").is_file()


def test_convert_visa_errors(raw_visa, tmp_path):
    with pytest.raises(ConversionError, match="1cls.csv not found"):
        convert_visa(tmp_path / "nothing", tmp_path / "out", progress=False)
    (raw_visa / "pcb1/Data/Images/Normal/0000.JPG").unlink()
    with pytest.raises(ConversionError, match="0000.JPG .*missing"):
        convert_visa(raw_visa, tmp_path / "out", progress=False)
    # candle was finished before pcb1 failed; pcb1 left nothing behind.
    assert read_marker(tmp_path / "out" / "candle") is not None
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["candle"]


def test_convert_refuses_unmarked_folder(raw_visa, tmp_path):
    (tmp_path / "out" / "candle").mkdir(parents=True)
    with pytest.raises(ConversionError, match="no completion"):
        convert_visa(raw_visa, tmp_path / "out", progress=False)


def test_converted_visa_loads_with_mvtec_dataset(raw_visa, tmp_path):
    from anolearn.data.mvtec import MVTecDataset

    convert_visa(raw_visa, tmp_path / "visa", progress=False)
    ds = MVTecDataset(tmp_path / "visa", "pcb1", split="test", image_size=None)
    assert len(ds) == 3 and ds.labels.tolist() == [1, 1, 0]
    sample = ds[0]
    assert sample["mask"].sum() == 20 and set(sample["mask"].unique().tolist()) == {0.0, 1.0}


# ----------------------------------------------------------------------------- BTAD
@pytest.fixture
def raw_btad(tmp_path) -> Path:
    raw = tmp_path / "btad_raw" / "BTech_Dataset_transformed"
    for product, ext in (("01", ".bmp"), ("03", ".png")):
        p = raw / product
        _image(p / "train/ok" / f"0000{ext}", fmt="BMP" if ext == ".bmp" else "PNG")
        _image(p / "train/ok" / "0001.png", gray=True)
        _image(p / "test/ok" / f"0000{ext}", fmt="BMP" if ext == ".bmp" else "PNG")
        _image(p / "test/ko" / f"0000{ext}", fmt="BMP" if ext == ".bmp" else "PNG")
        _image(p / "test/ko" / "0001.bmp", fmt="BMP")
        _mask(p / "ground_truth/ko" / "0000.png", 255)
        _mask(p / "ground_truth/ko" / "0001.png", 1)
    return raw.parent


def test_convert_btad_layout(raw_btad, tmp_path):
    out = tmp_path / "btad"
    result = convert_btad(raw_btad, out, progress=False)
    assert result.converted == ["01", "03"] and result.missing_masks == []
    for product in ("01", "03"):
        assert _files(out / product) == [
            MARKER_NAME,
            "ground_truth/ko/0000_mask.png", "ground_truth/ko/0001_mask.png",
            "source_files.csv",
            "test/good/0000.png", "test/ko/0000.png", "test/ko/0001.png",
            "train/good/0000.png", "train/good/0001.png",
        ]
        for path in (out / product).rglob("*.png"):
            with Image.open(path) as img:
                assert img.format == "PNG"
                if path.name.endswith("_mask.png"):
                    assert set(np.unique(np.asarray(img))) == {0, 255}
    # PNG inputs keep their exact bytes (hard link or copy); BMP inputs are re-encoded losslessly.
    raw_png = raw_btad / "BTech_Dataset_transformed/03/train/ok/0000.png"
    assert (out / "03/train/good/0000.png").read_bytes() == raw_png.read_bytes()
    original = np.asarray(Image.open(raw_btad / "BTech_Dataset_transformed/01/test/ko/0000.bmp"))
    assert np.array_equal(np.asarray(Image.open(out / "01/test/ko/0000.png")), original)

    before = _mtimes(out)
    again = convert_btad(raw_btad / "BTech_Dataset_transformed", out, progress=False)  # inner folder works too
    assert again.converted == [] and again.skipped == ["01", "03"] and _mtimes(out) == before


def test_convert_btad_missing_mask_is_left_out(raw_btad, tmp_path):
    (raw_btad / "BTech_Dataset_transformed/01/ground_truth/ko/0001.png").unlink()
    result = convert_btad(raw_btad, tmp_path / "btad", progress=False)
    assert [Path(p).name for p in result.missing_masks] == ["0001.bmp"]
    assert not (tmp_path / "btad/01/test/ko/0001.png").exists()
    assert (tmp_path / "btad/03/test/ko/0001.png").exists()


def test_convert_btad_wrong_folder(tmp_path):
    with pytest.raises(ConversionError, match="No BTAD products"):
        convert_btad(tmp_path, tmp_path / "out", progress=False)


# ----------------------------------------------------------------------------- Retinal-OCT
def test_convert_retinal_oct(tmp_path):
    base = tmp_path / "raw" / "oct2017" / "OCT2017 "  # Kaggle's folder name ends with a space
    for split, n in (("train", 2), ("test", 1), ("val", 1)):
        for cls in ("CNV", "DME", "DRUSEN", "NORMAL"):
            for i in range(n):
                _image(base / split / cls / f"{cls}-{100 + i}-{i}.jpeg", fmt="JPEG", gray=True)
    assert find_oct_root(tmp_path / "raw") == base
    out = tmp_path / "retinal_oct"
    result = convert_retinal_oct(tmp_path / "raw", out, progress=False)
    assert result.converted == ["oct"]
    assert _files(out / "oct") == [
        MARKER_NAME, "source_files.csv",
        "test/cnv/CNV-100-0.jpeg", "test/dme/DME-100-0.jpeg", "test/drusen/DRUSEN-100-0.jpeg",
        "test/good/NORMAL-100-0.jpeg",
        "train/good/NORMAL-100-0.jpeg", "train/good/NORMAL-101-1.jpeg",
    ]
    assert not (out / "oct" / "ground_truth").exists()  # image-level labels only
    before = _mtimes(out)
    assert convert_retinal_oct(tmp_path / "raw", out, progress=False).skipped == ["oct"]
    assert _mtimes(out) == before


# ----------------------------------------------------------------------------- masks
@pytest.mark.parametrize("mode", ["L", "P", "RGB", "1", "I;16"])
def test_binarise_mask_modes(mode):
    arr = np.zeros((4, 5), np.uint8)
    arr[1, 2] = 1
    img = Image.fromarray(arr)
    if mode == "P":
        img = img.convert("P")
        img.putpalette([0, 0, 0, 9, 9, 9] + [0] * 762)
    elif mode == "I;16":
        img = Image.fromarray(arr.astype(np.uint16) * 300)
    else:
        img = img.convert(mode) if mode != "1" else Image.fromarray(arr.astype(bool))
    out = np.asarray(binarise_mask(img))
    expected = np.zeros((4, 5), np.uint8)
    expected[1, 2] = 255
    assert np.array_equal(out, expected)


def test_parallel_conversion_matches_serial(tmp_path):
    from anolearn.data import convert as cv

    jobs = []
    for i in range(60):
        src = tmp_path / "src" / f"{i}.bmp"
        _image(src, size=(8, 8), fmt="BMP")
        jobs.append(("png", str(src), str(tmp_path / "dst" / f"{i}.png"), 0))
    (tmp_path / "dst").mkdir()
    cv._run_jobs(jobs, workers=2, desc="test", progress=False)
    for kind, src, dst, _ in jobs:
        assert np.array_equal(np.asarray(Image.open(dst)), np.asarray(Image.open(src)))


def test_fetch_retinal_oct_script_with_local_zip(tmp_path, capsys):
    import importlib.util
    import zipfile

    path = Path(__file__).resolve().parents[1] / "data_scripts" / "fetch_retinal_oct.py"
    spec = importlib.util.spec_from_file_location("_script_fetch_retinal_oct", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)

    archive = tmp_path / "archive.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for split in ("train", "test"):
            for cls in ("CNV", "DME", "DRUSEN", "NORMAL"):
                zf.writestr(f"OCT2017 /{split}/{cls}/{cls}-1-0.jpeg", b"jpeg bytes")
    root = tmp_path / "retinal_oct"
    assert script.main(["--archive", str(archive), "--root", str(root), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "SHA-256" in captured.out and "no pixel masks" in captured.out
    assert "differ from Kaggle" in captured.err  # a 1-image toy is not the real split
    assert (root / "oct/test/drusen/DRUSEN-1-0.jpeg").read_bytes() == b"jpeg bytes"
    assert (tmp_path / "retinal_oct_raw" / ".anolearn_complete").is_file()
    # Second run: already converted, needs no --archive.
    assert script.main(["--root", str(root), "--no-progress"]) == 0
    assert "already converted" in capsys.readouterr().out
