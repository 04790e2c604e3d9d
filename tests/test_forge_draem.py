"""DRAEM-style forging, its ten source augmentations and its anomaly sources."""
from __future__ import annotations

import colorsys
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps

from anolearn.forge import (
    DraemForger,
    DTDSource,
    TensorSource,
    TextureSource,
    color_jitter,
    draem_augment,
    draem_forge,
)
from anolearn.forge import augment as A
from anolearn.forge.color import hsv_to_rgb, rgb_to_hsv
from anolearn.forge.geometry import rotate
from anolearn.forge.sources import PHOTOS, dtd_available, resolve_source
from anolearn.imageops import luma

ENGINES = ["plain", "fast"]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(b: int = 8, h: int = 48, w: int = 48, seed: int = 1) -> torch.Tensor:
    return torch.rand(b, 3, h, w, generator=gen(seed))


def constant_source(value: float) -> TensorSource:
    return TensorSource(torch.full((1, 3, 8, 8), value))


def per_sample(value: float, b: int, channels: int = 1) -> torch.Tensor:
    """A parameter pinned to ``value`` for ``b`` samples, shaped as the augmentations take it."""
    return torch.full((b, channels, 1, 1), value)


# ----------------------------------------------------------------------------- the forger
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("size", [(48, 48), (40, 56)])
def test_contract(size, engine):
    x = images(8, *size)
    out = draem_forge(x, gen(0), source="textures", p_normal=0.0, engine=engine)
    assert out.images.shape == x.shape and out.masks.shape == (8, 1, *size)
    assert out.images.dtype == x.dtype and out.images.device == x.device
    assert set(out.masks.unique().tolist()) <= {0.0, 1.0}
    assert out.images.min() >= 0 and out.images.max() <= 1
    outside = (out.masks == 0).expand_as(x)
    assert torch.equal(out.images[outside], x[outside])  # exactly untouched
    assert out.originals is x
    inside = ~outside
    assert not torch.equal(out.images[inside], x[inside])


@pytest.mark.parametrize("engine", ENGINES)
def test_determinism(engine):
    x = images()
    forger = DraemForger(source="textures", engine=engine)
    a, b, c = forger(x, gen(3)), forger(x, gen(3)), forger(x, gen(4))
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert not torch.equal(a.images, c.images)


@pytest.mark.parametrize("engine", ENGINES)
def test_blend_is_the_papers_formula(engine):
    x = images(6)
    for beta in (0.3, 1.0):
        out = draem_forge(x, gen(5), source=constant_source(0.25), n_augment=0, beta=(beta, beta), p_normal=0.0,
                          engine=engine)
        m = out.masks.expand_as(x)
        expected = (1 - m) * x + (1 - beta) * m * x + beta * m * 0.25  # I_a = M' I + (1 - b) M I + b M A
        assert torch.allclose(out.images, expected, atol=1e-6)


def test_beta_range():
    x = torch.full((300, 3, 32, 32), 0.8)
    out = draem_forge(x, gen(6), source=constant_source(0.0), n_augment=0, p_normal=0.0, threshold=-2.0)
    betas = 1 - out.images[:, 0, 0, 0] / 0.8  # I_a = (1 - b) 0.8 inside an all-covering mask
    assert betas.min() >= 0.1 - 1e-5 and betas.max() <= 1.0 + 1e-5
    assert abs(betas.mean().item() - 0.55) < 0.05  # U(0.1, 1) has mean 0.55, sd 0.26


def test_p_normal_fraction():
    n, p = 400, 0.5
    x = torch.rand(n, 3, 16, 16, generator=gen(7))
    # threshold -2: every forged sample's mask covers the whole image, so labels show the coin exactly
    out = draem_forge(x, gen(8), source=constant_source(0.5), p_normal=p, threshold=-2.0)
    normal = out.labels == 0
    assert abs(normal.float().mean().item() - p) < 4 * math.sqrt(p * (1 - p) / n)
    assert torch.equal(out.images[normal], x[normal])
    assert (out.masks[~normal] == 1).all()


def test_mask_coverage_is_draems():
    x = torch.rand(400, 3, 96, 96, generator=gen(9))
    out = draem_forge(x, gen(10), source=constant_source(0.5), p_normal=0.0, n_augment=0)
    coverage = out.masks.mean().item()
    assert 0.035 < coverage < 0.07  # Perlin > 0.5 covers about 5.4 % of an image on average
    empty = (out.labels == 0).float().mean().item()
    assert empty < 0.12  # coarse lattices sometimes stay below the threshold (DRAEM keeps those)


@pytest.mark.parametrize("engine", ENGINES)
def test_image_rotation_gives_new_originals(engine):
    x = images(6)
    out = draem_forge(x, gen(11), source="textures", p_rotate=1.0, rotation=(30.0, 60.0), engine=engine)
    assert out.originals is not x and out.originals.shape == x.shape
    assert (out.originals[:, :, 0, 0] == 0).all()  # black corners, as imgaug's default fill
    outside = (out.masks == 0).expand_as(x)
    assert torch.equal(out.images[outside], out.originals[outside])


def test_errors():
    with pytest.raises(ValueError, match="beta"):
        draem_forge(images(), gen(), source="textures", beta=(0.5, 0.2))
    with pytest.raises(ValueError, match="Unknown anomaly source"):
        draem_forge(images(), gen(), source="marble")
    with pytest.raises(TypeError, match="sample"):
        resolve_source(42)
    with pytest.raises(ValueError, match="engine"):
        DraemForger(source="textures", engine="turbo")


# ----------------------------------------------------------------------------- augmentations
def pil_image(x: torch.Tensor) -> Image.Image:
    return Image.fromarray((x * 255).round().byte().permute(1, 2, 0).numpy())


def from_pil(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255


@pytest.fixture
def levels() -> torch.Tensor:
    """A batch whose values are exact 8-bit levels, skewed so the histogram operations matter."""
    return ((torch.rand(2, 3, 30, 40, generator=gen(12)) ** 2) * 255).round() / 255


def test_histogram_operations_match_pil(levels):
    for i in range(2):
        pil = pil_image(levels[i])
        ours = A.equalize(levels[i:i + 1])[0]
        assert (ours - from_pil(ImageOps.equalize(pil))).abs().max() < 1.5 / 255
        ours = A.autocontrast(levels[i:i + 1], cutoff=per_sample(0.1, 1))[0]
        assert (ours - from_pil(ImageOps.autocontrast(pil, cutoff=10))).abs().max() < 1.5 / 255
        ours = A.posterize(levels[i:i + 1], bits=torch.full((1, 1, 1, 1), 3))[0]
        assert torch.allclose(ours, from_pil(ImageOps.posterize(pil, 3)), atol=1e-6)
        ours = A.sharpness(levels[i:i + 1], factor=per_sample(1.7, 1))[0]
        assert (ours - from_pil(ImageEnhance.Sharpness(pil).enhance(1.7))).abs().max() < 1.5 / 255


def test_hsv_matches_colorsys():
    x = torch.rand(1, 3, 4, 5, generator=gen(13))
    x[0, :, 0, 0] = 0.5  # grey
    x[0, :, 0, 1] = 0.0  # black
    hsv = rgb_to_hsv(x)
    for y in range(4):
        for c in range(5):
            ref = colorsys.rgb_to_hsv(*x[0, :, y, c].tolist())
            assert torch.allclose(hsv[0, :, y, c], torch.tensor(ref, dtype=torch.float32), atol=1e-6)
    assert torch.allclose(hsv_to_rgb(hsv), x, atol=1e-6)


def test_simple_operations():
    x = images(4)
    on, off = torch.ones(4, 1, 1, 1, dtype=torch.bool), torch.zeros(4, 1, 1, 1, dtype=torch.bool)
    assert torch.equal(A.invert(x), 1 - x)
    out = A.solarize(x, on, threshold=per_sample(0.5, 4))
    assert torch.equal(out, torch.where(x >= 0.5, 1 - x, x))
    assert torch.equal(A.solarize(x, off, threshold=per_sample(0.5, 4)), x)
    g = A.gamma_contrast(x, gamma=per_sample(2.0, 4, channels=3))
    assert torch.allclose(g, x**2)
    grey = luma(A.multiply_add_brightness(x, mul=per_sample(1.0, 4), add=per_sample(0.05, 4)))
    unclipped = (x > 0.06).all(1, keepdim=True) & (x < 0.94).all(1, keepdim=True)
    assert torch.allclose((grey - luma(x))[unclipped], torch.tensor(0.05), atol=1e-5)
    turned = rotate(x, torch.full((4,), 90.0))
    assert torch.allclose(turned, torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5)
    assert torch.allclose(A.affine_rotate(x, per_sample(90.0, 4)), turned.clamp(0, 1))


def test_parameters_are_drawn_per_sample_from_their_ranges():
    n = 2000
    for name, aug in A.DRAEM_AUGMENTATIONS.items():
        drawn = aug.draw(n, gen(40), "cpu")
        for param, dist in aug.params.items():
            v = drawn[param]
            assert v.shape[0] == n and v.shape[2:] == (1, 1), (name, param)
            if isinstance(dist, A.Uniform):
                assert v.shape[1] == dist.channels and v.min() >= dist.low and v.max() <= dist.high, (name, param)
                assert abs(v.float().mean().item() - (dist.low + dist.high) / 2) < 0.05 * (dist.high - dist.low)
            elif isinstance(dist, A.Coin):
                assert v.dtype == torch.bool and abs(v.float().mean().item() - dist.p) < 0.05
            else:
                assert set(v.unique().tolist()) == set(range(dist.low, dist.high + 1))
    # calling an augmentation is drawing its parameters, then applying them
    x = images(4)
    aug = A.DRAEM_AUGMENTATIONS["brightness"]
    assert torch.equal(aug(x, gen(41)), aug.fn(x, **aug.draw(4, gen(41), "cpu")))


def test_every_operation_keeps_the_range_and_shape():
    x = images(4, 20, 28)
    for name, fn in A.DRAEM_AUGMENTATIONS.items():
        y = fn(x, gen(17))
        assert y.shape == x.shape and y.dtype == x.dtype, name
        assert y.min() >= 0 and y.max() <= 1, name


def test_three_distinct_operations_per_sample():
    n = 600
    x = torch.rand(n, 3, 8, 8, generator=gen(18))
    out, choices = draem_augment(x, gen(19), return_choices=True)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert choices.shape == (n, 3) and all(len(set(row)) == 3 for row in choices.tolist())
    freq = torch.bincount(choices.flatten(), minlength=10).float() / n
    assert (freq - 0.3).abs().max() < 4 * math.sqrt(0.3 * 0.7 / n)  # each op in 3 of 10 draws
    # replay: the same operations, in the same order, with the same generator stream
    a, b = draem_augment(x[:8], gen(20)), draem_augment(x[:8], gen(20))
    assert torch.equal(a, b)


def test_each_sample_gets_its_listed_operations_in_order():
    fns = [lambda x: 1 - x, lambda x: x**2, lambda x: x * 0.5, lambda x: x.flip(-1), lambda x: x.sqrt()]
    det = {f"op{k}": A.Augmentation(fn) for k, fn in enumerate(fns)}
    x = torch.rand(40, 3, 6, 6, generator=gen(27))
    out, choices = draem_augment(x, gen(28), ops=det, return_choices=True)
    for i, row in enumerate(choices.tolist()):
        ref = x[i:i + 1]
        for k in row:
            ref = fns[k](ref)
        assert torch.allclose(out[i], ref[0], atol=1e-6)


def test_color_jitter():
    x = images(6)
    assert torch.equal(color_jitter(x, generator=gen(21)), x)
    y = color_jitter(x, brightness=0.3, generator=gen(22))
    ratio = y / x
    ok = (y < 1) & (x > 0.05)
    per_sample = [ratio[i][ok[i]] for i in range(6)]
    assert all(r.max() - r.min() < 1e-4 and 0.7 - 1e-4 <= r.mean() <= 1.3 + 1e-4 for r in per_sample)
    z = color_jitter(x, 0.5, 1.0, 0.1, 0.5, generator=gen(23))
    assert z.min() >= 0 and z.max() <= 1 and not torch.equal(z, x)
    with pytest.raises(ValueError, match="hue"):
        color_jitter(x, hue=0.7)


# ----------------------------------------------------------------------------- sources
def test_texture_source_is_varied_and_fixed():
    src = TextureSource(per_family=4, crops_per_photo=1)
    bank = src.bank(32, 32)
    assert bank.dtype == torch.uint8 and bank.shape == (len(src), 3, 32, 32) == (4 * 4 + len(PHOTOS), 3, 32, 32)
    assert torch.equal(bank, TextureSource(per_family=4, crops_per_photo=1, seed=0).bank(32, 32))
    flat = bank.float().flatten(1)
    assert (flat.std(1) > 5).all()  # no flat texture
    assert torch.cdist(flat, flat).add(torch.eye(len(src)) * 1e9).min() > 100  # no two alike
    assert "brick" not in PHOTOS and "gravel" not in PHOTOS  # the synthetic dataset's own textures
    a = src.sample(5, 32, 32, gen(24))
    assert a.shape == (5, 3, 32, 32) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, src.sample(5, 32, 32, gen(24)))


def write_fake_dtd(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for cat in ("banded", "woven"):
        folder = root / "dtd" / "images" / cat
        folder.mkdir(parents=True)
        for i in range(3):
            img = rng.integers(0, 256, (40 + 10 * i, 50, 3), dtype=np.uint8)
            assert cv2.imwrite(str(folder / f"{cat}_{i:04d}.jpg"), img)
    return root


def test_dtd_source(tmp_path, monkeypatch):
    root = write_fake_dtd(tmp_path / "dtd_root")
    assert dtd_available(root) and not dtd_available(tmp_path / "nothing")
    src = DTDSource(root)
    assert len(src) == 6
    out = src.sample(4, 24, 32, gen(25))
    assert out.shape == (4, 3, 24, 32) and out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, src.sample(4, 24, 32, gen(25)))  # from the cache, identical
    with pytest.raises(FileNotFoundError, match="fetch_dtd"):
        DTDSource(tmp_path / "nothing")
    # "auto" picks DTD when it is in the data folder, the built-in textures otherwise
    monkeypatch.setenv("ANOLEARN_DATA", str(tmp_path / "data"))
    assert isinstance(resolve_source("auto"), TextureSource)
    write_fake_dtd(tmp_path / "data" / "dtd")
    assert isinstance(resolve_source("auto"), DTDSource)
    out = draem_forge(images(4, 24, 32), gen(26), source="auto")
    assert out.images.shape == (4, 3, 24, 32)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    x = images().cuda()
    out = draem_forge(x, torch.Generator(device="cuda").manual_seed(0), source="textures", p_normal=0.0)
    outside = (out.masks == 0).expand_as(x)
    assert out.images.is_cuda and torch.equal(out.images[outside], x[outside])
