"""SGSF's networks: a normal-feature extractor and a segmentation U-Net that reads its features.

Our reconstruction of the journal version (NIGSF, Xing, Sun, Zeng and Li, IEEE TCSVT 2024)
from a third-party reading of it; no code exists. What the reading states: the normal
feature extractor is trained by *reconstruction* (L2 + SSIM) and its **multi-scale decoder
features** are the guidance; the segmentation network concatenates the encoder features of the
image under test with the guidance features **at multiple scales, fused by convolution**; the
ablation against DRAEM uses "the same U-Net structure". Everything concrete below is ours:

* **Extractor** = DRAEM's reconstructive network (:class:`~anolearn.methods.draem_nets.DraemNet`,
  no skips: an autoencoder cannot copy its input through a skip, so its decoder features must
  carry what a normal image of this kind looks like). Guidance = the decoder features at every
  level ``l`` (bottleneck and every decoder block), ``g_l: (B, C^e_l, H / 2^l, W / 2^l)``.
* **Segmenter** = DRAEM's discriminative U-Net on the image alone (3 channels, not DRAEM's
  image + reconstruction). At each level ``l`` where guidance exists, the encoder features are
  replaced by ``fuse_l([e_l, g_l])`` (3 x 3 conv + BN + ReLU back to ``C^s_l`` channels) before the
  decoder uses them as skip (and, at the bottleneck, as its input)::

      x ─ enc_0 ─ [e_0 ⊕ g_0] fuse_0 ─────────────── concat ─ dec ─ head ─ logits (B, 2, H, W)
            └ enc_1 ─ [e_1 ⊕ g_1] fuse_1 ─── concat ─ dec ┘
                  └ ... bottleneck ⊕ g_depth ┘

  With ``guided=False`` the fusion is skipped: a plain U-Net on the image (the "no guidance"
  ablation, a DRAEM without reconstruction input).
"""
from __future__ import annotations

import torch
from torch import nn

from .draem_nets import DraemNet


class GuidedSegmenter(DraemNet):
    """U-Net ``(B, 3, H, W) -> (B, 2, H, W)`` whose skips are fused with guidance features.

    Args:
        base_width, depth: as :class:`~anolearn.methods.draem_nets.DraemNet`.
        guide_widths: ``{level: channels}`` of the guidance features (empty or None = no guidance).
    """

    def __init__(self, base_width: int = 64, depth: int = 5, guide_widths: dict[int, int] | None = None):
        super().__init__(3, 2, base_width, depth, skips=True)
        self.guide_levels = sorted(lv for lv in (guide_widths or {}) if lv <= depth)
        self.fuse = nn.ModuleDict({
            str(lv): nn.Sequential(nn.Conv2d(self.widths[lv] + guide_widths[lv], self.widths[lv], 3, padding=1),
                                   nn.BatchNorm2d(self.widths[lv]), nn.ReLU(inplace=True))
            for lv in self.guide_levels})

    def forward(self, x: torch.Tensor, guidance: dict[int, torch.Tensor] | None = None) -> torch.Tensor:
        """``x (B, 3, H, W)``, ``guidance {level: (B, C_l, H / 2^l, W / 2^l)}`` -> logits ``(B, 2, H, W)``."""
        feats = self.encode(x)
        if self.guide_levels:
            if guidance is None:
                raise ValueError("This segmenter was built with guidance; pass the guidance features.")
            for lv in self.guide_levels:
                g = guidance[lv]
                if g.shape[-2:] != feats[lv].shape[-2:] or g.shape[0] != x.shape[0]:
                    raise ValueError(f"Guidance at level {lv} is {tuple(g.shape)}, the encoder's is "
                                     f"{tuple(feats[lv].shape)}.")
                feats[lv] = self.fuse[str(lv)](torch.cat([feats[lv], g.to(feats[lv].dtype)], 1))
        return self.decode(feats)[0]


def guide_widths(extractor: DraemNet) -> dict[int, int]:
    """``{level: channels}`` of an extractor's decoder features (the bottleneck and each decoder level)."""
    return {lv: extractor.widths[lv] for lv in range(extractor.depth + 1)}


__all__ = ["GuidedSegmenter", "guide_widths"]
