"""SSIM, MS-GMS and the U-Net (anolearn.nn), against scikit-image / SciPy and hand-computed values."""
import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.metrics import structural_similarity

from anolearn.nn import (
    GMS_C,
    UNet,
    gaussian_window,
    gms_map,
    gradient_magnitude,
    median_filter3,
    msgms_loss,
    msgms_map,
    ssim,
    ssim_loss,
    ssim_map,
)


def _pair(seed=0, size=48, channels=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, channels, size, size, generator=g)
    x = torch.nn.functional.avg_pool2d(x, 3, 1, 1)  # some structure
    y = (x + 0.08 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    return x.double(), y.double()


# ----------------------------------------------------------------------------- SSIM
def test_gaussian_window():
    w = gaussian_window(11, 1.5, dtype=torch.float64)
    assert w.shape == (11, 11) and torch.isclose(w.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert w[5, 5] == w.max() and torch.allclose(w, w.T)
    with pytest.raises(ValueError, match="odd"):
        gaussian_window(10)


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_matches_skimage(channels):
    x, y = _pair(channels=channels)
    a, b = x[0].permute(1, 2, 0).numpy(), y[0].permute(1, 2, 0).numpy()
    ref, ref_map = structural_similarity(a, b, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False, data_range=1.0, full=True)
    # skimage averages the map without a border of 5 pixels: our "valid" map is exactly that interior.
    ours_valid = ssim_map(x, y, padding="valid")  # (1, C, 38, 38)
    assert ours_valid.shape[-1] == 48 - 10
    assert abs(ours_valid.mean().item() - ref) < 1e-10
    interior = torch.from_numpy(ref_map[5:-5, 5:-5]).permute(2, 0, 1)
    assert torch.allclose(ours_valid[0], interior, atol=1e-10)
    # the padded variants keep the size and agree with skimage away from the border
    for padding in ("zeros", "reflect"):
        full = ssim_map(x, y, padding=padding)
        assert full.shape == x.shape
        assert torch.allclose(full[0, :, 5:-5, 5:-5], interior, atol=1e-10)


def test_ssim_identical_and_loss_range():
    x, y = _pair()
    assert torch.isclose(ssim(x, x), torch.tensor(1.0, dtype=x.dtype))
    assert ssim_loss(x, x).abs() < 1e-12
    assert 0 < ssim_loss(x, y) < 2
    assert ssim(torch.cat([x, y]), torch.cat([x, x]), reduction="none").shape == (2,)
    with pytest.raises(ValueError, match="same shape"):
        ssim_map(x, y[..., :-1])


# ----------------------------------------------------------------------------- GMS pieces vs SciPy
@pytest.mark.parametrize("padding,mode", [("replicate", "nearest"), ("zeros", "constant")])
def test_median_filter_matches_scipy(padding, mode):
    x, _ = _pair(size=17, channels=1)
    ref = ndimage.median_filter(x[0, 0].numpy(), size=3, mode=mode, cval=0.0)
    assert np.allclose(median_filter3(x, padding)[0, 0].numpy(), ref)


def test_gradient_magnitude_matches_scipy_prewitt():
    x, _ = _pair(size=20, channels=1)
    a = x[0, 0].numpy()
    gx = ndimage.prewitt(a, axis=1, mode="nearest") / 3
    gy = ndimage.prewitt(a, axis=0, mode="nearest") / 3
    ref = np.sqrt(gx**2 + gy**2)
    assert np.allclose(gradient_magnitude(x, "replicate", eps=0)[0, 0].numpy(), ref)
    assert np.allclose(gradient_magnitude(x, "valid", eps=0)[0, 0].numpy(), ref[1:-1, 1:-1])


def test_gms_by_hand_on_a_step_edge():
    # 5 x 5, columns 0-1 black, 2-4 white, the same in every channel. The median filter keeps
    # the step; the Prewitt x-gradient is 1 at columns 1 and 2 (their 3-column windows straddle
    # the step: (-0 + 1) * 3 rows / 3) and 0 elsewhere (replicated borders), the y-gradient is 0.
    x = torch.zeros(1, 3, 5, 5, dtype=torch.float64)
    x[..., 2:] = 1.0
    g = gradient_magnitude(median_filter3(x.mean(1, keepdim=True)), eps=0)[0, 0]
    assert torch.allclose(g, torch.tensor([[0.0, 1.0, 1.0, 0.0, 0.0]] * 5, dtype=torch.float64), atol=1e-12)
    c = GMS_C
    # against a flat image (no edges): GMS = c / (1 + c) on the edge, 1 where both are flat
    flat = torch.full_like(x, 0.5)
    row = gms_map(x, flat)[0, 0, 2]
    assert torch.allclose(row, torch.tensor([1.0, c / (1 + c), c / (1 + c), 1.0, 1.0], dtype=torch.float64))
    # against a copy at half contrast: g_r = g / 2, GMS = (2 * 1 * 0.5 + c) / (1 + 0.25 + c)
    row = gms_map(x, 0.5 * x)[0, 0, 2]
    assert torch.allclose(row[1:3], torch.full((2,), (1 + c) / (1.25 + c), dtype=torch.float64))
    # the single-scale map is 1 - GMS
    assert torch.allclose(msgms_map(x, flat, scales=1)[0, 2], 1 - gms_map(x, flat)[0, 0, 2])


def _numpy_msgms(x: np.ndarray, y: np.ndarray, scales: int, faithful: bool):
    """Independent MS-GMS for one image (C, H, W) with SciPy filters: returns (loss, map)."""
    size = x.shape[-2:]
    loss, total = 0.0, np.zeros(size)
    for s in range(scales):
        if s:
            h, w = x.shape[-2] // 2, x.shape[-1] // 2
            x = x[:, :2 * h, :2 * w].reshape(x.shape[0], h, 2, w, 2).mean((2, 4))
            y = y[:, :2 * h, :2 * w].reshape(y.shape[0], h, 2, w, 2).mean((2, 4))

        def grad(img):
            m = ndimage.median_filter(img.mean(0), 3, mode="constant" if faithful else "nearest")
            gx = ndimage.prewitt(m, axis=1, mode="nearest") / 3
            gy = ndimage.prewitt(m, axis=0, mode="nearest") / 3
            g = np.sqrt(gx**2 + gy**2 + np.finfo(float).eps)
            return g[1:-1, 1:-1] if faithful else g

        gi, gr = grad(x), grad(y)
        gms = (2 * gi * gr + GMS_C) / (gi**2 + gr**2 + GMS_C)
        loss += (1 - gms).mean() / scales
        up = torch.nn.functional.interpolate(torch.from_numpy(gms)[None, None], size=size, mode="bilinear",
                                             align_corners=False)[0, 0].numpy() if gms.shape != size else gms
        total += (1 - up) / scales
    return loss, total


@pytest.mark.parametrize("faithful", [False, True])
def test_msgms_matches_independent_reference(faithful):
    x, y = _pair(size=32)
    ref_loss, ref_map = _numpy_msgms(x[0].numpy(), y[0].numpy(), 4, faithful)
    assert abs(msgms_loss(x, y, faithful=faithful).item() - ref_loss) < 1e-10
    assert np.allclose(msgms_map(x, y, faithful=faithful)[0].numpy(), ref_map, atol=1e-10)


def test_msgms_identical_images_give_zero():
    x, y = _pair(size=32)
    for faithful in (False, True):
        assert msgms_loss(x, x, faithful=faithful).abs() < 1e-12
        assert msgms_map(x, x, faithful=faithful).abs().max() < 1e-12
        assert msgms_loss(x, y, faithful=faithful) > 0.01
    assert gms_map(x, y, faithful=True).shape == (1, 1, 30, 30)  # the code's unpadded Prewitt
    assert msgms_map(x, y).shape == (1, 32, 32)


def test_msgms_gradient_is_finite_on_flat_images():
    x = torch.full((1, 3, 16, 16), 0.5, requires_grad=True)
    msgms_loss(x, torch.full((1, 3, 16, 16), 0.3)).backward()
    assert torch.isfinite(x.grad).all()


# ----------------------------------------------------------------------------- U-Net
def test_unet_shapes_and_widths():
    net = UNet(4, 2, base_width=4, depth=3, max_width=12)
    assert net.widths == [4, 8, 12, 12]
    assert net(torch.rand(2, 4, 24, 16)).shape == (2, 2, 24, 16)
    tnet = UNet(3, 3, base_width=4, depth=2, up_mode="transpose", out_activation="sigmoid")
    out = tnet(torch.rand(1, 3, 16, 16))
    assert out.shape == (1, 3, 16, 16) and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match="divisible by 8"):
        net(torch.rand(1, 4, 20, 16))
    with pytest.raises(ValueError, match="up_mode"):
        UNet(up_mode="bilinear")


def test_unet_scale_block_hook_sees_every_decoder_scale():
    seen = []

    class Record(torch.nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.channels = channels

        def forward(self, x, cond):
            seen.append((self.channels, tuple(x.shape[-2:]), cond))
            return x

    net = UNet(3, 3, base_width=4, depth=3, scale_block=Record)
    net(torch.rand(1, 3, 32, 32), cond="mask")
    assert [(c, hw) for c, hw, _ in seen] == [(32, (4, 4)), (16, (8, 8)), (8, (16, 16)), (4, (32, 32))]
    assert all(cond == "mask" for *_, cond in seen)
