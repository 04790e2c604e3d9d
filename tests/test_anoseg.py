"""AnoSeg: networks (Table 6), coordinate channels, losses, map convention, persistence, ablations."""
import math

import pytest
import torch
from torch import nn

from anolearn.forge import Forged
from anolearn.methods import AnoSeg, create_method, load_method
from anolearn.methods.anoseg_losses import (
    detection_score,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    masked_reconstruction_loss,
    segmentation_loss,
)
from anolearn.methods.anoseg_nets import (
    AnoSegGenerator,
    PairDiscriminator,
    ResNetEncoder,
    Table6Decoder,
    add_coordinate_channels,
    coordinate_channels,
    discriminator_channels,
)

TINY = {"steps": 3, "batch_size": 4, "input_size": 32, "width": 0.125, "log_every": 2, "detector_steps": 2}


def _train(n=6, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, size, size, generator=g) * 0.3 + 0.3
    return (base + 0.05 * torch.rand(n, 3, size, size, generator=g)).clamp(0, 1)


# ---------------------------------------------------------------- coordinate channels
def test_coordinate_channels_values():
    x = torch.rand(2, 3, 5, 7)
    c = coordinate_channels(x)
    assert c.shape == (2, 2, 5, 7)
    for h in range(5):
        for w in range(7):
            assert math.isclose(c[1, 0, h, w].item(), -1 + 2 * h / 4, abs_tol=1e-6)  # row coordinate i
            assert math.isclose(c[1, 1, h, w].item(), -1 + 2 * w / 6, abs_tol=1e-6)  # column coordinate j
    x5 = add_coordinate_channels(x)
    assert x5.shape == (2, 5, 5, 7) and torch.equal(x5[:, :3], x) and torch.equal(x5[:, 3:], c)


def test_coordinate_channels_follow_device_and_dtype():
    c = coordinate_channels(torch.zeros(1, 3, 4, 4, dtype=torch.float64))
    assert c.dtype == torch.float64 and c.min() == -1 and c.max() == 1
    with pytest.raises(ValueError, match="B, C, H, W"):
        coordinate_channels(torch.zeros(3, 4, 4))


# ---------------------------------------------------------------- networks
def test_generator_shapes_and_ranges():
    G = AnoSegGenerator(coord_channels=True, width=0.125).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        x_hat, A_hat = G(x)
        z = G.encoder(add_coordinate_channels(x))
    assert x_hat.shape == (2, 3, 64, 64) and A_hat.shape == (2, 1, 64, 64)
    assert z.shape == (2, 64, 2, 2)  # 512 * width channels at H / 32
    assert 0 <= x_hat.min() and x_hat.max() <= 1 and 0 <= A_hat.min() and A_hat.max() <= 1
    with pytest.raises(ValueError, match="multiples of 32"):
        G(torch.rand(1, 3, 40, 40))


def test_encoder_is_resnet18_at_width_one():
    enc = ResNetEncoder(5, 1.0)
    assert enc.stem[0].in_channels == 5 and enc.out_channels == 512
    blocks = [m for m in enc.modules() if type(m).__name__ == "BasicBlock"]
    assert len(blocks) == 8  # ResNet-18: four stages of two basic blocks
    assert enc(torch.rand(1, 5, 64, 64)).shape == (1, 512, 2, 2)


def test_decoder_follows_table6():
    dec = Table6Decoder(512, 3, width=1.0)
    convs = [m for m in dec.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    table6 = [(512, 3, 1, False), (512, 4, 2, True), (256, 3, 1, False), (256, 4, 2, True), (128, 3, 1, False),
              (128, 4, 2, True), (128, 3, 1, False), (128, 4, 2, True), (128, 3, 1, False), (128, 4, 2, True),
              (128, 3, 1, False), (3, 3, 1, False)]
    got = [(m.out_channels, m.kernel_size[0], m.stride[0], isinstance(m, nn.ConvTranspose2d)) for m in convs]
    assert got == table6
    assert all(m.padding[0] == 1 for m in convs)
    assert isinstance(dec.net[-1], nn.Sigmoid)
    # both decoders of the generator have the identical structure, only the output channels differ
    G = AnoSegGenerator(width=0.125)
    shapes = lambda d: [tuple(p.shape) for p in d.parameters()][:-2]
    assert shapes(G.decoder_image) == shapes(G.decoder_map)


def test_discriminator_follows_table6():
    assert discriminator_channels(256) == [64, 128, 256, 512, 512, 512, 128]
    assert discriminator_channels(128) == [64, 128, 256, 512, 512, 128]
    with pytest.raises(ValueError, match="power-of-two"):
        discriminator_channels(100)
    D = PairDiscriminator(64, 4, width=0.25).eval()
    pair = torch.rand(3, 4, 64, 64)
    assert D(pair).shape == (3,) and D.features(pair).shape == (3, 32 * 2 * 2)
    assert torch.allclose(D.probability(pair), torch.sigmoid(D(pair)))
    with pytest.raises(ValueError, match="built for"):
        D(torch.rand(1, 4, 32, 32))


# ---------------------------------------------------------------- losses
def test_segmentation_loss_is_mean_l1():
    A = (torch.rand(2, 1, 8, 8) > 0.3).float()
    A_hat = torch.rand(2, 1, 8, 8)
    assert torch.isclose(segmentation_loss(A_hat, A), (A - A_hat).abs().sum() / A.numel())


def test_masked_reconstruction_loss_oracle_and_invariance():
    g = torch.Generator().manual_seed(0)
    x, x_hat = torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 3, 8, 8, generator=g)
    A = torch.ones(2, 1, 8, 8)
    A[0, :, 2:5, 3:7] = 0  # anomalous region, 1 = normal
    # oracle: mean absolute error over normal pixels and channels, by explicit loops
    total, count = 0.0, 0
    for b in range(2):
        for i in range(8):
            for j in range(8):
                if A[b, 0, i, j] == 1:
                    total += (x[b, :, i, j] - x_hat[b, :, i, j]).abs().sum().item()
                    count += 3
    loss = masked_reconstruction_loss(x_hat, x, A)
    assert math.isclose(loss.item(), total / count, rel_tol=1e-5)
    # changing anything in the anomalous pixels (input or reconstruction) changes nothing
    x2, x_hat2 = x.clone(), x_hat.clone().requires_grad_(True)
    x2[0, :, 2:5, 3:7] = torch.rand(3, 3, 4, generator=g)
    with torch.no_grad():
        x_hat2[0, :, 2:5, 3:7] = 5.0
    loss2 = masked_reconstruction_loss(x_hat2, x2, A)
    assert torch.equal(loss2.detach(), loss)
    loss2.backward()
    assert torch.all(x_hat2.grad[0, :, 2:5, 3:7] == 0) and x_hat2.grad.abs().sum() > 0
    # an all-normal map gives the plain L1
    assert torch.isclose(masked_reconstruction_loss(x_hat, x, torch.ones_like(A)), (x - x_hat).abs().mean())
    with pytest.raises(ValueError, match="A must be"):
        masked_reconstruction_loss(x_hat, x, torch.ones(2, 3, 8, 8))


def test_adversarial_and_detection_losses():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    expected = -(torch.log(torch.sigmoid(real)).mean() + torch.log(1 - torch.sigmoid(fake)).mean())
    assert torch.isclose(discriminator_loss(real, fake), expected)
    assert torch.isclose(generator_adversarial_loss(fake), -torch.log(torch.sigmoid(fake)).mean())
    f1, f2 = torch.rand(3, 10), torch.rand(3, 10)
    x, x_hat = torch.rand(3, 3, 4, 4), torch.rand(3, 3, 4, 4)
    assert torch.isclose(feature_matching_loss(f1, f2), ((f1 - f2) ** 2).mean())
    s = detection_score(f1, f2, x, x_hat, alpha=1.0, beta=0.1)
    assert s.shape == (3,)
    assert torch.allclose(s, ((f1 - f2) ** 2).mean(1) + 0.1 * ((x - x_hat) ** 2).flatten(1).mean(1))


# ---------------------------------------------------------------- the method
def test_map_convention_and_forged_batch():
    method = AnoSeg(**TINY)
    x = _train(8)
    images, A, picked = method._forge(x, torch.Generator().manual_seed(1))
    forged = method.forger(x, generator=torch.Generator().manual_seed(1))
    assert isinstance(forged, Forged)
    # forged samples: A is 0 exactly on the forged pixels (1 = normal); the others are all ones
    for b in range(8):
        if picked[b]:
            assert torch.equal(A[b], forged.normal_maps[b]) and torch.equal(images[b], forged.images[b])
            assert A[b].min() == 0
        else:
            assert torch.all(A[b] == 1) and torch.equal(images[b], x[b])
    method.fit(_train(), progress=False)
    test = _train(3, seed=4)
    _, A_hat = method.reconstruct(test)
    out = method.predict(test)
    assert out.maps.shape == (3, 32, 32) and out.scores.shape == (3,)
    assert torch.allclose(out.maps, 1 - A_hat[:, 0], atol=1e-6)  # pixel map = 1 - A_hat, high = anomalous


def test_resizes_to_input_size_and_back():
    method = AnoSeg(**TINY).fit(_train(size=64), progress=False)  # trained at 32 x 32
    out = method.predict(_train(2, size=64, seed=3))
    assert out.maps.shape == (2, 64, 64)


def test_history_and_callback():
    calls = []
    method = AnoSeg(**{**TINY, "steps": 5})
    method.fit(_train(), progress=False, callback=lambda stage, h: calls.append((stage, h["step"][-1])))
    assert method.history["step"] == [2, 4, 5]
    assert set(method.history) == {"step", "seg", "re", "adv", "d"}
    assert all(math.isfinite(v) for k in ("seg", "re", "adv", "d") for v in method.history[k])
    assert calls == [("segmenter", 2), ("segmenter", 4), ("segmenter", 5)]


def test_deterministic_under_seed():
    runs = [AnoSeg(**TINY, seed=3).fit(_train(), progress=False) for _ in range(2)]
    a, b = (r.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert runs[0].history == runs[1].history
    other = AnoSeg(**TINY, seed=4).fit(_train(), progress=False).state_dict()
    assert not all(torch.equal(a[k], other[k]) for k in a)


@pytest.mark.parametrize("image_score", ["map_max", "gan"])
def test_save_load_round_trip(tmp_path, image_score):
    method = create_method("anoseg", **TINY, image_score=image_score).fit(_train(), progress=False)
    again = load_method(method.save(tmp_path / "anoseg.pt"))
    assert type(again) is AnoSeg and again.config() == method.config()
    x = _train(3, seed=9)
    p1, p2 = method.predict(x), again.predict(x)
    assert torch.equal(p1.maps, p2.maps) and torch.equal(p1.scores, p2.scores)


def test_gan_image_score():
    method = AnoSeg(**TINY, image_score="gan").fit(_train(), progress=False)
    assert method.detector_history["step"] == [2]
    x = _train(3, seed=2)
    gan, map_max = method.predict(x), method.predict(x, image_score="map_max")
    assert torch.equal(gan.maps, map_max.maps) and not torch.equal(gan.scores, map_max.scores)
    assert torch.all(gan.scores >= 0)
    plain = AnoSeg(**TINY).fit(_train(), progress=False)
    with pytest.raises(RuntimeError, match="Appendix-A"):
        plain.predict(x, image_score="gan")


def test_ablation_flags_change_architecture_and_loss():
    full = AnoSeg(**TINY)
    no_coord = AnoSeg(**TINY, coord_channels=False)
    no_adv = AnoSeg(**TINY, adversarial=False)
    assert full.generator.encoder.stem[0].in_channels == 5
    assert no_coord.generator.encoder.stem[0].in_channels == 3
    assert full.discriminator is not None and no_adv.discriminator is None
    assert not any(k.startswith("discriminator.") for k in no_adv.state_dict())
    no_adv.fit(_train(), progress=False)
    assert all(math.isnan(v) for v in no_adv.history["adv"] + no_adv.history["d"])
    # without D, only L_Seg + L_Re train G: lambda_adv has no effect at all
    other = AnoSeg(**TINY, adversarial=False, lambda_adv=5.0).fit(_train(), progress=False)
    assert all(torch.equal(v, other.state_dict()[k]) for k, v in no_adv.state_dict().items())


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="image_score"):
        AnoSeg(image_score="mean")
    with pytest.raises(ValueError, match="power of two"):
        AnoSeg(input_size=100)
    with pytest.raises(RuntimeError, match="fit"):
        AnoSeg(**TINY).predict(torch.rand(1, 3, 32, 32))
