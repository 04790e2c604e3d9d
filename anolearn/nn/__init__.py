"""Building blocks shared by the reconstruction-based methods (RIAD, SSM, DRAEM, SGSF).

* :mod:`~anolearn.nn.unet`: a configurable U-Net with hooks for per-scale conditioning blocks.
* :mod:`~anolearn.nn.ssim`: SSIM map, score and loss (Gaussian window 11, sigma 1.5, per channel).
* :mod:`~anolearn.nn.msgms`: multi-scale gradient magnitude similarity, loss and anomaly map.
* :mod:`~anolearn.nn.focal`: the focal loss of DRAEM and SGSF.
* :mod:`~anolearn.nn.resnet_block`: ResNet's basic block (CutPaste/CutSwap and AnoSeg encoders).
* :mod:`~anolearn.nn.padding`: zero or mirrored borders for every convolution of a network.
"""
from .focal import focal_loss
from .msgms import (
    GMS_C,
    gms_map,
    gradient_magnitude,
    median_filter3,
    msgms_loss,
    msgms_map,
)
from .padding import PADDING_MODES, use_padding
from .resnet_block import BasicBlock
from .ssim import gaussian_window, ssim, ssim_loss, ssim_map
from .unet import DownBlock, UNet, UpBlock

__all__ = [
    "BasicBlock",
    "PADDING_MODES",
    "use_padding",
    "GMS_C",
    "DownBlock",
    "UNet",
    "UpBlock",
    "focal_loss",
    "gaussian_window",
    "gms_map",
    "gradient_magnitude",
    "median_filter3",
    "msgms_loss",
    "msgms_map",
    "ssim",
    "ssim_loss",
    "ssim_map",
]
