"""Spectral residual and the foreground stand-in: stated properties, on tiny images."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from anolearn.data.synthetic import render_normal
from anolearn.saliency import (as_saliency_source, foreground_saliency, minmax_normalize, otsu_foreground,
                               otsu_threshold, spectral_residual)


def square_scene(size=64, side=6, top=20, left=36, noise=0.0, seed=0):
    x = torch.full((1, 3, size, size), 0.2)
    x[:, :, top:top + side, left:left + side] = 1.0
    if noise:
        x = (x + noise * torch.randn(1, 1, size, size, generator=torch.Generator().manual_seed(seed))).clamp(0, 1)
    return x


@pytest.mark.parametrize("side", [4, 6, 8, 12])
@pytest.mark.parametrize("noise", [0.0, 0.02])
def test_bright_square_is_salient(side, noise):
    x = square_scene(side=side, noise=noise)
    s = spectral_residual(x)[0, 0]
    near = torch.zeros(64, 64, dtype=torch.bool)
    near[18:22 + side, 34:38 + side] = True  # the square and a 2 px margin
    y, xx = divmod(int(s.argmax()), 64)
    assert near[y, xx], f"peak at {(y, xx)}"
    assert s[near].mean() > 5 * s[~near].mean()


def test_shape_range_and_working_size():
    x = torch.rand(3, 3, 48, 80)
    s = spectral_residual(x)
    assert s.shape == (3, 1, 48, 80) and s.dtype == x.dtype
    assert float(s.min()) == 0.0 and float(s.max()) == pytest.approx(1.0)
    small = spectral_residual(x, upsample=False)
    assert small.shape == (3, 1, 38, 64)  # width 64, aspect kept
    assert spectral_residual(x[:, :1]).shape == (3, 1, 48, 80)  # grey input


def test_batched_equals_per_image():
    x = torch.rand(4, 3, 40, 40)
    batched = spectral_residual(x)
    single = torch.cat([spectral_residual(x[i:i + 1]) for i in range(4)])
    torch.testing.assert_close(batched, single, atol=1e-6, rtol=0)


def test_flat_image_gives_zero_map_and_minmax():
    assert float(spectral_residual(torch.full((2, 3, 32, 32), 0.4)).abs().max()) == 0.0
    m = torch.tensor([[[[1.0, 3.0], [2.0, 5.0]]], [[[2.0, 2.0], [2.0, 2.0]]]])
    out = minmax_normalize(m)
    torch.testing.assert_close(out[0, 0], torch.tensor([[0.0, 0.5], [0.25, 1.0]]))
    assert float(out[1].abs().max()) == 0.0


def test_otsu_matches_skimage():
    from skimage.filters import threshold_otsu

    rng = np.random.default_rng(0)
    rows = [np.concatenate([rng.normal(0.2, 0.05, 700), rng.normal(0.7, 0.08, 300)]) for _ in range(3)]
    values = torch.tensor(np.stack(rows))
    thr, eta = otsu_threshold(values)
    for i, row in enumerate(rows):
        ref = threshold_otsu(row, nbins=256)
        bin_width = (row.max() - row.min()) / 255
        assert abs(float(thr[i]) - ref) <= bin_width  # same split up to one histogram bin
        assert ((row > float(thr[i])) != (row > ref)).mean() < 0.01
    assert bool((eta > 0.7).all())


def _scene(category, size=64, seed=0):
    img, part = render_normal(category, size, np.random.default_rng(seed))
    return torch.from_numpy(img).permute(2, 0, 1).float()[None] / 255, torch.from_numpy(part)


def test_foreground_finds_objects_and_rejects_textures():
    objs = [_scene(c, seed=s) for c in ("washer", "capsule", "hexnut") for s in (0, 1)]
    x = torch.cat([o[0] for o in objs])
    parts = torch.stack([o[1] for o in objs])
    masks, has_object = otsu_foreground(x)
    assert bool(has_object.all())
    fg = masks[:, 0] > 0
    iou = (fg & parts).flatten(1).sum(1) / (fg | parts).flatten(1).sum(1)
    assert float(iou.min()) > 0.6
    textures = torch.cat([_scene(c, seed=s)[0] for c in ("brick", "gravel", "weave", "wood") for s in (0, 1)])
    masks_t, has_t = otsu_foreground(textures)
    assert not bool(has_t.any()) and float(masks_t.abs().max()) == 0.0
    sal = foreground_saliency(torch.cat([x, textures]))
    assert sal.shape == (14, 1, 64, 64) and float(sal.min()) >= 0 and float(sal.max()) <= 1
    assert float(sal[6:].abs().max()) == 0.0  # textures: flat
    inside = (sal[:6, 0] >= 0.5) & parts
    assert float(inside.flatten(1).sum(1).div(parts.flatten(1).sum(1)).min()) > 0.5


def test_saliency_source_convention():
    x = torch.rand(2, 3, 32, 32)
    assert as_saliency_source("spectral_residual")(x).shape == (2, 1, 32, 32)
    assert float(as_saliency_source("none")(x).abs().max()) == 0.0
    fixed = torch.rand(2, 1, 32, 32)
    assert as_saliency_source(fixed)(x) is fixed
    with pytest.raises(ValueError, match="precomputed"):
        as_saliency_source(fixed)(torch.rand(3, 3, 32, 32))
    with pytest.raises(ValueError, match="Unknown saliency source"):
        as_saliency_source("cpd")
    assert as_saliency_source(lambda im: im[:, :1])(x).shape == (2, 1, 32, 32)
