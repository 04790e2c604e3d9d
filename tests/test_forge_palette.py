"""Palette images: the built-in textures augmented per colour instead of per pixel, exactly."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from anolearn.forge import TextureSource
from anolearn.forge import augment as A
from anolearn.forge.palette import Palettes, PaletteState, _chain_state
from anolearn.forge.perlin import perlin_mask

from test_forge_draem import fixed_draem_ops, gen


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
    indexed = src.sample_indexed(9, 24, 32, gen(1))
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
    assert torch.allclose(A.bilinear_at(x, gx, gy), ref, rtol=0, atol=1e-6)


def test_palette_augmentation_is_exact():
    # the indexed path (per-channel level tables where every whole-image step acts channel by
    # channel, palettes where one mixes the channels, stencils through the index, a dense copy
    # only where a whole image is needed after a stencil) must equal the whole-image chain of
    # each sample at every wanted pixel
    ops = fixed_draem_ops()
    fns = list(ops.values())
    src = small_source()
    indexed = src.sample_indexed(80, 30, 38, gen(7))
    m = perlin_mask((80, 30, 38), generator=gen(8), rotation=(-90, 90), dtype=torch.bool)
    m[0] = True  # a full mask
    m[1] = False  # an empty one
    packed, rows, pos, slot, choices = A.draem_augment_pixels(indexed, m, gen(9), ops=ops, return_choices=True)
    kinds = [k for k, _ in (A._kind(fn) for fn in fns)]
    table = choices.tolist()
    forms = [_chain_state(r, kinds, [A._per_channel(fn) for fn in fns]) for r in table]
    assert set(forms) == {"dense", "palette", "levels"}  # every whole-image form is exercised
    assert rows.numel() == int(m.sum())
    x = indexed.dense()
    for i, row in enumerate(table):
        ref = x[i:i + 1]
        for k in row:
            ref = fns[k](ref, None)
        mine = rows == i
        got = packed[i, :, 0, slot[mine]]
        assert torch.allclose(got, ref[0].view(3, -1)[:, pos[mine]], rtol=0, atol=1e-6), (i, row)


def test_forger_uses_palettes_and_keeps_its_contract():
    from anolearn.forge import draem_forge

    x = torch.rand(16, 3, 40, 40, generator=gen(10))
    src = small_source()
    out = draem_forge(x, gen(11), source=src, p_normal=0.0)
    again = draem_forge(x, gen(11), source=src, p_normal=0.0)
    assert torch.equal(out.images, again.images) and torch.equal(out.masks, again.masks)
    outside = (out.masks == 0).expand_as(x)
    assert torch.equal(out.images[outside], x[outside])
    assert out.images.min() >= 0 and out.images.max() <= 1
    assert out.masks.sum() > 0 and not torch.equal(out.images, x)
