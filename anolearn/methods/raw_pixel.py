"""Raw-pixel baseline: distance to the mean normal image.

The simplest detector one can write: average the normal training images into a mean
image ``mu`` (3, H, W); a test image's anomaly map is its squared difference from ``mu``,
averaged over the colour channels and smoothed,

    A(x)_{ij} = G_sigma * (1/3) sum_c (x_{cij} - mu_{cij})^2,        score(x) = mean_{ij} A(x)_{ij}.

It works only when normal images are aligned and identical up to noise. Real inspection
images vary in pose, phase and lighting, so ``mu`` is a blur and every normal image is
"far" from it: the baseline shows how much of a dataset pixel statistics alone can solve.
The optional ``standardize`` divides by the per-pixel standard deviation of the normal
images (a per-pixel z-score), which helps when some regions vary more than others.
"""
from __future__ import annotations

import torch

from ..filters import gaussian_blur
from .base import AnomalyMethod, Prediction, image_batches, register


@register("raw_pixel")
class RawPixelBaseline(AnomalyMethod):
    """Distance of each pixel to the mean normal image.

    Args:
        sigma: Gaussian smoothing of the map, in pixels.
        standardize: divide by the per-pixel standard deviation of normal images.
        batch_size: images per batch when fitting.
    """

    def __init__(self, sigma: float = 2.0, standardize: bool = False, batch_size: int = 32):
        super().__init__()
        self.sigma, self.standardize, self.batch_size = sigma, standardize, batch_size
        self.register_buffer("mean_image", torch.zeros(0))  # (3, H, W) after fit
        self.register_buffer("std_image", torch.zeros(0))

    @torch.no_grad()
    def fit(self, train, progress: bool = True, checkpoint=None, checkpoint_every=None) -> "RawPixelBaseline":
        """Average the normal images (one pass, seconds: ``checkpoint`` is accepted and not needed)."""
        # Running sums in float64 so the mean is exact however many images there are.
        total = total_sq = None
        n = 0
        for images in image_batches(train, self.batch_size):
            images = images.double()
            total = images.sum(0) if total is None else total + images.sum(0)
            total_sq = (images**2).sum(0) if total_sq is None else total_sq + (images**2).sum(0)
            n += images.shape[0]
        mean = total / n
        std = (total_sq / n - mean**2).clamp_min(0).sqrt()
        self.mean_image = mean.float()
        self.std_image = std.float().clamp_min(1e-3)
        return self

    def is_fitted(self) -> bool:
        return self.mean_image.numel() > 0

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> Prediction:
        self.check_fitted()
        if images.shape[-2:] != self.mean_image.shape[-2:]:
            raise ValueError(f"Images are {tuple(images.shape[-2:])} but the model was fitted at "
                             f"{tuple(self.mean_image.shape[-2:])}; use the same image_size.")
        diff = images - self.mean_image  # (B, 3, H, W)
        if self.standardize:
            diff = diff / self.std_image
        maps = gaussian_blur((diff**2).mean(1), self.sigma)  # (B, H, W)
        return Prediction(scores=maps.flatten(1).mean(1), maps=maps)
