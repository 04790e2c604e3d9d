"""SSM: network composition, losses, progressive refinement (vs a literal re-implementation of the
official loop), score calibration, determinism and save/load."""
import itertools

import numpy as np
import pytest
import torch
from scipy import ndimage

from anolearn.masking import compose, grid_masks
from anolearn.methods import SSM, SSMPrediction, load_method, official_image_scores
from anolearn.methods.ssm import OFFICIAL_TAU
from anolearn.methods.ssm_nets import MaskBlock, SSMNet
from anolearn.nn import msgms_map
from anolearn.seed import make_generator
from tiny_data import smooth_images as _train

TINY = {"base_width": 4, "depth": 2, "batch_size": 4, "steps": 2}


@pytest.fixture(scope="module")
def fitted():
    return SSM(**TINY).fit(_train(), progress=False)


# ----------------------------------------------------------------------------- network
def test_network_composition():
    net = SSMNet(base_width=4, depth=2)
    blocks = [m for m in net.modules() if isinstance(m, MaskBlock)]
    assert len(blocks) == 3  # bottleneck + after each of the 2 up blocks (5 for the code's depth 4)
    assert net.unet.down[0].conv1[0].in_channels == 4  # image + mask reach the encoder
    assert SSMNet(base_width=4, depth=2, encoder_mask=False).unet.down[0].conv1[0].in_channels == 3
    image, mask = net(torch.rand(2, 4, 32, 32))
    assert image.shape == (2, 3, 32, 32) and mask.shape == (2, 1, 32, 32)
    assert image.abs().max() <= 1 and mask.abs().max() <= 1  # tanh head
    with pytest.raises(ValueError, match="4, H, W"):
        net(torch.rand(1, 3, 32, 32))


def test_mask_block_corrects_only_where_the_mask_is_one():
    block = MaskBlock(6).eval()
    f = torch.randn(2, 6, 8, 8)
    assert torch.equal(block(f, torch.zeros(2, 1, 32, 32)), f)  # m = 0: identity
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., :16, :] = 1
    out = block(f, mask)
    assert torch.equal(out[..., 4:, :], f[..., 4:, :]) and not torch.equal(out[..., :4, :], f[..., :4, :])


# ----------------------------------------------------------------------------- losses
def test_losses_on_known_inputs():
    m = SSM(**TINY)
    x = _train(2)
    masks = grid_masks(4, 32, 3, 2, torch.Generator().manual_seed(0))
    n, b = masks.shape[:2]
    # a perfect network: returns the image and the true mask -> every term is 0
    m.restore = lambda images, ms: (images[None].expand(n, -1, -1, -1, -1), ms.expand(n, b, -1, -1, -1))
    parts = m.training_loss(x, masks)
    assert all(abs(v.item()) < 1e-6 for v in parts.values())
    # a network predicting mask 0 everywhere: mask loss = sum_i mean(M_i^2) = sum_i visible fraction
    m.restore = lambda images, ms: (images[None].expand(n, -1, -1, -1, -1), torch.zeros_like(ms))
    parts = m.training_loss(x, masks)
    assert torch.isclose(parts["mask"], masks.mean((1, 2, 3, 4)).sum())
    assert torch.isclose(parts["mask"], torch.tensor(2.0), atol=0.02)  # each mask shows about 2/3
    assert torch.isclose(parts["loss"], parts["mask"])
    m.w_mask = 0.01
    assert torch.isclose(m.training_loss(x, masks)["loss"], 0.01 * parts["mask"])


def test_training_history_has_the_mask_loss(fitted):
    assert len(fitted.history) == 2 and "mask" in fitted.history[0]


# ----------------------------------------------------------------------------- refinement
def test_uncovering_rule_ratio_is_strict():
    # 10 x 10 map, 5 x 5 blocks: the code uncovers a block when mean(confident) > ratio (strictly)
    m = SSM(block=5, ratio=0.8, **TINY)
    confident = torch.zeros(1, 1, 10, 10)
    c = confident[0, 0]
    c[:5, :5] = torch.tensor([1.0] * 21 + [0.0] * 4).view(5, 5)  # 21 / 25 = 0.84 -> uncovered
    c[:5, 5:] = torch.tensor([1.0] * 20 + [0.0] * 5).view(5, 5)  # exactly 0.8 -> stays covered
    c[5:, :5] = 1  # all confident -> uncovered
    out = m.blocks_to_uncover(confident)[0, 0]
    assert out[:5, :5].all() and not out[:5, 5:].any() and out[5:, :5].all() and not out[5:, 5:].any()
    # blocks at the edge of a non-divisible map are cropped, not dropped
    assert m.blocks_to_uncover(torch.ones(1, 1, 12, 12)).all()


def test_clean_threshold_is_the_official_one_in_other_units():
    m = SSM(**TINY)
    size = (128, 128)
    official = m.to_official_units(torch.tensor([OFFICIAL_TAU]), size)
    assert torch.isclose(255 * official, torch.tensor([-0.96]), atol=1e-6)
    # and the two confidence tests agree on both sides of it
    maps = torch.tensor([OFFICIAL_TAU - 1e-4, OFFICIAL_TAU + 1e-4]).view(2, 1, 1)
    clean = m.confident_normal(maps)
    faithful = SSM(faithful=True, **TINY).confident_normal(m.to_official_units(maps, size))
    assert torch.equal(clean, faithful) and clean.flatten().tolist() == [1.0, 0.0]


def test_refinement_monotone_and_pass_by_pass(fitted):
    x = _train(3, seed=4)
    x[0, :, 8:16, 8:16] = 1.0  # a bright square
    m = fitted
    first = m.refine(x)[0].map
    old = m.threshold, m.refine_steps, m.block
    try:
        m.threshold, m.refine_steps, m.block = float(first.quantile(0.6)), 4, 4  # uncover about half
        passes = m.refine(x)
    finally:
        m.threshold, m.refine_steps, m.block = old
    assert [p.t for p in passes] == [0, 1, 2, 3]
    assert not passes[0].uncovered.any()
    areas = [p.uncovered.mean().item() for p in passes]
    assert 0 < areas[1] < 1
    for a, b in itertools.pairwise(passes):
        assert (b.uncovered >= a.uncovered).all()  # the uncovered area never shrinks
    for p in passes[1:]:  # uncovered pixels are visible in every mask and copied from the input
        for k, masks in p.masks.items():
            assert (masks >= p.uncovered[None]).all()
            assert torch.equal(p.x_hat[k] * p.uncovered, x * p.uncovered)
    assert passes[-1].confident is None and passes[0].confident.shape == (3, 1, 32, 32)


def _official_loop(m: SSM, x: torch.Tensor, threshold: float, block: int) -> np.ndarray:
    """The released test.py for one image (batch 1), written out with loops: T = 2 passes, masks
    from seed + num, 8x8-style block uncovering by mean(heat) > ratio, where(output == 0), the
    code's map units, scipy's gaussian_filter on each row."""
    size = x.shape[-1]
    heat = None
    for num in range(2):
        score = 0.0
        gen = make_generator(m.test_seed + num)
        for k in m.ks:
            masks = m.test_masks(k, (size, size), gen)[:, 0, 0].clone()  # (3, H, W)
            if num > 0:
                for mask in masks:
                    for i in range(size // block):
                        for j in range(size // block):
                            if heat[i * block:(i + 1) * block, j * block:(j + 1) * block].mean() > m.ratio:
                                mask[i * block:(i + 1) * block, j * block:(j + 1) * block] = 1
            outputs = []
            for mask in masks:  # one pass per mask, as the code
                inp = torch.cat([x * mask, mask[None, None]], 1)
                outputs.append(m.net(inp)[0])
            output = sum(o * (1 - mk) for o, mk in zip(outputs, masks))
            if num == 1:
                output = torch.where(output == 0, x, output)
            n_cells = size // k
            score = score + (msgms_map(x, output, faithful=True)[0] - 0.75) / n_cells**2
        score = score.numpy().astype(np.float64)
        for i in range(score.shape[0]):
            score[i] = ndimage.gaussian_filter(score[i], sigma=m.sigma)
        if num == 0:
            h = score * 255
            heat = torch.from_numpy(np.where(h <= -threshold, 1.0, 0.0))
    return score


def test_faithful_two_passes_reproduce_the_official_loop():
    m = SSM(faithful=True, block=8, **TINY).fit(_train(size=64), progress=False)
    x = _train(1, size=64, seed=6)
    x[0, :, 20:30, 36:50] = 0.95
    with torch.no_grad():
        first = m.refine(x)[0].map  # pick the threshold so that some, not all, blocks are uncovered
        threshold = float(-255 * first.quantile(0.5))
        m.threshold = threshold
        passes = m.refine(x)
        ref = _official_loop(m, x, threshold, 8)
    assert 0 < passes[1].uncovered.mean() < 1
    assert np.allclose(passes[-1].map[0].numpy(), ref, rtol=1e-4, atol=1e-9)


def test_t1_is_a_single_pass(fitted):
    m = SSM(refine_steps=1, **TINY)
    m._load_state(fitted.state_dict())
    passes = m.refine(_train(2))
    assert len(passes) == 1 and not passes[0].uncovered.any()
    assert torch.allclose(passes[0].map, fitted.refine(_train(2))[0].map)


# ----------------------------------------------------------------------------- prediction and scores
def test_predict_shapes_and_both_image_scores(fitted):
    x = _train(3, seed=2)
    out = fitted.predict(x)
    assert isinstance(out, SSMPrediction)
    assert out.scores.shape == (3,) and out.maps.shape == (3, 32, 32)
    assert torch.allclose(out.score_max, out.maps.flatten(1).amax(1))
    assert torch.allclose(out.scores, out.score_combined)
    mean, std = fitted.calibration
    assert torch.allclose(out.score_combined, (out.score_max - mean[0]) / std[0] + (out.mse - mean[1]) / std[1])
    m_max = SSM(image_score="max", **TINY)
    m_max._load_state(fitted.state_dict())
    assert torch.allclose(m_max.predict(x).scores, out.score_max)


def test_holdout_split():
    m = SSM(val_fraction=0.25, **TINY)
    tr, val = m.holdout(_train(8), torch.Generator().manual_seed(0))
    assert tr.shape[0] == 6 and val.shape[0] == 2
    assert SSM(val_fraction=0.0, **TINY).holdout(_train(8), torch.Generator())[1] is None
    m = SSM(val_fraction=0.0, **TINY).fit(_train(), progress=False)  # calibrates on training images
    assert m.calibration.shape == (2, 2) and (m.calibration[1] > 0).all()


def test_official_image_scores_by_hand():
    maps = torch.zeros(3, 2, 2)
    maps[0, 0, 0], maps[1, 1, 1], maps[2, 0, 1] = 1.0, 3.0, 2.0  # global min 0, max 3
    mse = torch.tensor([0.5, 0.1, 0.3])
    # norm(max) = (1/3, 1, 2/3); norm(mse) = (1, 0, 0.5); sums 4/3, 1, 7/6 -> min-max again
    expected = torch.tensor([1.0, 0.0, (7 / 6 - 1) / (4 / 3 - 1)])
    assert torch.allclose(official_image_scores(maps, mse), expected)


def test_determinism_and_batch_independence(fitted):
    again = SSM(**TINY).fit(_train(), progress=False)
    x = _train(3, seed=9)
    assert [h["loss"] for h in fitted.history] == [h["loss"] for h in again.history]
    assert torch.equal(fitted.predict(x).maps, again.predict(x).maps)
    assert torch.allclose(fitted.predict(x[2:]).maps[0], fitted.predict(x).maps[2], atol=1e-6)


@pytest.mark.parametrize("faithful", [False, True])
def test_save_load_round_trip(tmp_path, faithful):
    m = SSM(faithful=faithful, w_mask=0.01, **TINY).fit(_train(), progress=False)
    path = m.save(tmp_path / "ssm.pt")
    again = load_method(path)
    assert type(again) is SSM and again.config() == m.config()
    assert again.faithful == faithful and again.encoder_mask == (not faithful)
    x = _train(2, seed=5)
    a, b = m.predict(x), again.predict(x)
    assert torch.allclose(a.maps, b.maps) and torch.allclose(a.scores, b.scores)
    torch.load(path, weights_only=True)


def test_faithful_preset():
    m = SSM(faithful=True, **TINY)
    assert m.smoothing == "row1d" and m.faithful_gms and not m.encoder_mask and m.k_weights == "area"
    with pytest.raises(ValueError, match="image_score"):
        SSM(image_score="mean")


def test_predicted_masks_are_returned(fitted):
    masks = grid_masks(4, 32, 3, 2, torch.Generator().manual_seed(1))
    y, pm = fitted.restore(_train(2), masks)
    assert y.shape == (3, 2, 3, 32, 32) and pm.shape == (3, 2, 1, 32, 32)
    assert torch.allclose(compose(y, masks), compose(fitted.inpaint(_train(2), masks), masks))
