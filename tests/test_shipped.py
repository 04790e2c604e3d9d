"""Shipped models: the hash is checked before loading, compaction keeps the model, the size limits hold."""
import json

import pytest
import torch

import anolearn.shipped as shipped
from anolearn.methods import RIAD, SGSF
from anolearn.shipped import compact_state, load_shipped, sha256

SGSF_TINY = {"ext_width": 4, "ext_depth": 2, "seg_width": 4, "seg_depth": 3, "epochs": None, "steps": 2,
             "batch_size": 4, "lr": 1e-3, "input_size": None, "source": "textures", "retrieval_size": 64,
             "retrieval_grid": 2, "n_contrast": 2, "log_every": 1}


def _images(n=6, size=32, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _ship(tmp_path, monkeypatch, model, name, half, drop=()):
    """Store ``model`` as a shipped model in ``tmp_path`` (the way benchmarks/ship_models.py does)."""
    monkeypatch.setattr(shipped, "HERE", tmp_path)
    monkeypatch.setattr(shipped, "MANIFEST", tmp_path / "manifest.json")
    payload = {"format": 1, "method": model.name, "config": model.config(),
               "state": compact_state(model.checkpoint_state(), half=half, drop=drop)}
    torch.save(payload, tmp_path / f"{name}.pt")
    entry = {"file": f"{name}.pt", "sha256": sha256(tmp_path / f"{name}.pt"), "rebuild": list(drop)}
    models = shipped.manifest()
    models[f"{model.name}/{name}"] = entry
    (tmp_path / "manifest.json").write_text(json.dumps({"models": models}))


def test_float32_model_loads_unchanged_and_a_changed_file_is_refused(tmp_path, monkeypatch):
    model = RIAD(ks=(4,), base_width=4, depth=2, steps=2, batch_size=2, pad=4).fit(_images(), progress=False)
    _ship(tmp_path, monkeypatch, model, "cat", half=False)
    loaded = load_shipped("riad", "cat")
    x = _images(2, seed=1)
    torch.testing.assert_close(loaded.predict(x).maps, model.predict(x).maps, rtol=0, atol=0)
    with open(tmp_path / "cat.pt", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match="SHA-256"):
        load_shipped("riad", "cat")
    with pytest.raises(FileNotFoundError, match="No shipped riad model for 'dog'"):
        load_shipped("riad", "dog")


def test_float16_storage_changes_maps_only_slightly(tmp_path, monkeypatch):
    model = RIAD(ks=(4,), base_width=4, depth=2, steps=3, batch_size=2).fit(_images(), progress=False)
    _ship(tmp_path, monkeypatch, model, "cat", half=True)
    stored = torch.load(tmp_path / "cat.pt", weights_only=True)["state"]
    assert any(v.dtype == torch.float16 for v in stored.values())
    x = _images(2, seed=1)
    a, b = load_shipped("riad", "cat").predict(x).maps, model.predict(x).maps
    assert float((a - b).abs().max()) < 1e-2 * float(b.abs().max())


def test_sgsf_bank_is_left_out_and_rebuilt_from_the_training_images(tmp_path, monkeypatch):
    train = _images()
    model = SGSF(**SGSF_TINY).fit(train, progress=False)
    _ship(tmp_path, monkeypatch, model, "cat", half=False, drop=("bank_images", "bank_features"))
    stored = torch.load(tmp_path / "cat.pt", weights_only=True)["state"]
    assert not any(k.endswith("bank_images") for k in stored)
    with pytest.raises(ValueError, match="training images"):
        load_shipped("sgsf", "cat")
    loaded = load_shipped("sgsf", "cat", train)
    assert torch.equal(loaded.bank_images, model.bank_images)
    x = _images(2, seed=1)
    torch.testing.assert_close(loaded.predict(x).maps, model.predict(x).maps)


def test_the_shipped_models_match_their_manifest_and_stay_small():
    models = shipped.manifest()
    for key, entry in models.items():
        path = shipped.HERE / entry["file"]
        assert sha256(path) == entry["sha256"], key
        assert path.stat().st_size <= 3e6, key  # a few megabytes each: the repository stays small
        assert entry["command"].startswith("python -m anolearn train ") and "--profile standard" in entry["command"]
    assert sum((shipped.HERE / e["file"]).stat().st_size for e in models.values()) <= 30e6


def test_cutswap_gaussians_are_left_out_and_refitted_from_the_training_images(tmp_path, monkeypatch):
    from anolearn.methods import CutPasteGDE
    train = _images(8)
    model = CutPasteGDE(width=4, blocks=(1, 1, 1, 1), head=(8,), steps=2, batch_size=4, patch_size=16,
                        patch_stride=8).fit(train, progress=False)
    _ship(tmp_path, monkeypatch, model, "cat", half=False, drop=("mean", "precision", "shrinkage"))
    stored = torch.load(tmp_path / "cat.pt", weights_only=True)["state"]
    assert not any(k.startswith(("gde.", "patch_gde.")) for k in stored)
    loaded = load_shipped("cutpaste", "cat", train)
    x = _images(2, seed=1)
    torch.testing.assert_close(loaded.predict(x).maps, model.predict(x).maps)
    torch.testing.assert_close(loaded.predict(x).scores, model.predict(x).scores)
