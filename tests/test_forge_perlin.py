"""Batched Perlin noise against a per-pixel reference and the properties of gradient noise."""
from __future__ import annotations

import math

import pytest
import torch

from anolearn.forge.perlin import (
    fade,
    lattice_gradients,
    lattice_noise,
    perlin_mask,
    perlin_noise,
    sample_scales,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def reference_noise(grads: torch.Tensor, ry: float, rx: float, h: int, w: int) -> torch.Tensor:
    """Textbook Perlin noise, one pixel at a time (the oracle): pixel (y, x) at lattice point
    (y ry / h, x rx / w); the four corner dot products blended with the quintic fade."""
    out = torch.zeros(h, w, dtype=torch.float64)
    g = grads.double()
    s = lambda t: 6 * t**5 - 15 * t**4 + 10 * t**3
    for y in range(h):
        for x in range(w):
            u, v = y * ry / h, x * rx / w
            i, j = math.floor(u), math.floor(v)
            fy, fx = u - i, v - j
            dots = {}
            for di in (0, 1):
                for dj in (0, 1):
                    gy, gx = g[i + di, j + dj]
                    dots[di, dj] = gy * (fy - di) + gx * (fx - dj)
            top = dots[0, 0] + s(fy) * (dots[1, 0] - dots[0, 0])
            bottom = dots[0, 1] + s(fy) * (dots[1, 1] - dots[0, 1])
            out[y, x] = math.sqrt(2) * (top + s(fx) * (bottom - top))
    return out


@pytest.mark.parametrize("h, w, scales", [(16, 16, (2, 4)), (13, 21, (3, 5)), (20, 12, (1, 8)), (9, 9, (2.5, 1.5))])
def test_matches_the_per_pixel_reference(h, w, scales):
    grads = lattice_gradients(1, 12, 12, gen(1))
    sc = torch.tensor([scales], dtype=torch.float32)
    fast = lattice_noise(grads, sc, (h, w))[0].double()
    assert torch.allclose(fast, reference_noise(grads[0], *scales, h, w), atol=1e-5)


def test_zero_on_lattice_points_and_bounded():
    scales = torch.tensor([[4.0, 8.0], [1.0, 32.0], [16.0, 2.0]])
    noise = perlin_noise((3, 64, 64), scales=scales, generator=gen(2))
    for b, (ry, rx) in enumerate(scales.tolist()):
        rows, cols = torch.arange(0, 64, int(64 / ry)), torch.arange(0, 64, int(64 / rx))
        assert noise[b][rows][:, cols].abs().max() < 1e-6
    big = perlin_noise((200, 64, 64), generator=gen(3), rotation=(-90, 90))
    assert big.abs().max() <= 1.0
    assert big.abs().max() > 0.8  # and it uses most of that range


def test_fade_is_flat_at_the_ends():
    t = torch.tensor([0.0, 0.5, 1.0], requires_grad=True)
    y = fade(t)
    (d1,) = torch.autograd.grad(y.sum(), t, create_graph=True)
    assert y.tolist() == [0.0, 0.5, 1.0] and d1[0] == 0 and d1[2] == 0


def test_scales_follow_draem():
    s = sample_scales(6000, gen(4))
    exponents = torch.log2(s).round().long()
    counts = torch.bincount(exponents.flatten(), minlength=7)
    assert counts[6] == 0 and counts[:6].min() > 0  # 2**0 .. 2**5, never 2**6 (randint's upper bound is exclusive)
    assert (counts[:6].float() / 12000 - 1 / 6).abs().max() < 0.02
    assert (exponents[:, 0] != exponents[:, 1]).float().mean() > 0.7  # drawn independently per axis


def sign_changes(maps: torch.Tensor, dim: int) -> torch.Tensor:
    s = torch.sign(maps)
    return (s.diff(dim=dim) != 0).float().flatten(1).mean(1)


def test_each_sample_has_its_own_scale():
    scales = sample_scales(64, gen(5))  # perlin_noise draws its scales first: same generator, same scales
    noise = perlin_noise((64, 96, 96), generator=gen(5))
    along_x = sign_changes(noise, 2)  # crossings per pixel along a row grow with the column count
    along_y = sign_changes(noise, 1)
    corr = lambda a, b: torch.corrcoef(torch.stack([a, b]))[0, 1]
    assert corr(along_x, scales[:, 1]) > 0.8 and corr(along_y, scales[:, 0]) > 0.8
    explicit = perlin_noise((2, 64, 64), scales=torch.tensor([[1.0, 32.0], [32.0, 1.0]]), generator=gen(6))
    assert sign_changes(explicit[:1], 2) > 5 * sign_changes(explicit[1:], 2)


def test_any_size_works():
    for h, w in [(37, 53), (100, 7), (5, 200)]:
        noise = perlin_noise((3, h, w), generator=gen(7), rotation=(-90, 90))
        assert noise.shape == (3, h, w) and torch.isfinite(noise).all() and noise.abs().max() <= 1


def test_rotation_turns_the_pattern_about_the_centre():
    h = 48
    zero = perlin_noise((2, h, h), generator=gen(8), rotation=torch.zeros(2))
    quarter = perlin_noise((2, h, h), generator=gen(8), rotation=torch.full((2,), 90.0))
    plain = perlin_noise((2, h, h), generator=gen(8))
    # counter-clockwise quarter turn = torch.rot90 with k = 1 on (H, W)
    assert torch.allclose(quarter, torch.rot90(zero, 1, dims=(1, 2)), atol=1e-4)
    # the turned canvas reaches beyond the image: same statistics, different lattice window
    assert zero.shape == plain.shape and not torch.allclose(zero, plain)
    assert zero.std() > 0.1


def test_octaves_add_finer_detail():
    one = perlin_noise((16, 64, 64), generator=gen(9), octaves=1, exponents=(1, 2))
    three = perlin_noise((16, 64, 64), generator=gen(9), octaves=3, exponents=(1, 2))
    # the first octave is the same draw; what the others add crosses zero far more often
    detail = three - one
    assert sign_changes(detail, 2).mean() > 2 * sign_changes(one, 2).mean()
    assert three.abs().max() <= 1 + 0.5 + 0.25
    tv = lambda n: n.diff(dim=2).abs().mean()
    assert tv(three) > 1.3 * tv(one)


def monte_carlo_coverage(threshold: float, n: int = 400_000) -> float:
    """P(noise > threshold) at a uniformly random point of a cell with random unit gradients --
    the expected mask coverage whatever the lattice scale (closed-form formula, not the library)."""
    g = gen(123)
    fy, fx = torch.rand(n, generator=g).double(), torch.rand(n, generator=g).double()
    a = torch.rand(n, 4, generator=g).double() * 2 * math.pi
    gy, gx = torch.sin(a), torch.cos(a)
    n00, n10 = gy[:, 0] * fy + gx[:, 0] * fx, gy[:, 1] * (fy - 1) + gx[:, 1] * fx
    n01, n11 = gy[:, 2] * fy + gx[:, 2] * (fx - 1), gy[:, 3] * (fy - 1) + gx[:, 3] * (fx - 1)
    sy, sx = 6 * fy**5 - 15 * fy**4 + 10 * fy**3, 6 * fx**5 - 15 * fx**4 + 10 * fx**3
    noise = math.sqrt(2) * torch.lerp(torch.lerp(n00, n10, sy), torch.lerp(n01, n11, sy), sx)
    return (noise > threshold).double().mean().item()


def test_mask_coverage_matches_theory():
    theory = monte_carlo_coverage(0.5)  # about 0.054
    assert 0.04 < theory < 0.07
    masks = perlin_mask((1200, 64, 64), generator=gen(10))
    assert masks.shape == (1200, 1, 64, 64) and set(masks.unique().tolist()) <= {0.0, 1.0}
    assert abs(masks.mean().item() - theory) < 0.01
    # turned noise is read bilinearly (as DRAEM turns its map), which shaves the finest peaks a little
    turned = perlin_mask((600, 128, 128), generator=gen(11), rotation=(-90, 90))
    assert abs(turned.mean().item() - theory) < 0.015
    # a higher threshold gives smaller blobs, in line with the theory too
    assert abs(perlin_mask((1200, 64, 64), threshold=0.3, generator=gen(12)).mean().item()
               - monte_carlo_coverage(0.3)) < 0.015


def test_mask_is_thresholded_noise():
    noise = perlin_noise((4, 40, 40), generator=gen(13), rotation=(-90, 90))
    masks = perlin_mask((4, 40, 40), generator=gen(13), rotation=(-90, 90), threshold=0.2)
    assert torch.equal(masks[:, 0], (noise > 0.2).float())


def test_determinism_and_tensor_shapes():
    x = torch.rand(3, 3, 24, 24)
    a = perlin_noise(x, generator=gen(14), rotation=(-90, 90))
    b = perlin_noise(x, generator=gen(14), rotation=(-90, 90))
    c = perlin_noise(x, generator=gen(15), rotation=(-90, 90))
    assert a.shape == (3, 24, 24) and torch.equal(a, b) and not torch.equal(a, c)


def test_errors():
    with pytest.raises(ValueError, match="scales"):
        perlin_noise((2, 8, 8), scales=torch.ones(3, 2))
    with pytest.raises(ValueError, match="octaves"):
        perlin_noise((2, 8, 8), octaves=0)
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        perlin_noise((8, 8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_formula():
    g = torch.Generator(device="cuda").manual_seed(0)
    noise = perlin_noise((4, 64, 64), generator=g, rotation=(-90, 90))
    assert noise.is_cuda and noise.abs().max() <= 1


def test_grouped_evaluation_matches_one_product():
    # samples grouped by the lattice columns they reach give the same noise as one big product
    from anolearn.forge.perlin import _grouped_noise

    scales = torch.tensor([[1.0, 32.0], [4.0, 1.0], [32.0, 2.0], [2.0, 32.0], [8.0, 8.0]])
    grads = lattice_gradients(5, 70, 70, gen(16))
    one = lattice_noise(grads, scales, (64, 64), (90, 90))
    grouped = _grouped_noise(grads, scales, (64, 64), (90, 90))
    assert torch.allclose(grouped, one, atol=1e-5)


def test_broadcast_affine_grid_matches_torch():
    from anolearn.forge.geometry import affine_grid

    theta = torch.randn(4, 2, 3, generator=gen(17))
    for align in (True, False):
        for h, w in [(7, 9), (32, 20)]:
            ref = torch.nn.functional.affine_grid(theta, [4, 1, h, w], align_corners=align)
            assert torch.allclose(affine_grid(theta, h, w, align_corners=align), ref, atol=1e-5)
