import pytest
import skimage.data
import torch
import torch.nn.functional as F

from anolearn.backbones import BackboneWeightsMissing, get_backbone, imagenet_normalize


@pytest.fixture(scope="module")
def effnet():
    return get_backbone("efficientnet_lite0")


def test_multiscale_shapes(effnet):
    feats = effnet(torch.rand(2, 3, 128, 128))
    assert [tuple(f.shape) for f in feats] == [(2, 24, 32, 32), (2, 40, 16, 16), (2, 112, 8, 8), (2, 320, 4, 4)]
    assert effnet.channels() == [24, 40, 112, 320]


def test_weights_are_real_imagenet_weights(effnet):
    # A randomly initialised network would not call skimage's cat a cat (ImageNet 281-287 are cats).
    cat = torch.from_numpy(skimage.data.chelsea()).permute(2, 0, 1).float()[None] / 255
    cat = F.interpolate(cat, size=(224, 224), mode="bilinear", antialias=True)
    with torch.no_grad():
        logits, _ = effnet.classify(cat)
    assert logits.argmax(1).item() in range(281, 288)


def test_backbone_is_frozen_and_stays_in_eval(effnet):
    effnet.train()
    assert not effnet.model.training
    assert not any(p.requires_grad for p in effnet.parameters())


def test_gradients_flow_to_the_input_for_saliency(effnet):
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    logits, feats = effnet.classify(x)
    logits[0, 0].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_normalisation_matches_imagenet_statistics():
    x = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    assert torch.allclose(imagenet_normalize(x), torch.zeros(1, 3, 2, 2), atol=1e-6)


def test_missing_torchvision_weights_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(BackboneWeightsMissing, match="fetch_torchvision_weights.py"):
        get_backbone("resnet18")
    # an explicit request for a random network is allowed
    assert get_backbone("resnet18", pretrained=False).pretrained is False


def test_unknown_backbone():
    with pytest.raises(ValueError, match="efficientnet_lite0"):
        get_backbone("vgg")
