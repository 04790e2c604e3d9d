"""Tests of the built-in synthetic dataset (anolearn.data.synthetic).

Small images (64 px) and few of them, so the whole file runs in seconds on a CPU.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from anolearn.config import get_profile
from anolearn.data import synthetic as syn
from anolearn.data.synthetic import (CATEGORIES, OBJECTS, TEXTURES, ensure_synthetic, render_defective,
                                     render_normal, render_pair, write_category)
from anolearn.data.synthetic.writer import image_rng, split_counts

SIZE = 64
PAIRS = [(c, d) for c, info in CATEGORIES.items() for d in info.defects]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- catalogue

def test_catalogue():
    assert 6 <= len(CATEGORIES) <= 7
    assert len(TEXTURES) >= 3 and len(OBJECTS) >= 3
    assert set(TEXTURES) | set(OBJECTS) == set(CATEGORIES)
    for name, info in CATEGORIES.items():
        assert info.name == name and info.kind in ("texture", "object") and info.description
        assert len(info.defects) >= 4
        assert all(d.isalpha() and d.islower() and d != "good" for d in info.defects)
        assert ("missing" in info.defects) == (info.kind == "object")


def test_unknown_names_raise():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="Unknown synthetic category"):
        render_normal("nope", SIZE, rng)
    with pytest.raises(ValueError, match="has no defect"):
        render_defective("wood", "missing", SIZE, rng)


# ----------------------------------------------------------------------------- single images

@pytest.mark.parametrize("category", list(CATEGORIES))
def test_render_normal(category):
    img, part = render_normal(category, SIZE, np.random.default_rng(1))
    assert img.shape == (SIZE, SIZE, 3) and img.dtype == np.uint8
    assert part.shape == (SIZE, SIZE) and part.dtype == bool
    if CATEGORIES[category].kind == "texture":
        assert part.all()
    else:
        assert 0.05 < part.mean() < 0.6  # a part on a background, background visible
    # no two training images alike
    imgs = [render_normal(category, SIZE, image_rng(0, category, "train/good", i))[0] for i in range(8)]
    flat = {im.tobytes() for im in imgs}
    assert len(flat) == len(imgs)


@pytest.mark.parametrize("category,defect", PAIRS)
def test_defect_mask_is_exact(category, defect):
    for i in range(3):
        s = render_pair(category, defect, SIZE, image_rng(0, category, f"test/{defect}", i))
        assert s.image.dtype == np.uint8 and s.mask.dtype == bool
        assert s.mask.sum() >= syn.render.min_defect_pixels(SIZE)
        # exactly the changed pixels: untouched outside, changed (in some channel) inside
        np.testing.assert_array_equal(s.mask, np.any(s.image != s.clean, axis=-1))
        assert np.array_equal(s.image[~s.mask], s.clean[~s.mask])
        # the clean half is a normal image of the same scene
        clean, part = render_normal(category, SIZE, image_rng(0, category, f"test/{defect}", i))
        np.testing.assert_array_equal(clean, s.clean)
        np.testing.assert_array_equal(part, s.part)
    # the public function gives the same image and mask for the same generator state
    img, mask = render_defective(category, defect, SIZE, image_rng(0, category, f"test/{defect}", 0))
    s = render_pair(category, defect, SIZE, image_rng(0, category, f"test/{defect}", 0))
    np.testing.assert_array_equal(img, s.image)
    np.testing.assert_array_equal(mask, s.mask)


@pytest.mark.parametrize("category,defect", [(c, d) for c, d in PAIRS if c in OBJECTS])
def test_object_defects_lie_on_the_part(category, defect):
    for i in range(4):
        s = render_pair(category, defect, SIZE, image_rng(3, category, f"test/{defect}", i))
        # the silhouette plus its anti-aliased fringe
        fringe = ndimage.binary_dilation(s.part, structure=np.ones((3, 3), bool))
        assert not (s.mask & ~fringe).any()
        if defect == "missing":
            # a removed chunk of the part: inside the silhouette, bar its anti-aliased fringe
            assert (s.mask & s.part).sum() >= 0.7 * s.mask.sum()


# ----------------------------------------------------------------------------- writing

def test_layout(tmp_path):
    for category in ("wood", "washer"):
        folder = write_category(tmp_path, category, size=SIZE, n_train=3, n_test_good=2,
                                n_test_defect=7, progress=False)
        assert folder == tmp_path / category
        defects = CATEGORIES[category].defects
        assert sorted(p.name for p in (folder / "test").iterdir()) == sorted((*defects, "good"))
        assert sorted(p.name for p in (folder / "ground_truth").iterdir()) == sorted(defects)
        train = sorted(p.name for p in (folder / "train" / "good").iterdir())
        assert train == ["000.png", "001.png", "002.png"]
        assert sorted(p.name for p in (folder / "test" / "good").iterdir()) == ["000.png", "001.png"]
        counts = split_counts(7, defects)
        assert sum(counts.values()) == 7 and max(counts.values()) - min(counts.values()) <= 1
        for d, n in counts.items():
            imgs = sorted((folder / "test" / d).glob("*.png"))
            masks = sorted((folder / "ground_truth" / d).glob("*.png"))
            assert [p.stem for p in imgs] == [f"{i:03d}" for i in range(n)]
            assert [p.name for p in masks] == [f"{i:03d}_mask.png" for i in range(n)]
            for ip, mp in zip(imgs, masks):
                im, m = Image.open(ip), Image.open(mp)
                assert im.mode == "RGB" and m.mode == "L" and im.size == m.size == (SIZE, SIZE)
                values = np.unique(np.asarray(m))
                assert set(values.tolist()) <= {0, 255} and 255 in values
        for p in (folder / "train" / "good").glob("*.png"):
            assert Image.open(p).mode == "RGB"
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["size"] == SIZE and manifest["defects"] == counts
        assert manifest["format_version"] == syn.FORMAT_VERSION
    assert sorted(p.name for p in tmp_path.iterdir()) == ["washer", "wood"]  # no temp folders


def test_written_mask_matches_renderer(tmp_path):
    folder = write_category(tmp_path, "capsule", size=SIZE, n_train=1, n_test_good=1,
                            n_test_defect=5, seed=4, progress=False)
    s = render_pair("capsule", "crack", SIZE, image_rng(4, "capsule", "test/crack", 0))
    np.testing.assert_array_equal(np.asarray(Image.open(folder / "test/crack/000.png")), s.image)
    mask = np.asarray(Image.open(folder / "ground_truth/crack/000_mask.png"))
    np.testing.assert_array_equal(mask == 255, s.mask)


def test_deterministic(tmp_path):
    kw = dict(size=SIZE, n_train=3, n_test_good=2, n_test_defect=5, progress=False)
    a = _files(write_category(tmp_path / "a", "brick", seed=7, **kw))
    b = _files(write_category(tmp_path / "b", "brick", seed=7, **kw))
    c = _files(write_category(tmp_path / "c", "brick", seed=8, **kw))
    assert a == b
    pngs = [k for k in a if k.endswith(".png") and "ground_truth" not in k]
    assert all(a[k] != c[k] for k in pngs)
    # an image does not depend on how many others were made
    d = _files(write_category(tmp_path / "d", "brick", seed=7, size=SIZE, n_train=5,
                              n_test_good=1, n_test_defect=10, progress=False))
    assert d["train/good/002.png"] == a["train/good/002.png"]
    assert d["test/hole/000.png"] == a["test/hole/000.png"]


def test_manifest_logic(tmp_path, capsys):
    kw = dict(size=SIZE, n_test_good=2, n_test_defect=4, progress=False)
    folder = write_category(tmp_path, "hexnut", n_train=2, **kw)
    probe = folder / "train/good/000.png"
    stamp = probe.stat().st_mtime_ns, probe.stat().st_ino
    # identical parameters: nothing is rewritten
    write_category(tmp_path, "hexnut", n_train=2, **kw)
    assert (probe.stat().st_mtime_ns, probe.stat().st_ino) == stamp
    assert capsys.readouterr().out == ""
    # other parameters: regenerated, and said so
    write_category(tmp_path, "hexnut", n_train=3, **kw)
    assert "regenerating" in capsys.readouterr().out
    assert len(list((folder / "train/good").glob("*.png"))) == 3
    assert json.loads((folder / "manifest.json").read_text())["n_train"] == 3
    # overwrite=True always regenerates
    stamp = probe.stat().st_ino
    write_category(tmp_path, "hexnut", n_train=3, overwrite=True, **kw)
    assert probe.stat().st_ino != stamp
    assert [p.name for p in tmp_path.iterdir()] == ["hexnut"]


def test_atomic_on_failure(tmp_path, monkeypatch):
    kw = dict(size=SIZE, n_train=3, n_test_good=2, n_test_defect=4, progress=False)
    folder = write_category(tmp_path, "weave", **kw)
    before = _files(folder)
    calls = {"n": 0}
    real = syn.writer.render_normal

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:
            raise KeyboardInterrupt("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(syn.writer, "render_normal", flaky)
    with pytest.raises(KeyboardInterrupt):
        write_category(tmp_path, "weave", seed=1, **kw)
    assert _files(folder) == before  # the old version is intact
    with pytest.raises(KeyboardInterrupt):
        write_category(tmp_path, "wood", **kw)
    assert [p.name for p in tmp_path.iterdir()] == ["weave"]  # no half category, no temp folder


def test_ensure_synthetic(tmp_path, monkeypatch):
    monkeypatch.setenv("ANOLEARN_DATA", str(tmp_path / "data"))
    profile = get_profile("quick", synthetic_size=SIZE, n_train=2, n_test_good=1, n_test_defect=5)
    root = ensure_synthetic(["washer"], profile=profile)
    assert root == tmp_path / "data" / "synthetic" / f"{SIZE}px-quick"
    manifest = json.loads((root / "washer" / "manifest.json").read_text())
    assert (manifest["n_train"], manifest["n_test_good"], manifest["n_test_defect"]) == (2, 1, 5)
    assert manifest["seed"] == profile.seed
    other = ensure_synthetic("wood", profile=profile, root=tmp_path / "elsewhere", seed=3)
    assert json.loads((other / "wood" / "manifest.json").read_text())["seed"] == 3


def test_cli(tmp_path, capsys):
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "data_scripts" / "make_synthetic.py"
    spec = importlib.util.spec_from_file_location("make_synthetic", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    root = module.main(["--root", str(tmp_path), "--size", "48", "--categories", "gravel",
                        "--profile", "quick", "--seed", "2", "--quiet"])
    assert root == tmp_path and str(tmp_path) in capsys.readouterr().out
    manifest = json.loads((tmp_path / "gravel" / "manifest.json").read_text())
    assert (manifest["size"], manifest["seed"]) == (48, 2)


# ----------------------------------------------------------------------------- difficulty

@pytest.mark.parametrize("category", ["wood", "washer"])
def test_raw_pixel_baseline_does_not_solve_it(category):
    """Distance to the mean normal image must not detect the defects: pose, phase and light
    vary more than a defect changes the pixels."""
    train = np.stack([render_normal(category, SIZE, image_rng(0, category, "train/good", i))[0]
                      for i in range(30)]).astype(np.float32)
    test, labels = [], []
    for i in range(15):
        test.append(render_normal(category, SIZE, image_rng(0, category, "test/good", i))[0])
        labels.append(0)
    for d, n in split_counts(15, CATEGORIES[category].defects).items():
        for i in range(n):
            test.append(render_defective(category, d, SIZE, image_rng(0, category, f"test/{d}", i))[0])
            labels.append(1)
    scores = ((np.stack(test).astype(np.float32) - train.mean(0)) ** 2).mean(axis=(1, 2, 3))
    assert roc_auc_score(labels, scores) < 0.9


def test_silhouettes_are_the_rendered_parts_and_check_the_loaded_images():
    profile = get_profile("quick", synthetic_size=SIZE, image_size=SIZE)
    images = np.stack([render_normal("washer", SIZE, image_rng(profile.seed, "washer", "train/good", i))[0]
                       for i in range(3)])
    images = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255  # as loaded from the files
    sil = syn.silhouettes("washer", 3, profile, images)
    part = render_normal("washer", SIZE, image_rng(profile.seed, "washer", "train/good", 1))[1]
    assert sil.shape == (3, 1, SIZE, SIZE) and torch.equal(sil[1, 0], torch.from_numpy(part).float())
    assert torch.equal(syn.silhouettes("wood", 1, profile), torch.ones(1, 1, SIZE, SIZE))  # a texture is all part
    with pytest.raises(ValueError, match="differs from the file on disk"):
        syn.silhouettes("washer", 3, profile, images.flip(0))
    larger = get_profile("quick", synthetic_size=SIZE, image_size=2 * SIZE)
    assert syn.silhouettes("washer", 1, larger).shape == (1, 1, 2 * SIZE, 2 * SIZE)  # nearest-neighbour resize
