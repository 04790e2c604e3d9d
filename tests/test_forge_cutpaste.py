"""CutPaste, CutPaste-Scar and their union: the properties the paper states, checked on tiny images."""
from __future__ import annotations

import math

import pytest
import torch

from anolearn.forge import (
    CutPaste,
    CutPasteScar,
    CutPasteUnion,
    Forged,
    cutpaste,
    cutpaste_3way,
    cutpaste_scar,
    cutpaste_union,
)
from anolearn.forge.cutpaste import paste_patches


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(b: int = 8, h: int = 48, w: int = 48, seed: int = 1) -> torch.Tensor:
    return torch.rand(b, 3, h, w, generator=gen(seed))


def check_contract(x: torch.Tensor, out: Forged) -> None:
    assert out.images.shape == x.shape and out.masks.shape == (x.shape[0], 1, *x.shape[-2:])
    assert out.images.dtype == x.dtype and out.masks.dtype == x.dtype
    assert out.images.device == x.device and out.masks.device == x.device
    assert set(out.masks.unique().tolist()) <= {0.0, 1.0}
    assert out.images.min() >= 0 and out.images.max() <= 1
    outside = (out.masks == 0).expand_as(x)
    assert torch.equal(out.images[outside], x[outside])  # exactly untouched
    assert out.originals is x


def bbox(mask: torch.Tensor) -> tuple[int, int, int, int]:
    rows = mask.any(1).nonzero().squeeze(1)
    cols = mask.any(0).nonzero().squeeze(1)
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


@pytest.mark.parametrize("forger", [cutpaste, cutpaste_scar, cutpaste_union])
@pytest.mark.parametrize("size", [(48, 48), (37, 53)])
def test_contract(forger, size):
    x = images(8, *size)
    out = forger(x, gen(0))
    check_contract(x, out)
    assert out.labels.tolist() == [1] * 8  # every sample forged, every mask non-empty
    assert torch.equal(out.normal_maps, 1 - out.masks)


@pytest.mark.parametrize("forger", [CutPaste(), CutPasteScar(), CutPasteUnion()])
def test_determinism(forger):
    x = images()
    a, b, c = forger(x, gen(3)), forger(x, gen(3)), forger(x, gen(4))
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert not torch.equal(a.masks, c.masks)


def test_rectangle_area_and_aspect_follow_the_paper():
    n, size = 600, 64
    x = torch.rand(n, 3, size, size, generator=gen(5))
    out = cutpaste(x, gen(6), jitter=0.0)
    ratios, aspects = [], []
    for m in out.masks[:, 0]:
        y0, y1, x0, x1 = bbox(m)
        h, w = y1 - y0, x1 - x0
        assert int(m.sum()) == h * w  # an axis-aligned, filled rectangle
        # rounding h and w to whole pixels moves the area by at most (h + w) / 2 + 1/4 pixels
        slack = (0.5 * (h + w) + 0.25) / size**2
        ratio = h * w / size**2
        assert 0.02 - slack <= ratio <= 0.15 + slack
        assert 0.3 * (1 - 1 / h) - 1e-9 <= w / h <= 3.3 * (1 + 1 / h) + 1 / h
        ratios.append(ratio)
        aspects.append(math.log(w / h))
    ratios_t = torch.tensor(ratios)
    # U(0.02, 0.15) has mean 0.085 and sd 0.0375: the mean of 600 draws is within 0.0015 (1 sd)
    assert abs(ratios_t.mean().item() - 0.085) < 0.006
    # log-uniform aspect: log(w/h) uniform on [log 0.3, log 3.3], mean ~0, half the patches wide
    assert abs(sum(aspects) / n - (math.log(0.3) + math.log(3.3)) / 2) < 0.1
    wide = sum(a > 0 for a in aspects) / n
    assert abs(wide - 0.5) < 4 * math.sqrt(0.25 / n) + 0.02


def test_patch_is_a_copy_of_another_place_of_the_same_image():
    x = images(6, 32, 32, seed=7)
    out = cutpaste(x, gen(8), jitter=0.0)
    for i in range(6):
        y0, y1, x0, x1 = bbox(out.masks[i, 0])
        patch = out.images[i, :, y0:y1, x0:x1]
        h, w = y1 - y0, x1 - x0
        found = [(sy, sx) for sy in range(32 - h + 1) for sx in range(32 - w + 1)
                 if torch.equal(x[i, :, sy:sy + h, sx:sx + w], patch)]
        assert found, "the pasted patch must be an exact copy of a rectangle of the input"


def test_colour_jitter_changes_only_the_patch():
    x = images(8, 32, 32, seed=9)
    plain = cutpaste(x, gen(10), jitter=0.0)
    jittered = cutpaste(x, gen(10), jitter=0.5)
    assert torch.equal(plain.masks, jittered.masks)  # the geometry is drawn before the jitter
    inside = plain.masks.bool().expand_as(x)
    assert not torch.equal(plain.images[inside], jittered.images[inside])
    assert torch.equal(plain.images[~inside], jittered.images[~inside])


def test_scar_sizes_scale_with_the_image_and_turn_within_45_degrees():
    size, n = 128, 300
    x = torch.rand(n, 3, size, size, generator=gen(11))
    s = size / 256
    # elongated scars (width 2-3, length 20-25 at 256 px) so the orientation is well defined
    out = cutpaste_scar(x, gen(12), scar_width=(2.0, 3.0), scar_length=(20.0, 25.0), jitter=0.0)
    areas = out.masks.flatten(1).sum(1)
    expected = 2.5 * 22.5 * s * s  # mean width x mean length (independent draws)
    assert abs(areas.mean().item() - expected) < 0.25 * expected
    ys, xs = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    for m in out.masks[:, 0][:50]:
        wgt = m / m.sum()
        my, mx = (wgt * ys).sum(), (wgt * xs).sum()
        cyy, cxx, cxy = (wgt * (ys - my) ** 2).sum(), (wgt * (xs - mx) ** 2).sum(), (wgt * (ys - my) * (xs - mx)).sum()
        # angle of the long axis from the vertical (the scar's length runs along y before turning)
        from_vertical = 0.5 * math.degrees(math.atan2(2 * cxy, cyy - cxx))
        assert abs(from_vertical) <= 45 + 12  # pixel rasterisation of a thin strip is coarse
    # the paper's sizes, at 256 px
    big = cutpaste_scar(torch.rand(64, 3, 256, 256, generator=gen(13)), gen(14), jitter=0.0)
    assert abs(big.masks.flatten(1).sum(1).mean().item() - 9 * 17.5) < 0.25 * 9 * 17.5


def test_union_mixes_both_kinds_at_the_asked_rate():
    n = 400
    x = torch.rand(n, 3, 48, 48, generator=gen(15))
    out, kinds = cutpaste_union(x, gen(16), p_scar=0.3, return_kinds=True)
    frac = kinds.float().mean().item()
    assert abs(frac - 0.3) < 4 * math.sqrt(0.3 * 0.7 / n)
    area = out.masks.flatten(1).sum(1) / 48**2
    assert area[kinds == 1].max() < 0.02 <= area[kinds == 0].min() + 1e-3  # scars are far smaller


def test_p_normal_leaves_that_fraction_untouched():
    n, p = 400, 0.4
    x = torch.rand(n, 3, 32, 32, generator=gen(17))
    out = CutPaste(p_normal=p)(x, gen(18))
    normal = out.labels == 0
    assert abs(normal.float().mean().item() - p) < 4 * math.sqrt(p * (1 - p) / n)
    assert torch.equal(out.images[normal], x[normal])


def test_3way_batch():
    x = images(4)
    out, classes = cutpaste_3way(x, gen(19))
    assert out.images.shape == (12, 3, 48, 48) and classes.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert torch.equal(out.images[:4], x) and out.masks[:4].sum() == 0
    assert out.labels[4:].tolist() == [1] * 8


def test_rotated_paste_turns_counter_clockwise():
    x = torch.zeros(1, 3, 64, 64)
    centre = torch.tensor([[31.5, 31.5]])
    sizes = torch.tensor([[6.0, 40.0]])  # wide: long along x before turning
    _, mask = paste_patches(x, lambda i, r0, r1, c0, c1: x[i, :, r0:r1, c0:c1], sizes, centre, centre, torch.tensor([30.0]))
    ys, xs = mask[0, 0].nonzero(as_tuple=True)
    ys, xs = ys.float() - ys.float().mean(), xs.float() - xs.float().mean()
    angle = 0.5 * math.degrees(math.atan2(2 * (xs * -ys).mean(), (xs**2).mean() - (ys**2).mean()))
    assert abs(angle - 30) < 3  # y points down on screen: counter-clockwise = towards -y
    assert abs(mask.sum().item() - 240) < 24


def test_errors_are_clear():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        cutpaste(torch.rand(3, 32, 32))
    with pytest.raises(TypeError, match="float"):
        cutpaste(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="area"):
        cutpaste(images(), gen(), area=(0.2, 0.1))
    with pytest.raises(ValueError, match="probabilit"):
        CutPasteUnion(p_scar=1.5)
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="generator"):
            cutpaste(images().cuda(), gen())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    x = images().cuda()
    out = cutpaste_union(x, torch.Generator(device="cuda").manual_seed(0))
    check_contract(x, out)
