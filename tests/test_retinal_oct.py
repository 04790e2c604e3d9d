"""Retinal-OCT loader on a miniature OCT2017 tree (raw Kaggle layout and the converted one)."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from anolearn.data.convert import convert_retinal_oct
from anolearn.data.mvtec import DatasetError
from anolearn.data.retinal_oct import RetinalOCT, index_oct


def _raw_tree(root: Path, n_train=4, n_test=3) -> Path:
    rng = np.random.default_rng(0)
    base = root / "OCT2017 "  # Kaggle's folder name ends with a space
    for split, n in (("train", n_train), ("test", n_test), ("val", 1)):
        for cls in ("CNV", "DME", "DRUSEN", "NORMAL"):
            for i in range(n):
                path = base / split / cls / f"{cls}-{100 + i}-{i}.jpeg"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (40, 60), dtype=np.uint8)).save(path, format="JPEG")
    return root


@pytest.mark.parametrize("layout", ["raw", "converted"])
def test_splits_labels_and_shapes(tmp_path, layout):
    root = _raw_tree(tmp_path / "raw")
    if layout == "converted":
        convert_retinal_oct(root, tmp_path / "retinal_oct", progress=False)
        root = tmp_path / "retinal_oct"
    train = RetinalOCT("train", image_size=32, root=root)
    assert len(train) == 4 and set(train.defects) == {"good"} and not train.labels.any()  # NORMAL only
    test = RetinalOCT("test", image_size=32, root=root)
    assert len(test) == 12 and test.labels.sum() == 9
    assert sorted(set(test.defects)) == ["cnv", "dme", "drusen", "good"]
    s = test[0]
    assert s["image"].shape == (3, 32, 32) and s["mask"].shape == (1, 32, 32) and not s["mask"].any()
    assert torch.equal(s["image"][0], s["image"][2])  # grayscale repeated
    assert test.has_masks is False


def test_preload_matches_reading_and_limit_is_per_class(tmp_path):
    root = _raw_tree(tmp_path / "raw")
    lazy = RetinalOCT("test", image_size=32, root=root)
    loaded = RetinalOCT("test", image_size=32, root=root, preload=True, workers=2, progress=False)
    assert loaded.pixels.shape == (12, 1, 32, 32) and loaded.pixels.dtype == torch.uint8
    assert torch.allclose(loaded[5]["image"], lazy[5]["image"], atol=0.5 / 255 + 1e-6)
    sub = RetinalOCT("test", image_size=32, root=root, limit=8, seed=1)
    assert len(sub) == 8 and all(sub.defects.count(c) == 2 for c in ("good", "cnv", "dme", "drusen"))
    assert [p for p, _ in sub.items] == [p for p, _ in RetinalOCT("test", 32, root, limit=8, seed=1).items]


def test_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="fetch_retinal_oct"):
        index_oct(tmp_path / "nothing", "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="OCT2017"):
        index_oct(tmp_path / "empty", "test")
