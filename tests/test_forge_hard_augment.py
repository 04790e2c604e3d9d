"""AnoSeg's hard augmentation: each step on its own, then the whole forgery."""
from __future__ import annotations

import math

import pytest
import torch

from anolearn.forge import HardAugment, hard_augment, hard_augmentations
from anolearn.forge.hard_augment import permute_quadrants, rotate90


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(b: int = 8, h: int = 32, w: int = 32, seed: int = 1) -> torch.Tensor:
    return torch.rand(b, 3, h, w, generator=gen(seed))


def quadrants(x: torch.Tensor) -> list[torch.Tensor]:
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    return [x[..., :h, :w], x[..., :h, w:2 * w], x[..., h:2 * h, :w], x[..., h:2 * h, w:2 * w]]


@pytest.mark.parametrize("size", [(32, 32), (33, 29)])
def test_contract(size):
    x = images(8, *size)
    out = hard_augment(x, gen(0))
    assert out.images.shape == x.shape and out.masks.shape == (8, 1, *size)
    assert out.images.dtype == x.dtype and out.images.device == x.device
    assert set(out.masks.unique().tolist()) <= {0.0, 1.0}
    assert out.images.min() >= 0 and out.images.max() <= 1
    outside = (out.masks == 0).expand_as(x)
    assert torch.equal(out.images[outside], x[outside])
    assert out.labels.tolist() == [1] * 8
    # AnoSeg's reference map: 1 on normal pixels, 0 on the pasted region
    assert torch.equal(out.normal_maps, 1 - out.masks)
    assert out.originals is x


def test_determinism():
    x = images()
    forger = HardAugment()
    a, b, c = forger(x, gen(3)), forger(x, gen(3)), forger(x, gen(4))
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert not torch.equal(a.images, c.images)


def test_no_augmentation_same_place_unturned_is_the_identity():
    # x_hard = x, and the patch is copied onto the place it came from: nothing changes
    x = images()
    out = hard_augment(x, gen(5), p_rotate=0, p_permute=0, p_jitter=0, angle=(0.0, 0.0), same_place=True)
    assert torch.equal(out.images, x)
    assert out.masks.sum() > 0


@pytest.mark.parametrize("size", [(32, 32), (31, 37)])
def test_patch_is_cut_from_the_hard_augmented_copy(size):
    # hard_augment computes only the patch of x_hard; it must agree with the whole copy
    x = images(12, *size, seed=20)
    hard = hard_augmentations(x, gen(21))
    out = hard_augment(x, gen(21), angle=(0.0, 0.0), same_place=True)
    inside = out.masks.bool().expand_as(x)
    assert torch.allclose(out.images[inside], hard[inside], atol=1e-5)
    assert not torch.allclose(out.images[inside], x[inside])


def test_each_step_with_probability_one():
    x = images(6)
    turned = hard_augmentations(x, gen(6), p_rotate=1, p_permute=0, p_jitter=0)
    for i in range(6):
        matches = [k for k in (1, 2, 3) if torch.equal(turned[i], torch.rot90(x[i], k, dims=(-2, -1)))]
        assert len(matches) == 1
    permuted = hard_augmentations(x, gen(7), p_rotate=0, p_permute=1, p_jitter=0)
    for i in range(6):
        src, dst = quadrants(x[i]), quadrants(permuted[i])
        order = [next(j for j in range(4) if torch.equal(d, src[j])) for d in dst]
        assert sorted(order) == [0, 1, 2, 3] and order != [0, 1, 2, 3]  # a real re-tiling
    jittered = hard_augmentations(x, gen(8), p_rotate=0, p_permute=0, p_jitter=1)
    assert jittered.min() >= 0 and jittered.max() <= 1
    assert all(not torch.equal(jittered[i], x[i]) for i in range(6))
    assert torch.equal(hard_augmentations(x, gen(9), p_rotate=0, p_permute=0, p_jitter=0), x)


def test_each_step_happens_half_the_time():
    n = 400
    x = torch.rand(n, 3, 8, 8, generator=gen(10))
    turned = hard_augmentations(x, gen(11), p_rotate=0.5, p_permute=0, p_jitter=0)
    frac = (turned != x).flatten(1).any(1).float().mean().item()
    assert abs(frac - 0.5) < 4 * math.sqrt(0.25 / n)


def test_non_square_images_take_only_the_half_turn():
    x = images(4, 20, 30)
    turned = hard_augmentations(x, gen(12), p_rotate=1, p_permute=0, p_jitter=0)
    assert torch.equal(turned, torch.rot90(x, 2, dims=(-2, -1)))
    with pytest.raises(ValueError, match="quarter turn"):
        rotate90(x, torch.ones(4, dtype=torch.long))


def test_quadrant_permutation_inverts_and_keeps_odd_edges():
    x = images(3, 33, 35)
    orders = torch.tensor([[1, 0, 3, 2], [3, 2, 1, 0], [2, 0, 3, 1]])
    y = permute_quadrants(x, orders)
    inverse = orders.argsort(1)
    assert torch.equal(permute_quadrants(y, inverse), x)
    assert torch.equal(y[..., -1, :], x[..., -1, :]) and torch.equal(y[..., :, -1], x[..., :, -1])


def test_pasted_region_follows_cutpaste_geometry_and_turns():
    n, size = 300, 64
    x = torch.rand(n, 3, size, size, generator=gen(13))
    out = hard_augment(x, gen(14))
    ratio = out.masks.flatten(1).sum(1) / size**2
    # a rasterised turned rectangle has its nominal area up to the pixels its edge cuts
    assert ratio.min() > 0.015 and ratio.max() < 0.17
    assert abs(ratio.mean().item() - 0.085) < 0.008
    # a long patch turned by 30 degrees has its long axis at 30 degrees (counter-clockwise)
    out = hard_augment(x[:20], gen(15), area=(0.1, 0.1), aspect=(3.3, 3.3), angle=(30.0, 30.0))
    for m in out.masks[:, 0]:
        ys, xs = m.nonzero(as_tuple=True)
        ys, xs = ys.float() - ys.float().mean(), xs.float() - xs.float().mean()
        angle = 0.5 * math.degrees(math.atan2(2 * (xs * -ys).mean(), (xs**2).mean() - (ys**2).mean()))
        assert abs(angle - 30) < 3


def test_p_normal():
    n, p = 400, 0.5
    x = torch.rand(n, 3, 16, 16, generator=gen(16))
    out = HardAugment(p_normal=p)(x, gen(17))
    normal = out.labels == 0
    assert abs(normal.float().mean().item() - p) < 4 * math.sqrt(p * (1 - p) / n)
    assert torch.equal(out.images[normal], x[normal])
    assert (out.normal_maps[normal] == 1).all()


def test_errors():
    with pytest.raises(ValueError, match="probability"):
        HardAugment(p_rotate=2)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        hard_augment(torch.rand(2, 1, 16, 16))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    x = images().cuda()
    out = hard_augment(x, torch.Generator(device="cuda").manual_seed(0))
    outside = (out.masks == 0).expand_as(x)
    assert out.images.is_cuda and torch.equal(out.images[outside], x[outside])
