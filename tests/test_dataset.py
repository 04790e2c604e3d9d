import cv2
import numpy as np
import pytest
import torch

from anolearn.data import DatasetError, ImageReadError, MVTecDataset, load_dataset


def test_reads_real_mvtec_layout(mvtec_root):
    train = MVTecDataset(mvtec_root, "bottle", split="train", image_size=32)
    assert len(train) == 4 and all(s.label == 0 for s in train.samples)
    test = MVTecDataset(mvtec_root, "bottle", split="test", image_size=32)
    assert len(test) == 2 + 3 * 2
    assert set(test.defects) == {"good", "broken_large", "broken_small", "contamination"}
    sample = test[test.defects.index("broken_small")]
    assert sample["image"].shape == (3, 32, 32) and sample["image"].dtype == torch.float32
    assert 0 <= sample["image"].min() and sample["image"].max() <= 1
    assert sample["mask"].shape == (1, 32, 32)
    assert set(sample["mask"].unique().tolist()) == {0.0, 1.0}  # 0/255 file -> {0, 1}, nearest resize
    assert sample["label"] == 1 and sample["path"].endswith("000.png")
    good = test[test.defects.index("good")]
    assert good["label"] == 0 and good["mask"].sum() == 0


def test_grayscale_category_becomes_three_channels(mvtec_root):
    ds = MVTecDataset(mvtec_root, "screw", split="test", image_size=(24, 40))
    s = ds[0]
    assert s["image"].shape == (3, 24, 40) and s["mask"].shape == (1, 24, 40)
    assert torch.equal(s["image"][0], s["image"][1]) and torch.equal(s["image"][1], s["image"][2])


def test_mask_resize_is_nearest_and_aligned(mvtec_root):
    # The fixture's mask covers rows 12..23, cols 12..23 of a 48px image; at 24px: rows/cols 6..11.
    ds = MVTecDataset(mvtec_root, "bottle", split="test", image_size=24)
    mask = ds[ds.defects.index("broken_large")]["mask"][0]
    assert mask.sum() == 36 and mask[6:12, 6:12].sum() == 36


def test_original_size_and_tensors(mvtec_root):
    ds = MVTecDataset(mvtec_root, "bottle", split="test", image_size=None)
    assert ds[0]["image"].shape == (3, 48, 48)
    t = ds.tensors()
    assert t["image"].shape == (8, 3, 48, 48) and t["label"].tolist() == ds.labels.tolist()


def test_category_folder_as_root_and_custom_train_only(tmp_path, mvtec_root):
    ds = MVTecDataset(mvtec_root / "bottle", None, split="train", image_size=16)
    assert len(ds) == 4
    custom = tmp_path / "my_parts" / "train" / "good"
    custom.mkdir(parents=True)
    cv2.imwrite(str(custom / "a.jpg"), np.full((20, 30, 3), 128, np.uint8))
    assert len(MVTecDataset(tmp_path / "my_parts", None, "train", image_size=16)) == 1
    with pytest.raises(DatasetError, match="training images only"):
        MVTecDataset(tmp_path / "my_parts", None, "test")


def test_missing_root_names_the_fetch_script(tmp_path):
    with pytest.raises(DatasetError, match="data_scripts/fetch_mvtec_ad.py"):
        MVTecDataset(tmp_path / "nowhere", "bottle")


def test_missing_category_lists_the_available_ones(mvtec_root):
    with pytest.raises(DatasetError, match="bottle, screw"):
        MVTecDataset(mvtec_root, "capsule")


def test_empty_train_folder(mvtec_root):
    for f in (mvtec_root / "bottle" / "train" / "good").iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match="No training images"):
        MVTecDataset(mvtec_root, "bottle", "train")


def test_defect_image_without_mask(mvtec_root):
    (mvtec_root / "bottle" / "ground_truth" / "contamination" / "001_mask.png").unlink()
    with pytest.raises(DatasetError, match="001_mask.png"):
        MVTecDataset(mvtec_root, "bottle", "test")


def test_mask_of_wrong_size(mvtec_root):
    bad = mvtec_root / "bottle" / "ground_truth" / "broken_small" / "000_mask.png"
    cv2.imwrite(str(bad), np.zeros((20, 20), np.uint8))
    ds = MVTecDataset(mvtec_root, "bottle", "test", image_size=32)
    with pytest.raises(DatasetError, match="same size"):
        ds[ds.defects.index("broken_small")]


def test_corrupt_image_names_the_file(mvtec_root):
    bad = mvtec_root / "bottle" / "train" / "good" / "002.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ds = MVTecDataset(mvtec_root, "bottle", "train", image_size=32)
    with pytest.raises(ImageReadError, match="002.png"):
        ds[2]


def test_load_dataset_on_a_folder_and_missing_real_dataset(mvtec_root, tmp_path, monkeypatch):
    from anolearn.config import get_profile

    ds = load_dataset(str(mvtec_root), "bottle", "test", profile=get_profile("quick", image_size=16))
    assert ds[0]["image"].shape == (3, 16, 16)
    monkeypatch.setenv("ANOLEARN_DATA", str(tmp_path / "empty_data_root"))
    with pytest.raises(DatasetError, match="fetch_visa.py"):
        load_dataset("visa", "candle", "train")


def test_dataloader_collates_samples(mvtec_root):
    ds = MVTecDataset(mvtec_root, "bottle", "test", image_size=16)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 3, 16, 16) and len(batch["defect"]) == 4
