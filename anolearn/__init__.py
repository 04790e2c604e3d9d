"""anolearn: self-supervised image anomaly detection, built from scratch for a textbook.

The package, roughly in the order the book uses it:

* :mod:`~anolearn.data` -- MVTec-layout datasets, the built-in synthetic dataset, downloads;
* :mod:`~anolearn.metrics` -- AUROC, AP, AUPRO, F1-max and the per-category report;
* :mod:`~anolearn.forge` -- forged anomalies, the training signal: Perlin noise, DRAEM,
  CutPaste, AnoSeg's hard augmentation, SGSF's saliency-guided forging, CutSwap;
* :mod:`~anolearn.saliency` -- saliency maps: spectral residual, LayerCAM, a foreground
  detector, k-means of saliency values;
* :mod:`~anolearn.nn` -- network blocks and losses: U-Net, SSIM, MS-GMS, focal loss, ResNet block;
* :mod:`~anolearn.backbones` -- pretrained feature extractors (EfficientNet-Lite0, ResNets);
* :mod:`~anolearn.masking` -- the grid masks of inpainting methods (RIAD, SSM);
* :mod:`~anolearn.methods` -- every method of the book behind one contract;
* :mod:`~anolearn.cli` -- the command line, ``python -m anolearn``;
* :mod:`~anolearn.assignments` -- automatic feedback for the book's assignments;
* small modules: :mod:`~anolearn.imageops` (image checks, luma and channel mean),
  :mod:`~anolearn.filters` (map smoothing), :mod:`~anolearn.viz` (figures),
  :mod:`~anolearn.config` (the quick/full profile switch), :mod:`~anolearn.device`,
  :mod:`~anolearn.seed` (seeds and generators), :mod:`~anolearn.paths` (where data lives),
  :mod:`~anolearn.results` (the committed benchmark results the chapters show).
"""
from .config import get_profile
from .device import describe_device, get_device
from .seed import make_generator, run_seed, seed_everything

__version__ = "0.1.0"
__all__ = ["__version__", "describe_device", "get_device", "get_profile", "make_generator", "run_seed",
           "seed_everything"]
