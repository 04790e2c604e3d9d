"""The DRAEM forger's two engines give the same forgeries from the same generator.

``engine="plain"`` (anolearn.forge.draem, anolearn.forge.augment) works on dense tensors;
``engine="fast"`` (anolearn.forge.fast) computes only the pixels inside the masks, with the
built-in textures kept as palettes and level tables. Both draw the same random numbers in the
same order and do the same float operations, so their outputs are equal: masks and clean
images exactly, forged pixels up to the last bit of a float (torch's vectorised and scalar
``pow`` of the gamma augmentation can round one ulp apart, depending on where a value falls in
the loop).
"""
from __future__ import annotations

import pytest
import torch

from anolearn.forge import TensorSource, TextureSource, draem_augment, draem_forge
from anolearn.forge import augment as A
from anolearn.forge.fast import augment_pixels, indexed_textures
from anolearn.forge.fast.chains import dense_steps, kind_of, nonzero, per_channel
from anolearn.forge.fast.palette import chain_state
from anolearn.forge.perlin import perlin_mask

ULP = 1e-6  # a few ulps of values in [0, 1]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def small_source() -> TextureSource:
    return TextureSource(per_family=3, crops_per_photo=1)


def masks(b: int, h: int, w: int, seed: int) -> torch.Tensor:
    m = perlin_mask((b, h, w), generator=gen(seed), rotation=(-90, 90), dtype=torch.bool)
    m[0] = True  # a full mask
    m[1] = False  # an empty one
    return m


def at_pixels(dense: torch.Tensor, rows, pos) -> torch.Tensor:
    return dense.reshape(dense.shape[0], 3, -1)[rows, :, pos]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_augmentation_at_the_masked_pixels_is_draem_augment(seed):
    # dense images: the same choices, the same parameters, the same values at every wanted pixel
    x = torch.rand(40, 3, 30, 38, generator=gen(seed))
    m = masks(40, 30, 38, 100 + seed)
    plain, choices = draem_augment(x, gen(200 + seed), return_choices=True)
    packed, rows, pos, slot, fast_choices = augment_pixels(x.clone(), m, gen(200 + seed), return_choices=True)
    assert torch.equal(fast_choices, choices)
    assert rows.numel() == int(m.sum())
    assert torch.allclose(packed[rows, :, 0, slot], at_pixels(plain, rows, pos), rtol=0, atol=ULP)
    assert torch.equal(x, torch.rand(40, 3, 30, 38, generator=gen(seed)))  # the input is left alone


def test_palettes_and_level_tables_give_draem_augment():
    # built-in textures as bank entries: each chain on its cheapest whole-image form
    src = small_source()
    indexed = indexed_textures(src, 80, 30, 38, gen(7))
    m = masks(80, 30, 38, 8)
    packed, rows, pos, slot, choices = augment_pixels(indexed, m, gen(9), return_choices=True)
    augs = list(A.DRAEM_AUGMENTATIONS.values())
    names = [kind_of(a)[0] for a in augs]
    forms = {chain_state(r, names, [per_channel(a) for a in augs]) for r in choices.tolist()}
    assert forms == {"dense", "palette", "levels"}  # every whole-image form is exercised
    plain, plain_choices = draem_augment(indexed.dense(), gen(9), return_choices=True)
    assert torch.equal(choices, plain_choices)
    assert torch.allclose(packed[rows, :, 0, slot], at_pixels(plain, rows, pos), rtol=0, atol=ULP)


def test_an_operation_the_engine_does_not_know_runs_on_whole_images():
    ops = dict(A.DRAEM_AUGMENTATIONS)
    ops["mirror"] = A.Augmentation(lambda x: x.flip(-1))  # neither pointwise nor a known stencil
    x = torch.rand(30, 3, 20, 24, generator=gen(10))
    m = masks(30, 20, 24, 11)
    plain = draem_augment(x, gen(12), n_ops=4, ops=ops)
    packed, rows, pos, slot = augment_pixels(x, m, gen(12), n_ops=4, ops=ops)
    assert torch.allclose(packed[rows, :, 0, slot], at_pixels(plain, rows, pos), rtol=0, atol=ULP)
    assert dense_steps([10, 0, 1], [kind_of(a)[0] for a in ops.values()]) == 1  # whole images up to it


@pytest.mark.parametrize("settings", [
    dict(),
    dict(p_normal=0.0, n_augment=1, beta=(0.5, 0.5)),
    dict(p_rotate=0.5, noise_rotation=None, exponents=(2, 4)),
    dict(n_augment=0, threshold=0.2),
])
@pytest.mark.parametrize("size", [(48, 48), (40, 56)])
def test_the_engines_forge_the_same_images(settings, size):
    x = torch.rand(16, 3, *size, generator=gen(13))
    for source in (small_source(), TensorSource(torch.rand(5, 3, 20, 20, generator=gen(14)))):
        for seed in (15, 16):
            plain = draem_forge(x, gen(seed), source=source, engine="plain", **settings)
            fast = draem_forge(x, gen(seed), source=source, engine="fast", **settings)
            assert torch.equal(fast.masks, plain.masks) and torch.equal(fast.originals, plain.originals)
            assert torch.allclose(fast.images, plain.images, rtol=0, atol=ULP)
            assert plain.masks.sum() > 0 or settings.get("p_normal", 0.5) > 0


def test_auto_is_fast_on_the_cpu():
    x = torch.rand(8, 3, 32, 32, generator=gen(17))
    auto = draem_forge(x, gen(18), source=small_source())
    fast = draem_forge(x, gen(18), source=small_source(), engine="fast")
    assert torch.equal(auto.images, fast.images)


@pytest.mark.parametrize("p", [0.0, 0.003, 0.05, 0.5, 1.0])
def test_word_wise_nonzero_equals_nonzero(p):
    # the mask's pixel list is found eight flags at a time; any length, offset or density
    flags = torch.rand(4096 + 13, generator=gen(36)) < p
    for part in (flags, flags[:4096], flags[8:4096 + 8], flags[3:3 + 4000], flags[:40], flags[:4096:2]):
        assert torch.equal(nonzero(part), part.nonzero().squeeze(1))
