"""SGSF: contrast-set retrieval, guided segmenter, variants, determinism, save/load."""
import inspect

import numpy as np
import pytest
import torch

from anolearn.methods import SGSF, create_method, load_method
from anolearn.methods.retrieval import contrast_sets, cosine_topk, retrieval_features
from anolearn.methods.sgsf_nets import GuidedSegmenter

TINY = {"ext_width": 4, "ext_depth": 2, "seg_width": 4, "seg_depth": 3, "epochs": None, "steps": 2, "batch_size": 4, "lr": 1e-3,
            "input_size": None, "source": "textures", "retrieval_size": 64, "retrieval_grid": 2, "n_contrast": 2, "log_every": 1}


def _train(n=6, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)


def test_cosine_topk_matches_brute_force_and_excludes():
    g = torch.Generator().manual_seed(0)
    q, bank = torch.randn(5, 7, generator=g), torch.randn(9, 7, generator=g)
    sims, idx = cosine_topk(q, bank, 3)
    qn, bn = q.numpy() / np.linalg.norm(q.numpy(), axis=1, keepdims=True), bank.numpy() / np.linalg.norm(
        bank.numpy(), axis=1, keepdims=True)
    ref = qn @ bn.T
    np.testing.assert_array_equal(idx.numpy(), np.argsort(-ref, axis=1)[:, :3])
    np.testing.assert_allclose(sims.numpy(), np.sort(ref, axis=1)[:, ::-1][:, :3], rtol=1e-5)
    _, idx_ex = cosine_topk(bank, bank, 3, exclude=torch.arange(9))
    assert not (idx_ex == torch.arange(9)[:, None]).any()
    with pytest.raises(ValueError, match="k must"):
        cosine_topk(bank, bank, 9, exclude=torch.arange(9))


def test_contrast_sets_exclude_own_copy_even_with_exact_duplicates():
    f = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])  # 0 and 1 identical
    sets = contrast_sets(f, n=2)
    assert sets.shape == (4, 2)
    assert not (sets == torch.arange(4)[:, None]).any()
    assert sets[0, 0] == 1 and sets[1, 0] == 0  # the other copy ranks first, never the image itself


def test_pretrained_retrieval_ranks_near_duplicates_first():
    g = torch.Generator().manual_seed(1)
    base = torch.rand(4, 3, 8, 8, generator=g)
    base = torch.nn.functional.interpolate(base, size=64, mode="bilinear")  # four distinct smooth images
    near = (base + 0.02 * torch.randn(base.shape, generator=g)).clamp(0, 1)  # their noisy copies
    feats = retrieval_features(torch.cat([base, near]), grid=2, size=64)
    assert feats.shape[0] == 8 and torch.allclose(feats.norm(dim=1), torch.ones(8))
    sets = contrast_sets(feats, n=3)
    assert torch.equal(sets[:, 0], torch.tensor([4, 5, 6, 7, 0, 1, 2, 3]))


def test_guided_segmenter_fuses_every_guided_level():
    torch.manual_seed(0)
    seg = GuidedSegmenter(base_width=4, depth=3, guide_widths={0: 5, 1: 6, 2: 7})
    x = torch.rand(2, 3, 32, 32)
    guide = {lv: torch.rand(2, c, 32 >> lv, 32 >> lv) for lv, c in {0: 5, 1: 6, 2: 7}.items()}
    assert seg(x, guide).shape == (2, 2, 32, 32)
    assert seg.fuse["1"][0].in_channels == seg.widths[1] + 6
    out = seg(x, guide)
    for lv, g_lv in guide.items():  # the guidance of every level reaches the output
        assert not torch.equal(out, seg(x, {**guide, lv: torch.zeros_like(g_lv)}))
    with pytest.raises(ValueError, match="guidance"):
        seg(x)
    assert GuidedSegmenter(4, 3, None)(x).shape == (2, 2, 32, 32)


def test_paper_defaults():
    d = {k: v.default for k, v in inspect.signature(SGSF).parameters.items()}  # without building the big nets
    assert (d["n_contrast"], d["gamma"], d["lam"], d["batch_size"], d["lr"], d["p_normal"]) == (4, 2.0, 1.0, 16, 1e-4, 0.25)
    assert d["lr_milestones"] == (0.5, 0.7, 0.9) and d["lr_gamma"] == 0.1 and d["score_filter"] == 1
    assert (d["forging"], d["extractor"], d["test_guidance"], d["input_size"]) == ("sam", "reconstruction", "top1", 256)


@pytest.mark.parametrize("extra", [{}, {"forging": "perlin"}, {"guidance": False}, {"extractor": "denoising"}])
def test_variants_fit_and_predict(extra):
    m = create_method("sgsf", **TINY, **extra).fit(_train(), progress=False)
    out = m.predict(torch.rand(2, 3, 32, 32))
    assert out.scores.shape == (2,) and out.maps.shape == (2, 32, 32)
    torch.testing.assert_close(out.scores, out.maps.flatten(1).amax(1))  # image score = max of the map
    assert (m.extractor is None) == (extra.get("guidance") is False)
    h = m.history
    assert h["loss"][-1] == pytest.approx(h["l2"][-1] + h["ssim"][-1] + h["focal"][-1], rel=1e-5)


def test_contrast_sets_and_test_guidance():
    train = _train()
    m = SGSF(**TINY).fit(train, progress=False)
    assert m.contrast.shape == (6, 2) and not (m.contrast == torch.arange(6)[:, None]).any()
    assert m.bank_images.dtype == torch.uint8 and m.bank_images.shape == (6, 3, 32, 32)
    out = m.outputs(train[:3])  # a training image's nearest normal image is itself at test time
    torch.testing.assert_close(out["guide"], torch.round(train[:3] * 255) / 255)
    seen = []
    forward = m.segmenter.forward
    m.segmenter.forward = lambda x, guide=None: seen.append(guide) or forward(x, guide)
    m.predict(train[:2])
    m.test_guidance = "mean"
    m.predict(train[:2])
    top1, mean = seen
    with torch.no_grad():  # "mean" averages the extractor's features over the contrast set of each image
        _, idx = m.contrast_for(train[:2])
        _, feats = m.extractor(m.bank_images[idx.flatten()].float() / 255, return_features=True)
    for lv in top1:
        torch.testing.assert_close(mean[lv], feats[lv].view(2, 2, *feats[lv].shape[1:]).mean(1))
        torch.testing.assert_close(top1[lv], feats[lv].view(2, 2, *feats[lv].shape[1:])[:, 0])
        assert not torch.equal(top1[lv], mean[lv])


def test_determinism_and_save_load(tmp_path):
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    a = SGSF(**TINY).fit(_train(), progress=False)
    b = SGSF(**TINY).fit(_train(), progress=False)
    assert torch.equal(a.predict(x).maps, b.predict(x).maps) and a.history == b.history
    loaded = load_method(a.save(tmp_path / "sgsf.pt"))
    assert isinstance(loaded, SGSF) and loaded.config() == a.config()
    assert torch.equal(loaded.contrast, a.contrast) and torch.equal(loaded.bank_images, a.bank_images)
    torch.testing.assert_close(loaded.predict(x).maps, a.predict(x).maps)


def test_bad_settings():
    for bad in ({"forging": "cutpaste"}, {"extractor": "vae"}, {"test_guidance": "top2"}, {"n_contrast": 0}):
        with pytest.raises(ValueError):
            SGSF(**bad)
