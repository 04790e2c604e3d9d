"""RIAD: composition, losses on known inputs, training contract, determinism, save/load."""
import numpy as np
import pytest
import torch
from scipy import ndimage

from anolearn.masking import compose, grid_masks
from anolearn.methods import RIAD, create_method, evaluate, load_method
from anolearn.methods.riad import k_weight_vector, smooth_maps
from tiny_data import SquareDefects, smooth_images as _train

TINY = {"ks": (2, 4), "base_width": 4, "depth": 2, "batch_size": 4}


def test_fit_predict_shapes_history_and_registry():
    m = create_method("riad", steps=3, **TINY)
    assert isinstance(m, RIAD)
    with pytest.raises(RuntimeError, match="fit"):
        m.predict(torch.rand(1, 3, 32, 32))
    m.fit(_train(), progress=False)
    out = m.predict(torch.rand(2, 3, 32, 32))
    assert out.scores.shape == (2,) and out.maps.shape == (2, 32, 32)
    assert torch.allclose(out.scores, out.maps.flatten(1).amax(1))  # image score = max of the smoothed map
    assert len(m.history) == 3 and {"loss", "l2", "msgms", "ssim", "k", "lr"} <= set(m.history[0])
    assert all(h["k"] in (2, 4) for h in m.history)


def test_fit_accepts_a_dataset_and_epochs_set_the_step_count():
    m = RIAD(epochs=2, **TINY).fit(SquareDefects(_train(10)), progress=False)
    assert len(m.history) == 2 * (10 // 4)  # incomplete last batches are dropped
    labels = [0, 0, 1, 1]
    test = SquareDefects(_train(4, seed=3), labels)
    metrics = evaluate(m, test, progress=False)
    assert 0 <= metrics["image_auroc"] <= 1 and "aupro" in metrics


def test_training_reduces_the_loss():
    m = RIAD(steps=40, lr=3e-3, **TINY).fit(_train(), progress=False)
    first = np.mean([h["loss"] for h in m.history[:5]])
    last = np.mean([h["loss"] for h in m.history[-5:]])
    assert last < 0.7 * first


def test_losses_on_known_inputs():
    m = RIAD(**TINY)
    x = _train(2)
    zero = m.reconstruction_losses(x, x.clone())
    assert all(abs(v.item()) < 1e-6 for v in zero.values())
    shifted = m.reconstruction_losses(x, x + 0.1)  # a brightness shift keeps every edge
    assert abs(shifted["l2"].item() - 0.01) < 1e-6 and shifted["msgms"].item() < 1e-6
    assert torch.isclose(shifted["loss"], shifted["l2"] + shifted["msgms"] + shifted["ssim"])
    weighted = RIAD(w_l2=2.0, w_gms=0.0, w_ssim=0.5, **TINY).reconstruction_losses(x, x + 0.1)
    assert torch.isclose(weighted["loss"], 2 * shifted["l2"] + 0.5 * shifted["ssim"])


def test_training_loss_is_computed_on_the_composed_reconstruction():
    m = RIAD(**TINY).eval()  # eval mode: batch norm uses fixed statistics, so both paths agree exactly
    x = _train(2)
    masks = grid_masks(4, 32, 3, 2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = m.training_loss(x, masks)
        outs = m.inpaint(x, masks)  # (3, 2, 3, 32, 32): all three passes in one batch
        one_by_one = torch.stack([m.net(x * masks[i]) for i in range(3)])
    assert outs.shape == (3, 2, 3, 32, 32) and torch.allclose(outs, one_by_one, atol=1e-6)
    x_hat = compose(outs, masks)
    assert torch.allclose(got["l2"], ((x - x_hat) ** 2).mean())
    assert torch.allclose(got["loss"], m.reconstruction_losses(x, x_hat)["loss"])


def test_reconstruct_for_figures():
    m = RIAD(steps=1, **TINY).fit(_train(), progress=False)
    r = m.reconstruct(_train(2), k=4)
    assert r["masks"].shape == (3, 1, 1, 32, 32) and r["outputs"].shape == (3, 2, 3, 32, 32)
    assert torch.allclose(r["x_hat"], compose(r["outputs"], r["masks"]))
    assert r["map"].shape == (2, 32, 32)


def test_determinism_and_batch_independence():
    a = RIAD(steps=3, **TINY).fit(_train(), progress=False)
    b = RIAD(steps=3, **TINY).fit(_train(), progress=False)
    c = RIAD(steps=3, seed=1, **TINY).fit(_train(), progress=False)
    x = _train(3, seed=9)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert torch.equal(a.predict(x).maps, b.predict(x).maps)
    assert not torch.equal(a.predict(x).maps, c.predict(x).maps)
    # the test masks are fixed, so an image's map does not depend on its batch
    assert torch.allclose(a.predict(x[1:2]).maps[0], a.predict(x).maps[1], atol=1e-6)


def test_save_load_round_trip(tmp_path):
    m = RIAD(steps=2, sigma=2.0, k_weights="area", **TINY).fit(_train(), progress=False)
    path = m.save(tmp_path / "riad.pt")
    again = load_method(path)
    assert type(again) is RIAD and again.config() == m.config()
    x = _train(2, seed=5)
    assert torch.allclose(m.predict(x).maps, again.predict(x).maps)
    torch.load(path, weights_only=True)


def test_train_crop():
    m = RIAD(steps=2, train_crop=16, **TINY)
    assert m.random_crop(torch.rand(2, 3, 32, 32), torch.Generator().manual_seed(0)).shape == (2, 3, 16, 16)
    m.fit(_train(), progress=False)
    assert m.predict(_train(1)).maps.shape == (1, 32, 32)  # inference on whole images


def test_k_weights_and_smoothing():
    assert k_weight_vector((2, 4, 8), (128, 128), "uniform") == [1 / 3] * 3
    area = k_weight_vector((2, 4, 8), (128, 128), "area")  # the code's 1 / N_k^2: 1 : 4 : 16
    assert np.allclose(area, [1 / 21, 4 / 21, 16 / 21])
    maps = torch.rand(2, 20, 70, dtype=torch.float64)
    ref = ndimage.gaussian_filter1d(maps.numpy(), 3.0, axis=-1, mode="reflect", truncate=4.0)
    assert np.allclose(smooth_maps(maps, 3.0, "row1d").numpy(), ref)  # the code's per-row blur
    assert torch.equal(smooth_maps(maps, 3.0, "none"), maps)
    assert smooth_maps(maps, 3.0).shape == maps.shape


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_masks"):
        RIAD(n_masks=1)
    with pytest.raises(ValueError, match="smoothing"):
        RIAD(smoothing="box")
    with pytest.raises(ValueError, match="ks"):
        RIAD(ks=(0, 2))
