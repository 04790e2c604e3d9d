"""Complementary grid masks and composition (anolearn.masking): the properties RIAD relies on."""
import pytest
import torch

from anolearn.masking import (
    cells_to_pixels,
    compose,
    grid_masks,
    grid_shape,
    random_cell_groups,
    uncovered,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("k,size,n", [(2, 32, 3), (4, 32, 3), (8, (30, 37), 3), (16, (128, 128), 3), (5, 23, 4),
                                      (3, 12, 2)])
def test_every_pixel_hidden_exactly_once(k, size, n):
    masks = grid_masks(k, size, n=n, batch=4, generator=_gen())
    h, w = (size, size) if isinstance(size, int) else size
    assert masks.shape == (n, 4, 1, h, w)
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal((1 - masks).sum(0), torch.ones(4, 1, h, w))  # the hidden sets partition the image
    assert not uncovered(masks).any()


@pytest.mark.parametrize("k,size", [(4, 32), (8, (30, 37)), (3, 10)])
def test_masks_are_constant_on_k_by_k_cells(k, size):
    masks = grid_masks(k, size, n=3, batch=2, generator=_gen(1))  # (3, 2, 1, H, W)
    nh, nw = grid_shape(size, k)
    cells = masks[..., ::k, ::k]  # top-left pixel of every cell
    assert cells.shape[-2:] == (nh, nw)
    assert torch.equal(cells_to_pixels(cells, k, size), masks)


def test_grid_shape_rounds_up_and_edge_cells_are_cropped():
    assert grid_shape(128, 8) == (16, 16)
    assert grid_shape((30, 37), 8) == (4, 5)  # the last row is 6, the last column 5 pixels wide
    groups = torch.arange(20).view(1, 4, 5)
    pixels = cells_to_pixels(groups, 8, (30, 37))
    assert pixels.shape == (1, 30, 37) and pixels[0, 29, 36] == 19 and pixels[0, 24, 32] == 19
    with pytest.raises(ValueError, match="positive integer"):
        grid_shape(32, 0)


def test_groups_are_balanced():
    groups = random_cell_groups((7, 7), n=3, batch=5, generator=_gen())  # 49 cells -> 17, 16, 16
    for b in range(5):
        counts = torch.bincount(groups[b].flatten(), minlength=3)
        assert sorted(counts.tolist()) == [16, 16, 17]


def test_determinism_and_independence():
    a = grid_masks(4, 32, batch=3, generator=_gen(7))
    b = grid_masks(4, 32, batch=3, generator=_gen(7))
    c = grid_masks(4, 32, batch=3, generator=_gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a[:, 0], a[:, 1])  # each image of a batch has its own partition
    # 8 x 8 = 64 cells of 16 pixels: each mask hides 21 or 22 cells of every image
    hidden_cells = (1 - a).sum((2, 3, 4)) / 16  # (3, B)
    assert set(hidden_cells.flatten().tolist()) <= {21.0, 22.0}


def test_masks_follow_device_and_dtype():
    m = grid_masks(4, 16, generator=_gen(), dtype=torch.float64, device="cpu")
    assert m.dtype == torch.float64 and m.device.type == "cpu"
    if torch.cuda.is_available():  # pragma: no cover - only with a GPU
        g = torch.Generator(device="cuda").manual_seed(0)
        assert grid_masks(4, 16, generator=g).device.type == "cuda"


def test_compose_takes_each_pixel_from_the_pass_that_hid_it():
    masks = grid_masks(4, 16, n=3, batch=2, generator=_gen(3))  # (3, 2, 1, 16, 16)
    outputs = torch.stack([torch.full((2, 3, 16, 16), float(i + 1)) for i in range(3)])  # pass i outputs i + 1
    x_hat = compose(outputs, masks)
    hidden_in = (1 - masks).argmax(0)  # (2, 1, 16, 16): index of the mask hiding each pixel
    assert torch.equal(x_hat, (hidden_in + 1).float().expand(2, 3, 16, 16))


def test_compose_copies_uncovered_pixels_from_the_image():
    masks = grid_masks(4, 16, n=3, batch=1, generator=_gen(4))
    masks[..., :8, :] = 1  # top half visible in every mask (what SSM's refinement does)
    outputs = torch.zeros(3, 1, 3, 16, 16)
    image = torch.rand(1, 3, 16, 16)
    x_hat = compose(outputs, masks, image=image)
    assert torch.equal(x_hat[..., :8, :], image[..., :8, :]) and not x_hat[..., 8:, :].any()
    assert torch.equal(uncovered(masks)[0, 0, :8], torch.ones(8, 16))
    assert not compose(outputs, masks)[..., :8, :].any()  # without `image`, uncovered pixels stay 0
    with pytest.raises(ValueError, match="compose needs"):
        compose(outputs[0], masks)
