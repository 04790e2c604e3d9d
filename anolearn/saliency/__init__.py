"""Saliency maps: where to look in an image, and where to forge.

Every map is ``(B, 1, H, W)`` in [0, 1], min-max normalised per image:

* :mod:`.spectral_residual` -- Hou and Zhang's model-free map (CVPR 2007), one FFT per batch;
* :mod:`.layercam` -- LayerCAM (and Grad-CAM) at any layer of a pretrained backbone, one map
  per level ("multilevel", as CutSwap uses them);
* :mod:`.foreground` -- a training-free stand-in for SGSF's salient-object detector (CPD), and
  :func:`as_saliency_source`, the convention that lets any callable be plugged in;
* :mod:`.cluster` -- batched k-means of saliency values (CutSwap's "cluster with the highest
  centroid").
"""
from .cluster import inertia, kmeans, quantile_init, range_init, top_cluster
from .common import minmax_normalize
from .foreground import (SALIENCY_SOURCES, ForegroundSaliency, SaliencySource, as_saliency_source,
                         foreground_saliency, otsu_foreground, otsu_threshold)
from .layercam import LayerCAM, class_activation_maps, gradcam, layercam
from .spectral_residual import SpectralResidual, spectral_residual

__all__ = [
    "SALIENCY_SOURCES", "ForegroundSaliency", "LayerCAM", "SaliencySource", "SpectralResidual",
    "as_saliency_source", "class_activation_maps", "foreground_saliency", "gradcam", "inertia", "kmeans",
    "layercam", "minmax_normalize", "otsu_foreground", "otsu_threshold", "quantile_init", "range_init",
    "spectral_residual", "top_cluster",
]
