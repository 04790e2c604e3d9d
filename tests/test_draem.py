"""DRAEM: network shapes, initialisation, losses, image score, determinism, save/load.

SSIM (the reconstruction loss) is checked against scikit-image in tests/test_nn_blocks.py and the
focal loss against torchvision in tests/test_focal.py; DRAEM's forger in tests/test_forge_draem.py.
"""
import inspect

import pytest
import torch

from anolearn.filters import mean_filter
from anolearn.methods import DRAEM, create_method, evaluate, load_method
from anolearn.methods.draem_nets import DraemNet
from tiny_data import SquareDefects, smooth_images as _train

TINY = {"rec_width": 4, "rec_depth": 2, "seg_width": 4, "seg_depth": 3, "epochs": None, "steps": 3, "batch_size": 4, "lr": 1e-3,
            "input_size": None, "score_filter": 5, "source": "textures", "log_every": 1}


def test_networks_shapes_skips_and_decoder_features():
    rec = DraemNet(3, 3, base_width=4, depth=3, skips=False)
    seg = DraemNet(6, 2, base_width=4, depth=3, skips=True)
    x = torch.rand(2, 3, 32, 32)
    y, feats = rec(x, return_features=True)
    assert y.shape == (2, 3, 32, 32) and seg(torch.cat([y, x], 1)).shape == (2, 2, 32, 32)
    assert rec.widths == [4, 8, 16, 32] and sorted(feats) == [0, 1, 2, 3]
    for lv, f in feats.items():
        assert f.shape == (2, rec.widths[lv], 32 >> lv, 32 >> lv)
    # the reconstructive net has no skips: its decoder blocks read only the upsampled features
    assert rec.dec[-1][0].in_channels == 4 and seg.dec[-1][0].in_channels == 8
    with pytest.raises(ValueError, match="divisible"):
        rec(torch.rand(1, 3, 30, 30))


def test_official_defaults_and_initialisation():
    d = {k: v.default for k, v in inspect.signature(DRAEM).parameters.items()}  # without building the big nets
    assert (d["rec_width"], d["seg_width"], d["rec_depth"], d["seg_depth"]) == (128, 64, 4, 5)
    assert (d["epochs"], d["batch_size"], d["lr"], d["input_size"]) == (700, 8, 1e-4, 256)
    assert d["lr_milestones"] == (0.8, 0.9) and d["lr_gamma"] == 0.2 and d["score_filter"] == 21 and d["gamma"] == 2.0
    assert (d["p_normal"], d["beta"], d["p_rotate"]) == (0.5, (0.2, 1.0), 0.3)  # the official code's forging
    m = DRAEM(rec_width=16, seg_width=16)
    assert m.discriminative.enc[0][0].in_channels == 6  # [reconstruction, image]
    w = torch.cat([p.flatten() for n, p in m.named_parameters() if n.endswith("weight") and p.dim() == 4])
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 1e-3  # N(0, 0.02)


def test_fit_predict_score_is_max_of_mean_filtered_map():
    m = create_method("draem", **TINY)
    assert isinstance(m, DRAEM)
    with pytest.raises(RuntimeError, match="fit"):
        m.predict(torch.rand(1, 3, 32, 32))
    m.fit(_train(), progress=False)
    x = torch.rand(3, 3, 32, 32)
    out = m.predict(x)
    assert out.scores.shape == (3,) and out.maps.shape == (3, 32, 32)
    assert float(out.maps.min()) >= 0 and float(out.maps.max()) <= 1  # a probability
    torch.testing.assert_close(out.scores, mean_filter(out.maps, 5).flatten(1).amax(1))
    h = m.history
    assert h["step"] == [1, 2, 3]
    for i in range(3):
        assert h["loss"][i] == pytest.approx(h["l2"][i] + h["ssim"][i] + h["focal"][i], rel=1e-5)
    metrics = evaluate(m, SquareDefects(_train(4, seed=5), [0, 0, 1, 1], paint=True), progress=False)
    assert 0 <= metrics["image_auroc"] <= 1 and 0 <= metrics["aupro"] <= 1


def test_input_size_resizes_and_maps_come_back():
    m = DRAEM(**{**TINY, "input_size": 16, "score_filter": 3}).fit(_train(), progress=False)
    out = m.outputs(torch.rand(2, 3, 32, 32))
    assert out["anomaly"].shape == (2, 1, 32, 32) and out["rec"].shape == (2, 3, 32, 32)


def test_epochs_set_the_step_count():
    m = DRAEM(**{**TINY, "epochs": 2}).fit(_train(8), progress=False)
    assert int(m.trained_steps) == 2 * (8 // 4)


def test_determinism_and_save_load(tmp_path):
    a = DRAEM(**{**TINY, "train_crop": 16}).fit(_train(), progress=False)
    b = DRAEM(**{**TINY, "train_crop": 16}).fit(_train(), progress=False)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(9))
    pa, pb = a.predict(x), b.predict(x)
    assert torch.equal(pa.maps, pb.maps) and a.history == b.history
    c = DRAEM(**{**TINY, "train_crop": 16, "seed": 1}).fit(_train(), progress=False)
    assert not torch.equal(c.predict(x).maps, pa.maps)
    loaded = load_method(a.save(tmp_path / "draem.pt"))
    assert isinstance(loaded, DRAEM) and loaded.config() == a.config()
    pl = loaded.predict(x)
    torch.testing.assert_close(pl.maps, pa.maps)
    torch.testing.assert_close(pl.scores, pa.scores)


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="odd"):
        DRAEM(score_filter=20)
    with pytest.raises(ValueError, match="batch_size"):
        DRAEM(batch_size=1)
