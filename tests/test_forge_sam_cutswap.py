"""SAM (SGSF) and CutSwap forgers: mask contract, saliency restriction, fallbacks, determinism."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from anolearn.data.synthetic import render_normal
from anolearn.forge.cutswap import CutSwap, cutswap, swap_patches
from anolearn.forge.sam import SaliencyAugment, sam_forge, saliency_perlin_masks


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def square_saliency(b=6, size=48, top=12, side=24):
    s = torch.zeros(b, 1, size, size)
    s[:, :, top:top + side, top:top + side] = 1.0
    return s


def scenes(categories, size=64, per=2):
    data = [render_normal(c, size, np.random.default_rng(i)) for c in categories for i in range(per)]
    images = torch.stack([torch.from_numpy(d[0]).permute(2, 0, 1).float() / 255 for d in data])
    parts = torch.stack([torch.from_numpy(d[1]) for d in data])[:, None]
    return images, parts


def assert_mask_contract(images, out):
    m = out.masks
    assert m.shape == (images.shape[0], 1, *images.shape[-2:])
    assert bool(((m == 0) | (m == 1)).all()), "masks must be binary"
    outside = (m == 0).expand_as(images)
    assert torch.equal(out.images[outside], images[outside]), "pixels outside the mask must be untouched"
    assert float(out.images.min()) >= 0 and float(out.images.max()) <= 1


# ----------------------------------------------------------------------------- SAM
@pytest.mark.parametrize("rule", ["quantile", "relative", "fixed"])
def test_sam_masks_lie_in_the_salient_region(rule):
    x = torch.rand(6, 3, 48, 48, generator=gen(1))
    sal = square_saliency()
    out, info = sam_forge(x, gen(2), saliency=sal, source="textures", p_normal=0.0, rule=rule, return_info=True)
    assert_mask_contract(x, out)
    assert float((out.masks * (1 - sal)).max()) == 0.0
    assert not bool(info["flat"].any())
    if rule == "quantile":  # never empty; covers a drawn fraction of the region
        frac = out.masks.flatten(1).sum(1) / sal.flatten(1).sum(1)
        assert bool((frac >= 0.1).all() and (frac <= 0.5 + 1 / 576).all())


def test_sam_on_objects_with_the_foreground_stand_in():
    x, parts = scenes(("washer", "capsule", "hexnut"))
    out, info = sam_forge(x, gen(0), source="textures", p_normal=0.0, return_info=True)
    assert_mask_contract(x, out)
    assert not bool(info["flat"].any())
    m = out.masks > 0
    assert bool((m & ~info["region"]).sum() == 0)  # inside the region S >= 0.5
    on_object = (m & parts).sum() / m.sum()
    assert float(on_object) > 0.9


def test_sam_flat_saliency_falls_back_to_draem():
    x, _ = scenes(("brick", "wood"), size=48)
    out, info = sam_forge(x, gen(3), source="textures", p_normal=0.0, return_info=True)  # textures: flat
    assert bool(info["flat"].all())
    assert torch.equal(out.masks > 0, info["noise"] > 0.5)  # DRAEM's rule on the same noise
    assert_mask_contract(x, out)
    flat = torch.zeros(4, 1, 48, 48)
    noise = torch.rand(4, 48, 48, generator=gen(4)) * 2 - 1
    m, parts = saliency_perlin_masks(noise, flat, gen(5), fallback="quantile", coverage=(0.2, 0.2))
    assert bool(parts["flat"].all())
    frac = m.flatten(1).mean(1)
    assert torch.allclose(frac, torch.full_like(frac, 0.2), atol=1 / 2304)


def test_sam_determinism_normal_samples_and_plugged_source():
    x = torch.rand(5, 3, 40, 40, generator=gen(0))
    sal = square_saliency(5, 40, 8, 20)
    a = sam_forge(x, gen(7), saliency=sal, source="textures")
    b = sam_forge(x, gen(7), saliency=sal, source="textures")
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    c = sam_forge(x, gen(8), saliency=sal, source="textures", p_normal=0.0)
    assert not torch.equal(a.masks, c.masks)
    none = sam_forge(x, gen(7), saliency=sal, source="textures", p_normal=1.0)
    assert torch.equal(none.images, x) and float(none.masks.max()) == 0.0
    forger = SaliencyAugment(saliency=lambda im: square_saliency(im.shape[0], 40, 8, 20), source="textures",
                             p_normal=0.0)
    out = forger(x, gen(9))
    assert float((out.masks * (1 - sal)).max()) == 0.0 and bool((out.labels == 1).all())
    with pytest.raises(ValueError, match="precomputed saliency"):
        sam_forge(x, gen(0), saliency=sal[:3], source="textures", p_normal=0.0)


# ----------------------------------------------------------------------------- CutSwap
def test_swap_patches_exchanges_contents():
    x = torch.rand(2, 3, 20, 20, generator=gen(0))
    p1 = torch.tensor([[4, 5], [10, 3]])
    p2 = torch.tensor([[14, 12], [3, 15]])
    s = torch.tensor([5, 4])
    out, m = swap_patches(x, p1, p2, s)
    for i in range(2):
        a, z, si = p1[i] - s[i] // 2, p2[i] - s[i] // 2, int(s[i])
        A = (slice(None), slice(int(a[0]), int(a[0]) + si), slice(int(a[1]), int(a[1]) + si))
        Z = (slice(None), slice(int(z[0]), int(z[0]) + si), slice(int(z[1]), int(z[1]) + si))
        assert torch.equal(out[i][A], x[i][Z]) and torch.equal(out[i][Z], x[i][A])
        assert int(m[i].sum()) == 2 * si * si


@pytest.mark.parametrize("min_distance", [1.0, 2.0])
def test_cutswap_contract_swap_and_distance(min_distance):
    x = torch.rand(6, 3, 64, 64, generator=gen(1))
    sal = square_saliency(6, 64, 8, 48)
    out, info = cutswap(x, gen(2), saliency=sal, min_distance=min_distance, return_info=True)
    assert_mask_contract(x, out)
    p1, p2, s = info["p1"][0], info["p2"][0], info["sides"][0]
    assert bool((info["steps"][0] == 0).all())  # from the top cluster
    dist = (p1 - p2).abs().amax(1)
    assert bool((dist >= min_distance * s).all())
    for i in range(6):
        si = int(s[i])
        a, z = p1[i] - si // 2, p2[i] - si // 2
        A = (slice(None), slice(int(a[0]), int(a[0]) + si), slice(int(a[1]), int(a[1]) + si))
        Z = (slice(None), slice(int(z[0]), int(z[0]) + si), slice(int(z[1]), int(z[1]) + si))
        assert torch.equal(out.images[i][A], x[i][Z]) and torch.equal(out.images[i][Z], x[i][A])
        assert int(out.masks[i].sum()) == 2 * si * si
        assert float(sal[i, 0, int(p1[i, 0]), int(p1[i, 1])]) == 1.0  # centres in the salient cluster
        assert float(sal[i, 0, int(p2[i, 0]), int(p2[i, 1])]) == 1.0


def test_cutswap_fallbacks_levels_and_determinism():
    x = torch.rand(4, 3, 48, 48, generator=gen(0))
    tiny = torch.zeros(4, 1, 48, 48)
    tiny[:, :, 20:22, 20:22] = 1.0  # the top cluster cannot hold two separated patches
    out, info = cutswap(x, gen(1), saliency=tiny, return_info=True)
    assert bool((info["steps"] > 0).all()) and bool((out.labels == 1).all())
    assert_mask_contract(x, out)
    flat, flat_info = cutswap(x, gen(1), saliency=torch.zeros(4, 1, 48, 48), k=3, return_info=True)
    assert bool((flat_info["steps"] == 0).all()) and bool((flat.labels == 1).all())  # flat: top cluster = all
    levels = [torch.zeros(4, 1, 48, 48), square_saliency(4, 48, 0, 30)]
    _, lv = cutswap(x, gen(2), saliency=levels, levels=[1], return_info=True)
    assert bool((lv["levels"] == 1).all()) and bool((lv["p1"][0] < 30).all() and (lv["p2"][0] < 30).all())
    both, all_info = cutswap(x, gen(2), saliency=levels, mode="all", return_info=True)
    assert all_info["p1"].shape == (2, 4, 2)
    assert_mask_contract(x, both)
    a = cutswap(x, gen(5), saliency=levels)
    b = cutswap(x, gen(5), saliency=levels)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    none = cutswap(x, gen(5), saliency=levels, p_normal=1.0)
    assert torch.equal(none.images, x) and float(none.masks.max()) == 0.0
    with pytest.raises(ValueError, match="do not fit"):
        cutswap(x, gen(0), saliency=levels, side=(0.5, 0.9))


def test_cutswap_with_default_layercam_source():
    x, _ = scenes(("capsule", "wood"), size=64, per=1)
    forger = CutSwap(k=3)
    out = forger(x, gen(0))
    assert_mask_contract(x, out)
    assert bool((out.labels == 1).all())
    again = CutSwap(k=3)(x, gen(0))
    assert torch.equal(out.images, again.images)
