"""CutPaste / CutSwap with a partly fine-tuned backbone: only the last blocks train, and only they are saved."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from anolearn.backbones import get_backbone
from anolearn.methods import create_method, load_method

sys.path.insert(0, str(Path(__file__).parent))
from test_method_outputs import CUTPASTE  # noqa: E402
from tiny_data import smooth_images  # noqa: E402

SETTINGS = {**CUTPASTE, "encoder": "efficientnet_lite0", "finetune_blocks": 2, "steps": 2, "batch_size": 2,
            "patch_size": 32, "patch_stride": 32}


def eval_images() -> torch.Tensor:
    """``(3, 3, 64, 64)``: two normal images and one with a bright square (EfficientNet needs >= 64 px)."""
    x = smooth_images(3, 64, seed=1)
    x[2, :, 16:32, 16:32] = 1.0
    return x


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    return create_method("cutpaste", **SETTINGS).fit(smooth_images(4, 64, seed=0), progress=False)


def test_only_the_last_blocks_change(trained):
    pretrained = get_backbone("efficientnet_lite0", layers=(15,)).state_dict()
    changed = {k for k, v in trained.encoder.extractor.state_dict().items() if not torch.equal(v, pretrained[k])}
    assert changed, "the fine-tuned blocks did not train"
    assert all(k.startswith(("model._blocks.14.", "model._blocks.15.")) for k in changed), sorted(changed)[:5]


def test_the_checkpoint_holds_only_the_trained_blocks_and_reloads_exactly(trained, tmp_path):
    path = trained.save(tmp_path / "model.pt")
    state = torch.load(path, map_location="cpu", weights_only=True)["state"]
    backbone = [k for k in state if k.startswith("encoder.extractor.")]
    assert backbone and all(k.startswith(("encoder.extractor.model._blocks.14.", "encoder.extractor.model._blocks.15."))
                            for k in backbone)
    assert not any("running_mean" in k for k in backbone)  # BatchNorm statistics are the package's
    before = trained.predict(eval_images())
    after = load_method(path).predict(eval_images())
    assert torch.equal(before.scores, after.scores) and torch.equal(before.maps, after.maps)


def test_finetune_blocks_is_checked():
    with pytest.raises(ValueError, match="pretrained encoder"):
        create_method("cutpaste", **{**CUTPASTE, "finetune_blocks": 1})
    with pytest.raises(ValueError, match="between 1 and 16"):
        create_method("cutpaste", **{**SETTINGS, "finetune_blocks": 17})
