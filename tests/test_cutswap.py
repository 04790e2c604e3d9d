"""CutPaste / CutSwap methods: classifier labels, patch maps, persistence, determinism, forgers."""
import pytest
import torch

from anolearn.forge.cutswap import CutSwap, saliency_levels
from anolearn.methods import METHODS, CutPasteGDE, CutSwapGDE, create_method, load_method
from anolearn.methods.cutpaste import FORGERS, make_forgers, patches_to_map, random_crop, translate, translate_crop

TINY = dict(width=4, blocks=(1, 1, 1, 1), head=(16,), steps=3, batch_size=4, optimizer="adam", lr=1e-3,
            patch_size=16, patch_stride=8, patch_sigma=4.0)
FAST_SWAP = {"saliency": "spectral_residual"}  # model-free saliency keeps the tests fast


def images(n=6, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)


@pytest.mark.parametrize("forger", list(FORGERS))
def test_forge_batch_labels_and_classes(forger):
    method = CutPasteGDE(forger=forger, forger_options=FAST_SWAP, **TINY)
    k = FORGERS[forger]
    assert method.num_classes == k and method.head.classifier.out_features == k
    x = images(4)
    batch, labels = method.forge_batch(x, make_forgers(forger, FAST_SWAP), torch.Generator().manual_seed(1))
    assert batch.shape == (4 * k, 3, 32, 32)
    assert labels.tolist() == sum([[c] * 4 for c in range(k)], [])
    assert torch.equal(batch[:4], x)  # class 0: the normal images themselves
    for c in range(1, k):  # every forged class changed every image somewhere
        assert ((batch[4 * c: 4 * (c + 1)] - x).abs().flatten(1).amax(1) > 0).all()


def test_forger_parameter_and_registry():
    assert METHODS["cutpaste"] is CutPasteGDE and METHODS["cutswap"] is CutSwapGDE
    assert CutPasteGDE(**TINY).forger_name == "cutpaste"
    assert CutSwapGDE(**TINY).forger_name == "cutswap"
    assert create_method("cutswap", forger="cutswap+cutpaste", **TINY).num_classes == 3
    with pytest.raises(ValueError, match="Unknown forger"):
        CutPasteGDE(forger="cutmix", **TINY)
    kinds = [type(f).__name__ for f in make_forgers("cutswap+cutpaste", FAST_SWAP)]
    assert kinds == ["CutPaste", "CutSwap"]
    assert [type(f).__name__ for f in make_forgers("3way")] == ["CutPaste", "CutPasteScar"]


def test_cached_saliency_forges_like_the_live_forger():
    # Without translation, crop or jitter, the cached maps are the batch's own maps, so the
    # forgeries must be identical to those of a forger that computes saliency itself.
    method = CutSwapGDE(forger_options=FAST_SWAP, translate=0.0, jitter=0.0, **TINY)
    forgers = make_forgers("cutswap", FAST_SWAP)
    x = images(5, size=48)
    cache = method.saliency_cache(x, forgers)  # (N, L, H, W)
    assert cache.shape[0] == 5 and cache.shape[-2:] == (48, 48)
    normal, sal = method.augment(x, torch.Generator().manual_seed(0), cache)
    cached, _ = method.forge_batch(normal, forgers, torch.Generator().manual_seed(3), list(sal.split(1, 1)))
    live, _ = method.forge_batch(normal, forgers, torch.Generator().manual_seed(3))
    assert torch.equal(cached, live)
    assert method.saliency_cache(x, make_forgers("cutpaste")) is None


def test_translate_is_a_reflected_shift_and_crop_is_a_window():
    x = images(3, size=20)
    assert torch.equal(translate(x, 0.0, None), x)
    out = translate(x, 0.1, torch.Generator().manual_seed(0))  # shifts of up to 2 px
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="reflect")
    for b in range(3):
        assert any(torch.equal(out[b], padded[b, :, dy:dy + 20, dx:dx + 20]) for dy in range(5) for dx in range(5))
    crops = random_crop(x, 8, torch.Generator().manual_seed(0))
    assert crops.shape == (3, 3, 8, 8)
    for b in range(3):
        assert any(torch.equal(crops[b], x[b, :, i:i + 8, j:j + 8]) for i in range(13) for j in range(13))
    with pytest.raises(ValueError, match="larger"):
        random_crop(x, 21, None)


@pytest.mark.parametrize("shift, size", [(0.1, 8), (0.1, None), (0.0, 8), (0.0, None), (0.02, 12)])
def test_fused_translate_crop_equals_the_two_steps(shift, size):
    x = images(4, size=20)
    two_steps_g = torch.Generator().manual_seed(5)
    two_steps = translate(x, shift, two_steps_g)
    two_steps = random_crop(two_steps, size, two_steps_g) if size else two_steps
    assert torch.equal(translate_crop(x, shift, size, torch.Generator().manual_seed(5)), two_steps)


def test_patches_to_map_shapes_and_normalisation():
    scores = torch.full((2, 5, 5), 3.0)
    flat = patches_to_map(scores, size=16, stride=8, sigma=4.0, out_size=(50, 50))  # covers 48 px, 2 padded
    assert flat.shape == (2, 50, 50)
    assert torch.allclose(flat, torch.full_like(flat, 3.0))  # a weighted average of equal scores
    one = torch.zeros(1, 5, 5)
    one[0, 2, 2] = 1.0  # the patch covering pixels 16..31
    m = patches_to_map(one, 16, 8, 4.0, (48, 48))[0]
    assert m.argmax() // 48 in range(16, 32) and m.argmax() % 48 in range(16, 32)
    assert m[:8].max() == 0 and m[:, 40:].max() == 0  # pixels no covering patch reaches stay 0
    assert (m >= 0).all() and m.max() <= 1


def test_fit_predict_shapes_and_patch_embeddings():
    x = images(6, size=40)
    method = CutPasteGDE(**TINY).fit(x, progress=False)
    assert len(method.history["loss"]) == 3 and len(method.history["accuracy"]) == 3
    out = method.predict(x[:2])
    assert out.scores.shape == (2,) and out.maps.shape == (2, 40, 40)  # (40 - 16) % 8 == 0
    assert torch.allclose(out.scores, method.gde.score(method.embed(x[:2])))
    odd = images(2, size=44)  # (44 - 16) % 8 != 0: the last 4 rows/columns are padded
    assert method.predict(odd).maps.shape == (2, 44, 44)
    patches = method.embed_patches(x[:2])  # (B, nh, nw, D)
    assert patches.shape == (2, 4, 4, method.encoder.dim)
    direct = method.embed(x[1:2, :, 8:24, 16:32])  # patch (1, 2) of image 1
    assert torch.allclose(patches[1, 1, 2], direct[0], atol=1e-5)
    no_maps = CutPasteGDE(**{**TINY, "patch_size": None}).fit(x, progress=False).predict(x[:2])
    assert torch.equal(no_maps.maps[:, 0, 0], no_maps.scores) and no_maps.maps.shape == (2, 40, 40)


def test_save_load_round_trip(tmp_path):
    x = images(6)
    method = CutSwapGDE(forger_options=FAST_SWAP, **TINY).fit(x, progress=False)
    path = method.save(tmp_path / "cutswap.pt")
    loaded = load_method(path)
    assert isinstance(loaded, CutSwapGDE) and loaded.config() == method.config()
    a, b = method.predict(x), loaded.predict(x)
    assert torch.equal(a.scores, b.scores) and torch.equal(a.maps, b.maps)


def test_deterministic_under_seed():
    x = images(6)
    runs = [CutSwapGDE(forger="cutswap+cutpaste", forger_options=FAST_SWAP, seed=s, **TINY).fit(x, progress=False)
            for s in (7, 7, 8)]
    assert runs[0].history == runs[1].history
    s0, s1 = runs[0].state_dict(), runs[1].state_dict()
    assert all(torch.equal(s0[k], s1[k]) for k in s0)
    assert runs[0].history != runs[2].history
    assert torch.equal(runs[0].predict(x).maps, runs[1].predict(x).maps)


def test_training_learns_to_spot_cutpaste():
    # A property, not a number: on smooth images a pasted rectangle leaves a seam that the
    # classifier learns to see, so accuracy at the end beats chance clearly.
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    phase = torch.rand(16, 1, 1, generator=torch.Generator().manual_seed(0))
    x = (0.5 + 0.4 * torch.sin(6.28 * (xx + yy + phase)))[:, None].expand(16, 3, 32, 32).contiguous()
    method = CutPasteGDE(**{**TINY, "steps": 60, "batch_size": 8, "width": 8, "jitter": 0.0, "lr": 3e-3})
    method.fit(x, progress=False)
    assert sum(method.history["accuracy"][-10:]) / 10 > 0.75


def test_errors():
    with pytest.raises(RuntimeError, match="fit"):
        CutPasteGDE(**TINY).predict(images(1))
    with pytest.raises(ValueError, match="optimizer"):
        CutPasteGDE(**{**TINY, "optimizer": "lbfgs"})
    with pytest.raises(ValueError, match="patch_size"):
        CutPasteGDE(**TINY).fit(images(4), progress=False).predict(images(1, size=8))
    with CutPasteGDE(**TINY).autocast():  # mixed precision only on CUDA
        assert not torch.is_autocast_enabled("cpu")


def test_cutswap_default_saliency_is_multilevel_layercam():
    forger = make_forgers("cutswap")[0]
    assert isinstance(forger, CutSwap)
    maps = saliency_levels(images(2, size=64), forger.saliency)
    assert len(maps) == 3 and all(m.shape == (2, 1, 64, 64) for m in maps)
