"""What every forger returns: forged images and the mask of what was forged.

All forgers in :mod:`anolearn.forge` share one calling convention so that a method can
swap one for another with a single argument::

    out = forger(images, generator=g)   # images (B, 3, H, W) float in [0, 1]
    out.images   # (B, 3, H, W) float in [0, 1], equal to the input wherever masks == 0
    out.masks    # (B, 1, H, W) float in {0, 1}, 1 = forged ("anomalous") pixel

Masks follow the book's common convention, 1 = anomalous. AnoSeg's paper uses the opposite
one (its reference map is 1 on normal pixels); :attr:`Forged.normal_maps` gives that view.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Forged:
    """A batch of forged images and their masks.

    Attributes:
        images: ``(B, 3, H, W)`` float in [0, 1].
        masks: ``(B, 1, H, W)`` float in {0, 1}; 1 marks forged pixels. A sample the forger
            left normal has an all-zero mask.
        originals: ``(B, 3, H, W)`` the clean images the forgeries were made from, equal to
            ``images`` wherever ``masks == 0``: the forger's input, unless the forger also
            transformed the normal image (DRAEM's optional image rotation). A reconstruction
            method's target. None when the forger did not record it (then: the input).
    """

    images: torch.Tensor
    masks: torch.Tensor
    originals: torch.Tensor | None = None

    @property
    def labels(self) -> torch.Tensor:
        """``(B,)`` long: 1 if anything in the sample was forged, else 0."""
        return (self.masks.flatten(1).amax(dim=1) > 0).long()

    @property
    def normal_maps(self) -> torch.Tensor:
        """``(B, 1, H, W)``: AnoSeg's convention, 1 = normal pixel (``1 - masks``)."""
        return 1.0 - self.masks

    def to(self, device: torch.device | str) -> "Forged":
        originals = None if self.originals is None else self.originals.to(device)
        return Forged(self.images.to(device), self.masks.to(device), originals)
