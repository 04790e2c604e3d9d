"""SSM: self-supervised masking with a mask-aware network and progressive mask refinement.

Huang, Xu, Wang, Wang and Zhang, "Self-Supervised Masking for Unsupervised Anomaly Detection
and Localization", IEEE Transactions on Multimedia 25, 4426-4438, 2023 (arXiv 2205.06568);
official code ``MediaBrain-SJTU/SSM`` (Retinal-OCT only; MIT licence). 98.3 % image AUROC on
Retinal-OCT, 93.9 % on MVTec AD (abstract).

SSM is RIAD (:mod:`anolearn.methods.riad`) with three changes.

1. **The network knows the mask.** Each training image gives triplets (masked image, mask,
   image); the network (:mod:`anolearn.methods.ssm_nets`) reads the masked image *and* the mask,
   uses the mask at every decoder scale, and has a 4-channel head: the restored image ``y_i``
   and a predicted mask ``m_i``. With complementary grid masks ``M_i`` (``k`` in {2, 4, 8})
   and ``x_hat = sum_i y_i (1 - M_i)``, the loss is

       L = w_l2 ||x - x_hat||^2 + w_gms L_MSGMS(x, x_hat) + w_ssim (1 - SSIM(x, x_hat)) + w_mask sum_i ||m_i - M_i||^2.

2. **Progressive refinement at test time.** The first pass scores the image as RIAD does (for
   each ``k``: three fixed masks, MS-GMS map, weighted sum over ``k``, Gaussian blur). Where the
   map is confidently normal (below a threshold ``tau``), there is no reason to keep hiding the
   image: every ``b x b`` block (``b = 8`` at 128 px) whose fraction of confidently normal pixels
   exceeds ``ratio = 0.8`` is *uncovered* -- made visible in every mask -- and the image is scored
   again. The masks shrink onto the suspicious regions, the network sees more true context
   around them, and uncovered pixels are copied from the input (zero error). ``T`` passes in all;
   ``T = 2`` (one refinement) is the official setting. Uncovered blocks stay uncovered (the
   uncovered area never shrinks; for ``T = 2`` this is the code's rule exactly).

3. **Image score.** The official ``test.py`` adds two per-image numbers, each min-max normalised
   over the test set: the maximum of the anomaly map and the mean squared error of the final
   reconstruction, ``s = norm(max A) + norm(MSE)``.

The code, where we follow it and where we do not (``faithful=True`` restores its inference,
:func:`official_image_scores` its score normalisation):

* **Score normalisation.** Min-max over the test set uses no labels but does use the test
  images' statistics, and a deployed detector scores one image at a time. By default
  :meth:`SSM.fit` holds out ``val_fraction`` of the normal training images (at most 256), and
  the combined score standardises each term with their mean and standard deviation:
  ``s = (max A - mu_A) / sd_A + (MSE - mu_MSE) / sd_MSE``. :func:`official_image_scores`
  computes the code's test-set version from a whole test set's maps and MSEs, for comparison.
  ``image_score="max"`` makes :meth:`SSM.predict` return ``max A`` alone; every
  :class:`SSMPrediction` carries both (``score_max``, ``score_combined``) and ``mse``.
* **Smoothing.** ``test.py`` runs with batch size 1 and blurs ``score.squeeze()`` row by row:
  a 1-D Gaussian along each row (``sigma = 7``), not the 2-D blur its validation code applies.
  Default: 2-D; ``smoothing="row1d"`` is the code's.
* **Map units and threshold.** The code's map is ``sum_k (A_k - 0.75) / N_k^2`` (``N_k = 128 / k``
  cells per side) and a pixel is confidently normal when ``255 * map <= -0.96``. That threshold
  only makes sense at 128 px with ``k`` in {2, 4, 8}. We weight the per-``k`` maps by ``1 / N_k^2``
  *normalised to sum to 1* (``k_weights="area"``) and keep the map in MS-GMS units; the same
  threshold then reads ``tau = 0.75 - 0.96 / (255 * sum_k N_k^-2) = 0.0157`` and stays meaningful
  at any size (:data:`OFFICIAL_TAU`). Same ranking as the code's map (an affine change).
* **Uncovered pixels.** The code detects uncovered pixels by ``x_hat == 0`` and copies the input
  there, in the last pass only (a restored pixel that is exactly 0 would be copied too; for
  ``T > 2`` the middle passes would score uncovered pixels against 0). We copy the input where
  every mask is visible, in every pass.
* **Borders of MS-GMS** and the **encoder input** (the code's encoder ignores the mask channel):
  see :mod:`anolearn.nn.msgms` and :mod:`anolearn.methods.ssm_nets`.
* **Checkpoint selection.** The code's ``train.py`` keeps the epoch with the best *test-set*
  image AUROC; we train a fixed schedule and never look at the test set (no faithful variant).
* Training draws independent masks per image and runs the three passes as one batch (see RIAD).
  Test masks come from a ``torch.Generator`` seeded like the code (``test_seed + t``), so they
  follow the code's rule but are not the same cells as its NumPy draws.

Official settings (``benchmarks/ssm_retinal_oct.py``; the full profile keeps them but for the
image size, its 256 px, and the number of epochs, see ``anolearn/config.py``): 128 x 128, batch 32, Adam (lr 1e-4, weight decay 1e-5),
50 epochs with the lr divided by 10 at epochs 15, 30 and 45, all loss weights 1 (the released
checkpoint's folder name suggests ``w_mask = 0.01``), ``T = 2``, ``ratio = 0.8``, ``sigma = 7``,
test seed 8.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.utils.data import Subset

from ..masking import cells_to_pixels, compose, grid_shape
from ..nn.msgms import msgms_map
from ..seed import make_generator
from .base import Prediction, image_batches, register
from .riad import RIAD, smooth_maps
from .ssm_nets import SSMNet

OFFICIAL_THRESHOLD = 0.96  # test.py --threshold: confidently normal where 255 * map <= -0.96 (code's units)
# The same threshold in our units at 128 px, k in {2, 4, 8}: sum_k N_k^-2 = (1 + 4 + 16) / 4096.
OFFICIAL_TAU = 0.75 - OFFICIAL_THRESHOLD * 4096 / (255 * 21)
MAX_CALIBRATION = 256  # held-out normal images used for the score statistics
IMAGE_SCORES = ("combined", "max")


@dataclass
class SSMPrediction(Prediction):
    """:class:`Prediction` plus the pieces of SSM's image score, all ``(B,)``.

    ``score_max``: maximum of the anomaly map; ``mse``: mean squared error of the final
    reconstruction; ``score_combined``: both standardised with held-out normal statistics and
    added. ``scores`` is one of the two, chosen by ``SSM(image_score=...)``.
    """

    score_max: torch.Tensor | None = None
    score_combined: torch.Tensor | None = None
    mse: torch.Tensor | None = None


@dataclass
class RefinementPass:
    """Everything one refinement pass computed (for figures), for a batch of ``B`` images.

    Attributes:
        t: pass index (0 = no refinement yet).
        uncovered: ``(B, 1, H, W)`` 1 where the image was visible in every mask during this pass.
        masks: ``{k: (n, B, 1, H, W)}`` the masks used (1 = visible).
        x_hat: ``{k: (B, 3, H, W)}`` composed reconstructions.
        raw_map: ``(B, H, W)`` the weighted sum over ``k`` before smoothing.
        map: ``(B, H, W)`` the smoothed anomaly map of this pass.
        mse: ``(B,)`` mean over ``k`` of the reconstruction's mean squared error.
        confident: ``(B, 1, H, W)`` pixels judged confidently normal (None in the last pass).
    """

    t: int
    uncovered: torch.Tensor
    masks: dict[int, torch.Tensor] = field(repr=False)
    x_hat: dict[int, torch.Tensor] = field(repr=False)
    raw_map: torch.Tensor = field(repr=False)
    map: torch.Tensor = field(repr=False)
    mse: torch.Tensor = field(repr=False)
    confident: torch.Tensor | None = field(default=None, repr=False)


def official_image_scores(maps: torch.Tensor, mse: torch.Tensor) -> torch.Tensor:
    """The official code's image score over a whole test set (uses test-set statistics, no labels).

    ``maps`` are min-max normalised over all pixels of all images, each image's maximum is taken;
    the MSEs are min-max normalised over the images; the sum is min-max normalised again.

    Args:
        maps: ``(N, H, W)`` SSM anomaly maps of the test set.
        mse: ``(N,)`` the matching :attr:`SSMPrediction.mse`.

    Returns:
        ``(N,)`` scores in [0, 1].
    """
    def minmax(v: torch.Tensor) -> torch.Tensor:
        span = v.max() - v.min()
        return (v - v.min()) / span if span > 0 else torch.zeros_like(v)

    maps, mse = maps.double(), mse.double()
    return minmax(minmax(maps).flatten(1).amax(1) + minmax(mse)).float()


@register("ssm")
class SSM(RIAD):
    """Self-supervised masking (RIAD + mask-aware network + progressive refinement).

    Args:
        ks: cell sizes (2, 4, 8 as the code).
        n_masks: complementary masks per cell size.
        base_width, depth: the network (64, 4 as the code).
        encoder_mask: also feed the mask to the encoder (see :mod:`~anolearn.methods.ssm_nets`);
            None = yes, unless ``faithful``.
        steps, epochs, batch_size, lr, weight_decay, lr_milestones, lr_gamma: training schedule
            (``lr_milestones`` as fractions of the run; the code's epochs 15/30/45 of 50 are
            0.28, 0.58, 0.88 because the lr changes at the *start* of those epochs).
        w_l2, w_gms, w_ssim, w_mask: loss weights.
        refine_steps: number of passes ``T`` (1 = no refinement, as RIAD; 2 = the code).
        ratio: a block is uncovered when more than this fraction of its pixels is confidently normal.
        threshold: confidently normal means ``map <= threshold``; None = :data:`OFFICIAL_TAU`
            (faithful: the code's ``255 * map <= -0.96``, and ``threshold`` replaces 0.96).
        block: side of the uncovering blocks in pixels; None = ``min(H, W) // 16`` (8 at 128 px).
        sigma, smoothing: map smoothing (``"gaussian"`` 2-D; ``"row1d"`` the code's).
        k_weights: ``"area"`` (the code's ``1 / N_k^2``, normalised) or ``"uniform"``.
        image_score: what ``predict(...).scores`` holds: ``"combined"`` or ``"max"``.
        val_fraction: share of the normal training images held out to calibrate the combined score
            (at most 256; 0 = calibrate on up to 256 training images instead).
        faithful: reproduce the official code's inference: ``smoothing="row1d"``, MS-GMS borders
            as the code, the code's map units and threshold, uncovered pixels found by
            ``x_hat == 0`` in the last pass; and, unless ``encoder_mask`` is given, its network.
            ``SSM(faithful=True, encoder_mask=True)`` runs the code's inference on weights trained
            with our default network. (The test-set score normalisation is :func:`official_image_scores`.)
        faithful_gms: only the MS-GMS border handling of the code.
        test_seed: masks of pass ``t`` are drawn from ``test_seed + t`` (8 as the code).
        train_crop, pad, amp, num_workers, seed: see :class:`~anolearn.methods.riad.RIAD`.
    """

    def __init__(self, ks: tuple[int, ...] = (2, 4, 8), n_masks: int = 3, base_width: int = 64, depth: int = 4,
                 encoder_mask: bool | None = None, steps: int = 1000, epochs: int | None = None, batch_size: int = 32,
                 lr: float = 1e-4, weight_decay: float = 1e-5, lr_milestones: tuple[float, ...] = (0.28, 0.58, 0.88),
                 lr_gamma: float = 0.1, w_l2: float = 1.0, w_gms: float = 1.0, w_ssim: float = 1.0,
                 w_mask: float = 1.0, refine_steps: int = 2, ratio: float = 0.8, threshold: float | None = None,
                 block: int | None = None, sigma: float = 7.0, smoothing: str = "gaussian", k_weights: str = "area",
                 image_score: str = "combined", val_fraction: float = 0.1, faithful: bool = False,
                 faithful_gms: bool = False, train_crop: int | None = None, pad: int = 0, test_seed: int = 8,
                 amp: bool = True, num_workers: int = 0, seed: int = 0):
        if refine_steps < 1:
            raise ValueError(f"refine_steps (T) must be >= 1, got {refine_steps}.")
        if image_score not in IMAGE_SCORES:
            raise ValueError(f"image_score must be one of {IMAGE_SCORES}, got {image_score!r}.")
        if not 0 <= val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}.")
        if faithful:  # the official inference, as a preset
            smoothing, faithful_gms, k_weights = "row1d", True, "area"
        if encoder_mask is None:  # the network: the code's (mask only in the mask blocks) when faithful
            encoder_mask = not faithful
        self.encoder_mask, self.w_mask = encoder_mask, w_mask
        self.refine_steps, self.ratio, self.threshold, self.block = refine_steps, ratio, threshold, block
        self.image_score, self.val_fraction, self.faithful = image_score, val_fraction, faithful
        super().__init__(ks=ks, n_masks=n_masks, base_width=base_width, depth=depth, up_mode="upsample", steps=steps,
                         epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                         lr_milestones=lr_milestones, lr_gamma=lr_gamma, w_l2=w_l2, w_gms=w_gms, w_ssim=w_ssim,
                         sigma=sigma, smoothing=smoothing, k_weights=k_weights, faithful_gms=faithful_gms,
                         train_crop=train_crop, pad=pad, test_seed=test_seed, amp=amp, num_workers=num_workers, seed=seed)
        # [mean, std] of (max of map, MSE) on held-out normal images, set by fit()
        self.register_buffer("calibration", torch.zeros(0))

    def build_net(self) -> torch.nn.Module:
        return SSMNet(self.base_width, self.depth, encoder_mask=self.encoder_mask)

    # ------------------------------------------------------------------ network and loss
    def restore(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """All ``n`` passes as one batch.

        Args:
            images: ``(B, 3, H, W)``; masks: ``(n, B, 1, H, W)`` or ``(n, 1, 1, H, W)``, 1 = visible.

        Returns:
            restored images ``(n, B, 3, H, W)`` and predicted masks ``(n, B, 1, H, W)``, float32.
        """
        n, b = masks.shape[0], images.shape[0]
        masks = masks.expand(n, b, *masks.shape[2:])
        x4 = torch.cat([images[None] * masks, masks], 2).flatten(0, 1)  # (n B, 4, H, W)
        with self.autocast():
            y, m = self.net(x4)
        return y.float().view(n, b, *y.shape[1:]), m.float().view(n, b, *m.shape[1:])

    def inpaint(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return self.restore(images, masks)[0]

    def training_loss(self, x: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """RIAD's loss plus ``w_mask * sum_i MSE(m_i, M_i)`` (``"mask"`` in the returned dict)."""
        y, m = self.restore(x, masks)
        parts = self.reconstruction_losses(x, compose(y, masks))
        parts["mask"] = ((m - masks) ** 2).flatten(1).mean(1).sum()  # sum over the n passes of the mean
        parts["loss"] = parts["loss"] + self.w_mask * parts["mask"]
        return parts

    # ------------------------------------------------------------------ refinement
    def block_size(self, size: tuple[int, int]) -> int:
        """Side of the uncovering blocks: ``block`` or ``min(H, W) // 16``."""
        return self.block or max(1, min(size) // 16)

    def to_official_units(self, maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Our area-weighted map -> the code's ``sum_k (A_k - 0.75) / N_k^2`` (an affine map)."""
        total = sum(1.0 / math.prod(grid_shape(size, k)) for k in self.ks)
        return total * (maps - 0.75)

    def confident_normal(self, maps: torch.Tensor) -> torch.Tensor:
        """``(B, H, W)`` smoothed map -> ``(B, 1, H, W)`` float, 1 where confidently normal."""
        if self.faithful:
            threshold = OFFICIAL_THRESHOLD if self.threshold is None else self.threshold
            confident = 255 * maps <= -threshold
        else:
            confident = maps <= (OFFICIAL_TAU if self.threshold is None else self.threshold)
        return confident[:, None].float()

    def blocks_to_uncover(self, confident: torch.Tensor, block: int | None = None) -> torch.Tensor:
        """``(B, 1, H, W)`` confident pixels -> ``(B, 1, H, W)`` 1 on every block whose confident
        fraction exceeds ``ratio`` (blocks at the right/bottom edge may be cropped).

        ``block``: side in pixels (default :meth:`block_size` of the map's size).
        """
        size = confident.shape[-2:]
        b = block or self.block_size(size)
        fraction = F.avg_pool2d(confident, b, ceil_mode=True)  # (B, 1, ceil(H / b), ceil(W / b))
        return cells_to_pixels((fraction > self.ratio).float(), b, size)

    @torch.no_grad()
    def refine(self, images: torch.Tensor) -> list[RefinementPass]:
        """Score ``images (B, 3, H, W)`` with ``T`` refinement passes; return every pass (for figures).

        ``refine(x)[-1].map`` is the anomaly map :meth:`predict` returns; ``[p.uncovered for p in
        refine(x)]`` shows the masks shrinking onto the anomalies.
        """
        self.check_fitted()
        self.eval()
        x = self.pad_images(images.to(self.device))  # (B, 3, H', W'), H' = H + 2 pad
        b, size = x.shape[0], x.shape[-2:]
        block = self.block_size(images.shape[-2:])
        uncovered = torch.zeros(b, 1, *size, device=x.device)
        passes = []
        crop = self.crop_border
        for t in range(self.refine_steps):
            last = t == self.refine_steps - 1
            generator = make_generator(self.test_seed + t, self.device)  # the code: setup_seed(seed + num)
            per_k, mse, masks_k, x_hat_k = [], [], {}, {}
            for k in self.ks:
                masks = self.test_masks(k, size, generator).expand(-1, b, -1, -1, -1)  # (n, B, 1, H', W')
                if t > 0:
                    masks = torch.maximum(masks, uncovered[None])  # uncovered blocks: visible in every mask
                y = self.inpaint(x, masks)  # (n, B, 3, H', W')
                if self.faithful:
                    x_hat = compose(y, masks)
                    if last:
                        x_hat = torch.where(x_hat == 0, x, x_hat)
                else:
                    x_hat = compose(y, masks, image=x)
                per_k.append(msgms_map(x, x_hat, faithful=self.faithful_gms))
                mse.append(((crop(x) - crop(x_hat)) ** 2).flatten(1).mean(1))
                masks_k[k], x_hat_k[k] = crop(masks), crop(x_hat)
            raw = self.combine_k(per_k, size)  # (B, H', W')
            if self.faithful:
                raw = self.to_official_units(raw, size)
            smoothed = smooth_maps(raw, self.sigma, self.smoothing)
            step = RefinementPass(t=t, uncovered=crop(uncovered), masks=masks_k, x_hat=x_hat_k, raw_map=crop(raw),
                                  map=crop(smoothed), mse=torch.stack(mse).mean(0))
            if not last:
                confident = self.confident_normal(smoothed)
                step.confident = crop(confident)
                uncovered = torch.maximum(uncovered, self.blocks_to_uncover(confident, block))
            passes.append(step)
        return passes

    @torch.no_grad()
    def anomaly_map(self, images: torch.Tensor, smooth: bool = True) -> torch.Tensor:
        last = self.refine(images)[-1]
        return last.map if smooth else last.raw_map

    # ------------------------------------------------------------------ image score
    def holdout(self, train, generator: torch.Generator):
        n = len(train)
        n_val = min(MAX_CALIBRATION, round(n * self.val_fraction))
        if n_val == 0 or n - n_val < 1:
            return train, None
        order = torch.randperm(n, generator=generator)
        train_idx, val_idx = order[n_val:].sort().values, order[:n_val].sort().values
        if isinstance(train, torch.Tensor):
            return train[train_idx], train[val_idx]
        return Subset(train, train_idx.tolist()), Subset(train, val_idx.tolist())

    def after_fit(self, train, held_out, progress: bool) -> None:
        data = held_out
        if data is None:  # no held-out images: the training images (at most 256) stand in
            data = train[:MAX_CALIBRATION] if isinstance(train, torch.Tensor) else \
                Subset(train, list(range(min(len(train), MAX_CALIBRATION))))
        maxima, mses = [], []
        for images in image_batches(data, 16):
            last = self.refine(images)[-1]
            maxima.append(last.map.flatten(1).amax(1))
            mses.append(last.mse)
        stats = torch.stack([torch.cat(maxima), torch.cat(mses)]).double()  # (2, N_val)
        std = stats.std(1, unbiased=False) if stats.shape[1] > 1 else torch.ones(2, dtype=stats.dtype)
        self.calibration = torch.stack([stats.mean(1), std.clamp_min(1e-12)]).float().to(self.device)  # (2, 2)

    def combine_scores(self, score_max: torch.Tensor, mse: torch.Tensor) -> torch.Tensor:
        """``(max A - mu_A) / sd_A + (MSE - mu_MSE) / sd_MSE`` with the held-out normal statistics."""
        mean, std = self.calibration.to(score_max.device)
        return (score_max - mean[0]) / std[0] + (mse - mean[1]) / std[1]

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> SSMPrediction:
        last = self.refine(images)[-1]
        score_max = last.map.flatten(1).amax(1)
        combined = self.combine_scores(score_max, last.mse)
        scores = combined if self.image_score == "combined" else score_max
        return SSMPrediction(scores=scores, maps=last.map, score_max=score_max, score_combined=combined, mse=last.mse)


__all__ = ["OFFICIAL_TAU", "OFFICIAL_THRESHOLD", "SSM", "RefinementPass", "SSMPrediction", "official_image_scores"]
