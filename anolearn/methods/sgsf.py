"""SGSF: segment anomalies by comparing with features of a *similar normal image*.

Xing, Sun and Li, "Self-Supervised Guided Segmentation Framework for Unsupervised Anomaly
Detection", arXiv 2209.12440, 2022; journal version "Normal Image Guided Segmentation
Framework" (NIGSF), Xing, Sun, Zeng and Li, IEEE TCSVT 34(6), 2024. No code was published.

SGSF is DRAEM (:mod:`.draem`) plus two ideas:

1. **Saliency-guided forgeries (SAM)**, :mod:`anolearn.forge.sam`: Perlin blobs placed inside
   the salient object, forged : normal = 3 : 1.
2. **Normal-image guidance.** For every image ``x`` a *contrast set* of the ``n = 4`` most
   similar normal training images is retrieved (:mod:`.retrieval`). A **normal feature
   extractor** ``E`` is trained to reconstruct a normal image ``c`` drawn from that set, and its
   multi-scale decoder features ``g_l(c)`` are fused into the skips of a segmentation U-Net
   ``S`` that reads ``x`` (:mod:`.sgsf_nets`). ``S`` sees "what a normal image like this looks
   like, at every scale" and segments what differs. The loss, with ``lambda = 1``, ``gamma = 2``:

       L = lambda (||c - E(c)||^2 + 1 - SSIM(c, E(c))) + Focal(S(x_forged, g(c)), M).

   At test time ``c`` is the most similar training image (``test_guidance="top1"``) or the
   guidance features are averaged over the whole contrast set (``"mean"``); the paper's choice
   is unknown to us. The image score is the **maximum of the map** (not DRAEM's filtered max).

**Provenance.** From the journal version (via a third-party reading): contrast set by cosine
similarity, top-n with n = 4; extractor trained by reconstruction (L2 + SSIM), decoder features as
guidance, concatenated per scale and fused by convolution; SAM with saliency from CPD; DTD
textures; forged : normal = 3 : 1; focal loss gamma = 2, lambda = 1; batch 16, Adam 1e-4, lr x0.1
at 50/70/90 % of the iterations; 256 x 256; image score = max of the map. **Ours:** the retrieval
features (EfficientNet-Lite0, pooled to a 4 x 4 grid), the network structure (DRAEM's networks,
:mod:`.sgsf_nets`), the number of iterations (the paper's is unknown; the full profile uses
DRAEM's 700 epochs), the saliency source (a training-free foreground stand-in for CPD,
:func:`anolearn.saliency.foreground_saliency`; any callable can be passed), training jointly
(the focal loss also reaches ``E``), test-time guidance as a parameter, and the SAM details
(:mod:`anolearn.forge.sam`).

**Ablations** (constructor arguments): ``forging="perlin"`` (DRAEM's masks anywhere, same 3 : 1
ratio), ``guidance=False`` (no extractor: a U-Net on the image alone), and
``extractor="denoising"``: ``E`` reconstructs the clean image from the *forged* one, as the arXiv
version's "noise-free" module apparently did, so the guidance comes from the image under test
and can carry the anomaly into the comparison (the paper reports it worse).

**Caching and GPU.** Retrieval features, contrast sets and saliency maps are computed once per
:meth:`fit`; the training images are kept as a ``uint8`` buffer (saved with the model) so that
test images can be guided. Mixed precision on CUDA, forging on the device, as DRAEM.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..nn.focal import focal_loss
from ..nn.ssim import ssim_loss
from .base import register, resize
from .draem import DRAEM
from .draem_nets import DraemNet, draem_init
from .retrieval import (
    contrast_sets,
    cosine_topk,
    retrieval_backbone,
    retrieval_features,
)
from .sgsf_nets import GuidedSegmenter, guide_widths

FORGINGS = ("sam", "perlin")
EXTRACTORS = ("reconstruction", "denoising")
TEST_GUIDANCE = ("top1", "mean")


@register("sgsf")
class SGSF(DRAEM):
    """SGSF / NIGSF with normal-image guidance.

    Args:
        ext_width, ext_depth: normal feature extractor (DRAEM's reconstructive net: 128, 4).
        seg_width, seg_depth: segmentation U-Net (DRAEM's discriminative net: 64, 5).
        epochs, steps, batch_size, lr, lr_milestones, lr_gamma: schedule (paper: batch 16, Adam 1e-4,
            x0.1 at 0.5/0.7/0.9; epochs ours).
        input_size, train_crop: as :class:`~anolearn.methods.draem.DRAEM`.
        gamma: focal exponent (2); lam: weight ``lambda`` of the extractor's loss (1).
        n_contrast: size ``n`` of the contrast sets (4).
        test_guidance: ``"top1"`` or ``"mean"`` (average of the guidance over the contrast set).
        guidance: use normal-image guidance (False: the ablation without it).
        extractor: ``"reconstruction"`` (a similar normal image in, itself out) or ``"denoising"``
            (the forged image in, the clean image out).
        forging: ``"sam"`` (saliency-guided) or ``"perlin"`` (DRAEM's masks anywhere).
        saliency: SAM's saliency source (a name of :data:`anolearn.saliency.SALIENCY_SOURCES`).
        p_normal, beta: forger settings (forged : normal = 3 : 1; texture opacity U(0.1, 1)).
        score_filter: mean filter before the maximum (1 = none, the paper's max of ``O``).
        retrieval_grid, retrieval_size: retrieval features (:func:`.retrieval.retrieval_features`).
        pretrained: use ImageNet weights for retrieval (False only for tests without the weights).
        source, conv_padding, amp, log_every, seed: as DRAEM.
    """

    setting_attributes = {"extractor": "extractor_mode"}  # ``self.extractor`` is the network

    def __init__(self, ext_width: int = 128, ext_depth: int = 4, seg_width: int = 64, seg_depth: int = 5,
                 epochs: int | None = 700, steps: int = 1000, batch_size: int = 16, lr: float = 1e-4,
                 lr_milestones: tuple[float, ...] = (0.5, 0.7, 0.9), lr_gamma: float = 0.1,
                 input_size: int | None = 256, train_crop: int | None = None, gamma: float = 2.0, lam: float = 1.0,
                 n_contrast: int = 4, test_guidance: str = "top1", guidance: bool = True,
                 extractor: str = "reconstruction", forging: str = "sam", saliency: str = "foreground",
                 p_normal: float = 0.25, beta: tuple[float, float] = (0.1, 1.0), score_filter: int = 1,
                 retrieval_grid: int = 4, retrieval_size: int | None = 224, pretrained: bool = True,
                 source: str = "auto", conv_padding: str = "zeros", amp: bool = True, log_every: int = 10,
                 seed: int = 0):
        for name, value, allowed in (("test_guidance", test_guidance, TEST_GUIDANCE),
                                     ("extractor", extractor, EXTRACTORS), ("forging", forging, FORGINGS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}.")
        if n_contrast < 1:
            raise ValueError(f"n_contrast must be >= 1, got {n_contrast}.")
        self.ext_width, self.ext_depth, self.lam, self.n_contrast = ext_width, ext_depth, lam, n_contrast
        self.test_guidance, self.guidance, self.extractor_mode = test_guidance, guidance, extractor
        self.forging, self.saliency = forging, saliency
        self.retrieval_grid, self.retrieval_size, self.pretrained = retrieval_grid, retrieval_size, pretrained
        super().__init__(rec_width=ext_width, rec_depth=ext_depth, seg_width=seg_width, seg_depth=seg_depth,
                         epochs=epochs, steps=steps, batch_size=batch_size, lr=lr, lr_milestones=lr_milestones,
                         lr_gamma=lr_gamma, input_size=input_size, train_crop=train_crop, gamma=gamma,
                         score_filter=score_filter, p_normal=p_normal, beta=beta, p_rotate=0.0, source=source,
                         conv_padding=conv_padding, amp=amp, log_every=log_every, seed=seed)
        # Caches filled by fit(): training images (uint8), their retrieval features and contrast sets.
        self.register_buffer("bank_images", torch.zeros(0, 3, 1, 1, dtype=torch.uint8))
        self.register_buffer("bank_features", torch.zeros(0, 1))
        self.register_buffer("contrast", torch.zeros(0, 1, dtype=torch.long))
        self._saliency_maps = None

    def build_networks(self) -> None:
        self.extractor = DraemNet(3, 3, self.rec_width, self.rec_depth, skips=False) if self.guidance else None
        widths = guide_widths(self.extractor) if self.guidance else {}
        self.segmenter = GuidedSegmenter(self.seg_width, self.seg_depth, widths)
        draem_init(self)

    @property
    def forger(self):
        if self._forger is None:
            if self.forging == "sam":
                from ..forge.sam import SaliencyAugment

                self._forger = SaliencyAugment(saliency=self.saliency, source=self.source, p_normal=self.p_normal,
                                               beta=self.beta)
            else:
                from ..forge.draem import DraemForger

                self._forger = DraemForger(source=self.source, p_normal=self.p_normal, beta=self.beta)
        return self._forger

    # ------------------------------------------------------------------ retrieval
    def retrieval_features(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, D)`` unit-length retrieval features."""
        backbone = retrieval_backbone(pretrained=self.pretrained, device=images.device)
        return retrieval_features(images, backbone, self.retrieval_grid, self.retrieval_size)

    @torch.no_grad()
    def prepare(self, images: torch.Tensor, progress: bool) -> None:
        """Cache once per training set: the images (uint8), retrieval features, contrast sets, saliency."""
        if self.guidance and self.extractor_mode == "reconstruction":
            self.bank_images = (images * 255).round().clamp(0, 255).to(torch.uint8)
            self.bank_features = self.retrieval_features(images)
            self.contrast = contrast_sets(self.bank_features, self.n_contrast)
        self._saliency_maps = None
        if self.forging == "sam":
            source = self.forger.saliency
            self._saliency_maps = torch.cat([source(chunk) for chunk in images.split(32)]).float()  # (N, 1, s, s)

    def contrast_for(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Retrieve the most similar training images of test images: ``(similarities, indices)``, each
        ``(B, k)`` with ``k = 1`` (``"top1"``) or ``n_contrast`` (``"mean"``)."""
        k = 1 if self.test_guidance == "top1" else min(self.n_contrast, self.bank_features.shape[0])
        return cosine_topk(self.retrieval_features(images), self.bank_features, k)

    # ------------------------------------------------------------------ training
    def training_losses(self, images: torch.Tensor, idx: torch.Tensor, window, generator) -> dict[str, torch.Tensor]:
        i, j, c = window
        x = images[idx][..., i:i + c, j:j + c]
        if self.forging == "sam":
            forged = self.forger(x, generator, saliency=self._saliency_maps[idx][..., i:i + c, j:j + c])
        else:
            forged = self.forger(x, generator=generator)
        zero = x.new_zeros(())
        parts = {"l2": zero, "ssim": zero}
        guide = None
        if self.guidance:
            if self.extractor_mode == "reconstruction":
                pick = torch.randint(self.contrast.shape[1], (x.shape[0],), generator=generator, device=x.device)
                e_in = e_target = images[self.contrast[idx, pick]][..., i:i + c, j:j + c]  # similar normal images
            else:
                e_in, e_target = forged.images, x  # denoising: forged in, clean out
            with self.autocast():
                rec, guide = self.extractor(e_in, return_features=True)
            rec = rec.float()
            parts = {"l2": F.mse_loss(rec, e_target), "ssim": ssim_loss(rec, e_target)}
        with self.autocast():
            logits = self.segmenter(forged.images, guide).float()
        parts["focal"] = focal_loss(logits, forged.masks, gamma=self.gamma)
        parts["loss"] = self.lam * (parts["l2"] + parts["ssim"]) + parts["focal"]
        return parts

    # ------------------------------------------------------------------ inference
    def segment(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Anomaly probability ``(B, 1, s, s)``; with guidance also the guide image and its reconstruction."""
        out = {}
        guide = None
        if self.guidance:
            if self.extractor_mode == "reconstruction":
                _, idx = self.contrast_for(x)  # (B, k)
                b, k = idx.shape
                c = self.bank_images[idx.flatten()].float() / 255  # (B k, 3, s', s')
                c = resize(c, x.shape[-2:])
                with self.autocast():
                    rec, feats = self.extractor(c, return_features=True)
                guide = {lv: f.float().view(b, k, *f.shape[1:]).mean(1) for lv, f in feats.items()}
                out["guide"] = c.view(b, k, *c.shape[1:])[:, 0]
                out["rec"] = rec.float().view(b, k, *rec.shape[1:])[:, 0]
            else:
                with self.autocast():
                    rec, guide = self.extractor(x, return_features=True)
                out["rec"] = rec.float()
        with self.autocast():
            logits = self.segmenter(x, guide).float()
        out["anomaly"] = logits.softmax(1)[:, 1:]
        return out


__all__ = ["EXTRACTORS", "FORGINGS", "SGSF", "TEST_GUIDANCE"]
