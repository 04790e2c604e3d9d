"""anolearn: self-supervised image anomaly detection, built from scratch for a textbook.

Sub-packages: ``data`` (MVTec-layout datasets, the synthetic dataset, downloads),
``metrics`` (AUROC, AP, AUPRO, ...), ``backbones`` (pretrained feature extractors),
``methods`` (every method of the book behind one contract), ``filters`` (map smoothing).
The quick/full switch lives in :mod:`anolearn.config`.
"""
from .config import get_profile
from .device import describe_device, get_device
from .seed import make_generator, seed_everything

__version__ = "0.1.0"
__all__ = ["__version__", "describe_device", "get_device", "get_profile", "make_generator", "seed_everything"]
