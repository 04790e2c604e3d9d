"""Forged anomalies: the training signal of self-supervised anomaly detection.

Every forger takes a batch of normal images ``(B, 3, H, W)`` in [0, 1] and a
``torch.Generator`` (on the images' device) and returns a :class:`Forged`: the forged
images, their masks (1 = forged pixel, exactly 0 where the image is untouched) and the clean
originals. Each comes as a plain function and as a small callable class with its settings:

* :mod:`.perlin` -- batched Perlin noise and DRAEM's thresholded masks;
* :mod:`.draem` -- DRAEM: a texture blended into the image inside a Perlin blob
  (:func:`draem_forge`, :class:`DraemForger`), with anomaly sources from :mod:`.sources`
  (DTD when fetched, else built-in offline textures);
* :mod:`.augment` -- DRAEM's ten source augmentations, batched;
* :mod:`.fast` -- the DRAEM forger's fast engine: the same forgeries, computed only inside
  the masks (``engine="fast"``);
* :mod:`.cutpaste` -- CutPaste, CutPaste-Scar and their union (Li et al., CVPR 2021);
* :mod:`.hard_augment` -- AnoSeg's CutPaste from a hard-augmented copy (Song et al., 2021);
* :mod:`.sam` -- SGSF's Saliency Augmentation Module: Perlin forgeries inside the salient region;
* :mod:`.cutswap` -- CutSwap: two similar salient patches swapped (Qin et al.);
* helpers: :mod:`.color` (HSV and batched ColorJitter), :mod:`.geometry` (rotation),
  :mod:`.draws` (random numbers from a generator), :mod:`.result` (:class:`Forged`).
"""
from .augment import DRAEM_AUGMENTATIONS, Augmentation, draem_augment
from .color import color_jitter
from .cutpaste import (
    CutPaste,
    CutPasteScar,
    CutPasteUnion,
    cutpaste,
    cutpaste_3way,
    cutpaste_scar,
    cutpaste_union,
)
from .cutswap import CutSwap, cutswap, swap_patches
from .draem import DraemForger, draem_forge
from .geometry import rotate
from .hard_augment import HardAugment, hard_augment, hard_augmentations
from .perlin import perlin_mask, perlin_noise
from .result import Forged
from .sam import SaliencyAugment, saliency_perlin_masks, sam_forge
from .sources import (
    DTDSource,
    TensorSource,
    TextureSource,
    dtd_available,
    resolve_source,
)

__all__ = [
    "DRAEM_AUGMENTATIONS", "Augmentation", "CutPaste", "CutPasteScar", "CutPasteUnion", "CutSwap", "DTDSource",
    "DraemForger", "Forged", "HardAugment", "SaliencyAugment", "TensorSource", "TextureSource", "color_jitter",
    "cutpaste", "cutpaste_3way", "cutpaste_scar", "cutpaste_union", "cutswap", "draem_augment", "draem_forge",
    "dtd_available", "hard_augment", "hard_augmentations", "perlin_mask", "perlin_noise", "resolve_source", "rotate",
    "saliency_perlin_masks", "sam_forge", "swap_patches",
]
