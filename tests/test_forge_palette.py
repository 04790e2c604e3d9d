"""The fast engine's palette images: the built-in textures held per colour or per level, exactly."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from anolearn.forge import TextureSource
from anolearn.forge.fast.palette import Palettes, PaletteState, indexed_textures
from anolearn.forge.fast.pixels import bilinear_at


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def small_source() -> TextureSource:
    return TextureSource(per_family=3, crops_per_photo=1)


def test_palettes_rebuild_the_bank():
    bank = small_source().bank(24, 32)
    pal = Palettes.of(bank)
    n = bank.shape[0]
    # the level counts are each channel's histogram
    for c in range(3):
        assert torch.equal(pal.level_counts[:, c], torch.stack([torch.bincount(b[c].flatten().long(), minlength=256) for b in bank]))
    # every pixel is the palette colour its index names
    rebuilt = pal.colours[(pal.start.view(-1, 1) + pal.index.long()).view(-1)].view(n, 24 * 32, 3)
    assert torch.equal(rebuilt.permute(0, 2, 1).reshape(bank.shape), bank)
    assert pal.counts.sum() == n * 24 * 32 and (pal.counts > 0).all()
    # the colours of one image are distinct
    first = pal.colours[: int(pal.size[0])].int()
    assert torch.unique(first[:, 0] * 65536 + first[:, 1] * 256 + first[:, 2]).numel() == int(pal.size[0])


def test_indexed_draw_is_the_dense_draw():
    src = small_source()
    indexed = indexed_textures(src, 9, 24, 32, gen(1))
    assert torch.equal(indexed.dense(), src.sample(9, 24, 32, gen(1)))
    assert indexed.shape == (9, 3, 24, 32)
    # a flipped image reads the flipped bank pixel
    state = PaletteState(indexed, torch.zeros(9, 1, dtype=torch.long))
    reader = state.reader(slice(0, 9))
    ys, xs = torch.randint(0, 24, (9, 50), generator=gen(2)), torch.randint(0, 32, (9, 50), generator=gen(3))
    dense = indexed.dense().view(9, 3, -1)
    assert torch.equal(reader.read(reader.locate(ys, xs)), dense.gather(2, (ys * 32 + xs).unsqueeze(1).expand(-1, 3, -1)))


def test_bilinear_read_is_grid_samples():
    x = torch.rand(3, 3, 20, 28, generator=gen(4))
    gx, gy = torch.rand(3, 300, generator=gen(5)) * 2.4 - 1.2, torch.rand(3, 300, generator=gen(6)) * 2.4 - 1.2
    ref = F.grid_sample(x, torch.stack([gx, gy], -1).unsqueeze(1), mode="bilinear", padding_mode="zeros",
                        align_corners=False)[:, :, 0]
    assert torch.allclose(bilinear_at(x, gx, gy), ref, rtol=0, atol=1e-6)
