"""Map artefacts that made methods look broken, each with the test that would have caught it.

* a checkerboard from transposed convolutions (AnoSeg's decoders),
* a position prior from forgeries that favour the middle of the image (AnoSeg's hard augmentation),
* a frame along the border from zero padding (DRAEM/SGSF's segmentation networks),
* maps of normal images that peak at the border or in the corners (RIAD/SSM, too little context).

The trained checks (a planted defect is found, a normal image does not peak at the border) are in
``test_trained_maps.py``.
"""
from __future__ import annotations

import torch

from anolearn.forge.hard_augment import hard_augment
from anolearn.methods.anoseg_nets import upsample_layers
from anolearn.methods.draem_nets import DraemNet
from anolearn.methods.riad import RIAD
from anolearn.nn import use_padding


def parity_energy(maps: torch.Tensor) -> float:
    """How much a ``(B, C, H, W)`` output differs between the four pixel parities (a 2 x 2 grid)."""
    cells = [maps[..., i::2, j::2].mean((-2, -1)) for i in (0, 1) for j in (0, 1)]  # 4 x (B, C)
    return float(torch.stack(cells).std(0).max())


def test_resize_upsampling_draws_no_checkerboard():
    torch.manual_seed(0)
    code = torch.ones(2, 8, 8, 8)  # a constant code: any pattern in the output comes from the layer
    inner = (slice(None), slice(None), slice(2, -2), slice(2, -2))  # away from border effects
    with torch.no_grad():
        transpose = torch.nn.Sequential(*upsample_layers(8, 8, "transpose")[:1])(code)[inner]  # (2, 8, 12, 12)
        resize = torch.nn.Sequential(*upsample_layers(8, 8, "resize")[:2])(code)[inner]
    assert parity_energy(transpose) > 1e-3  # the artefact is real: a 2 x 2 grid from a flat input
    assert float(resize.std((-2, -1)).max()) < 1e-6  # nearest x2 + 3x3 conv: a flat input stays flat


def test_forgeries_anywhere_cover_every_pixel_equally():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(128, 3, 64, 64, generator=g)

    def coverage(inside: bool) -> torch.Tensor:
        return torch.cat([hard_augment(x, g, inside=inside).masks for _ in range(4)]).mean((0, 1))  # (H, W)

    inside, anywhere = coverage(True), coverage(False)
    ratio = lambda m: float(m[:6, :6].mean() / m[26:38, 26:38].mean())  # corner vs centre
    assert ratio(inside) < 0.05  # inside-only placement: corners almost never forged
    assert 0.6 < ratio(anywhere) < 1.4  # anywhere: no prior for the coordinate channels to learn


def test_anoseg_default_forger_places_anywhere_in_the_standard_profile():
    from anolearn.config import get_profile
    from anolearn.methods import AnoSeg

    settings = {**get_profile("standard").schedule("anoseg"), "encoder": "scratch", "steps": 1}
    assert AnoSeg(**settings).forger.params["inside"] is False


def test_reflect_padding_draws_no_frame():
    torch.manual_seed(0)
    image = torch.full((1, 3, 64, 64), 0.6)
    with torch.no_grad():
        zeros = DraemNet(3, 2, base_width=4, depth=3).eval()
        mirror = use_padding(DraemNet(3, 2, base_width=4, depth=3).eval(), "reflect")
        frame = zeros(image)[..., :2, :].mean() - zeros(image)[..., 30:34, :].mean()
        flat = mirror(image)
    assert abs(float(frame)) > 1e-4  # zero padding: the border responds differently
    assert float(flat.std((-2, -1)).max()) < 1e-5  # a mirrored constant image stays constant


def test_mirrored_border_gives_border_pixels_context():
    model = RIAD(ks=(4,), base_width=4, depth=2, steps=1, pad=8)
    x = torch.rand(2, 3, 32, 32)
    padded = model.pad_images(x)
    assert padded.shape[-2:] == (48, 48)
    assert torch.equal(model.crop_border(padded), x)
    assert torch.equal(padded[..., 7, 8:40], x[..., 1, :])  # the row above the image mirrors its second row
