"""LayerCAM and Grad-CAM against pytorch-grad-cam (PyPI ``grad-cam``) on the same model and layer.

pytorch_grad_cam computes ``ReLU(sum_k ReLU(dy/dA) * A)`` (LayerCAM) or ``ReLU(sum_k mean(dy/dA) A)``
(Grad-CAM), min-max normalises, resizes with OpenCV (bilinear, half-pixel centres) and, for a single
target layer, min-max normalises again. Bilinear resizing is linear with weights summing to one, so
this equals our "upsample, then normalise": the maps must agree to float precision.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from anolearn.backbones import get_backbone, imagenet_normalize
from anolearn.saliency import LayerCAM, class_activation_maps, gradcam, layercam

pytorch_grad_cam = pytest.importorskip("pytorch_grad_cam")


@pytest.fixture(scope="module")
def backbone():
    return get_backbone("efficientnet_lite0", layers=(2, 4, 10, 15))


class _Normalised(nn.Module):
    """The classifier as pytorch_grad_cam sees it: images in [0, 1] -> logits."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(imagenet_normalize(x))


def _oracle(cls, backbone, layer, images, targets=None):
    module = dict(backbone.model.named_modules())[layer]
    cam = cls(model=_Normalised(backbone.model), target_layers=[module])
    cam.compute_input_gradient = True  # the backbone's weights are frozen: let gradients flow from the input
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    tg = None if targets is None else [ClassifierOutputTarget(int(t)) for t in targets]
    out = cam(input_tensor=images.clone(), targets=tg)
    cam.activations_and_grads.release()
    return torch.from_numpy(out)


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_layercam_matches_pytorch_grad_cam(backbone, level):
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(level))
    ours = layercam(backbone, images, levels=[level])[0][:, 0]
    ref = _oracle(pytorch_grad_cam.LayerCAM, backbone, backbone.layers[level], images)
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)


def test_gradcam_and_given_target_match(backbone):
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(7))
    targets = [1, 285]
    ours = gradcam(backbone, images, target=targets, levels=[2])[0][:, 0]
    ref = _oracle(pytorch_grad_cam.GradCAM, backbone, backbone.layers[2], images, targets)
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)
    lc = layercam(backbone, images, target=targets, levels=[1])[0][:, 0]
    ref_lc = _oracle(pytorch_grad_cam.LayerCAM, backbone, backbone.layers[1], images, targets)
    torch.testing.assert_close(lc, ref_lc, atol=1e-4, rtol=0)


def test_multilevel_shapes_targets_and_batching(backbone):
    images = torch.rand(3, 3, 48, 64, generator=torch.Generator().manual_seed(1))
    maps, target = class_activation_maps(backbone, images)
    assert len(maps) == 4 and all(m.shape == (3, 1, 48, 64) for m in maps)
    assert all(float(m.min()) >= 0 and float(m.max()) <= 1 for m in maps)
    with torch.no_grad():
        logits, _ = backbone.classify(images)
    assert torch.equal(target, logits.argmax(1))  # default: top-1 prediction
    chunked = layercam(backbone, images, batch_size=1)  # chunks of one = per-image maps
    for a, b in zip(maps, chunked):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    raw = layercam(backbone, images, levels=[3], size=(2, 2), normalize=False)[0]
    assert raw.shape == (3, 1, 2, 2) and float(raw.min()) >= 0
    assert all(p.grad is None for p in backbone.parameters())  # frozen weights untouched


def test_layercam_source_works_under_no_grad(backbone):
    cam = LayerCAM(backbone, levels=[0, 2])
    with torch.no_grad():
        maps = cam(torch.rand(2, 3, 32, 32))
        fused = cam.fused(torch.rand(2, 3, 32, 32))
    assert len(maps) == 2 and fused.shape == (2, 1, 32, 32)
    with pytest.raises(ValueError, match="out of range"):
        layercam(backbone, torch.rand(1, 3, 32, 32), levels=[4])
