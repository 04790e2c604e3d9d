"""AnoSeg: learn to segment forged anomalies, and reconstruct only what is normal.

Song, Kong, Park, Kim and Kang, "AnoSeg: Anomaly Segmentation Network Using Self-Supervised
Learning", arXiv 2110.03396 (2021; ICLR 2022 submission, withdrawn). No official code exists.

**Idea.** Forge anomalies with *hard augmentation* (rotate, permute the quadrants and
colour-jitter a copy of the image, then CutPaste a rotated rectangle of that copy into the
original; :mod:`anolearn.forge.hard_augment`) and mix them with untouched normal images. A
generator ``G`` (:mod:`.anoseg_nets`) reads the image with two coordinate channels and
outputs a reconstruction ``x_hat`` and an anomaly map ``A_hat`` (1 = normal, the paper's
convention). It is trained with three losses (:mod:`.anoseg_losses`)::

    L_G = lambda_seg * L_Seg + lambda_re * L_Re + lambda_adv * L_Adv
    L_Seg = E|A - A_hat|                         (find the forged pixels; see seg_loss below)
    L_Re  = E|x A - x_hat A| / E|A|              (reconstruct the normal pixels only)
    L_Adv : D tells (x, A) from (x_hat, A_hat)   (maps and images that look like real pairs)

At test time the pixel anomaly map is ``1 - A_hat`` (high = anomalous). The image score is
either the maximum of that map after Gaussian smoothing (``image_score="map_max"``, a common
simple rule, not the paper's), or the paper's **Appendix-A detector**
(``image_score="gan"``): a second, small GAN trained on normal images only, whose
generator ``G_AD`` reconstructs ``x`` from ``(x, A_hat)`` and whose discriminator ``D_AD``
learns that real pairs carry an all-ones map. The score compares ``D_AD``'s penultimate
features of ``(x, 1)`` and ``(x_hat, A_hat)``::

    Score = alpha * MSE(f(x, 1), f(x_hat, A_hat)) + beta * MSE(x, x_hat),   alpha = 1, beta = 0.1

``D_AD`` is also trained to call forged pairs ``(x_Ano, A_Ano)`` fake (the paper's ``L_cls``),
and ``G_AD`` with feature matching, an L1 reconstruction term and the adversarial loss.

**What the paper does not give, and what we chose** (all are constructor arguments):

* optimiser: Adam, learning rate 2e-4, betas (0.5, 0.999) for every network (pix2pix's
  recipe for conditional GANs); constant learning rate;
* loss weights: ``lambda_seg = lambda_re = 1``, ``lambda_adv = 0.1`` (the adversarial term is a
  regulariser; with weight 1 it dominates early training);
* ``seg_loss="balanced_l1"`` (default, our deviation): the L1 averaged separately over normal and
  forged pixels. With the paper's plain L1 (``seg_loss="l1"``) and a few percent forged pixels
  the map collapsed to "normal everywhere" in our CPU-budget trials (the L1 optimum of an
  uninformed constant is the median, 1, and the sigmoid then saturates);
* half of each batch is forged (``p_anomalous = 0.5``), the rest are normal images with an
  all-ones reference map;
* the encoder is trained from scratch, ``width`` scales every network (1.0 = Table 6);
* ``bottleneck = 8``: the side of the code, 256 / 32 as in Table 6. At a smaller ``input_size``
  the encoder drops downsamplings and the decoders turn their first transposed convolutions
  into stride-1 convolutions, so the code stays 8 x 8 (at 256 px this is exactly Table 6);
* ``input_size``: the resolution the networks run at; images of another size are resized
  (bilinear, antialiased) and maps are resized back, so metrics are computed at the
  dataset's resolution. The quick profile trains a narrow network at 64 x 64 to fit a CPU;
* the Appendix-A detector: ``G_AD`` = AnoSeg's encoder + one decoder with a 4-channel input;
  ``D_AD`` = Table 6's discriminator; losses weighted 1 (``L_fea``, ``L_cls``, L1
  reconstruction) and ``lambda_adv`` (adversarial). The paper gives neither structure nor weights.

**GPU.** On CUDA, training runs under mixed precision (``torch.autocast`` float16 with a
``GradScaler`` per network; fused Adam takes the scaler's inf check on the device), the
forging runs on the device with a device ``torch.Generator``, and nothing in a training step
waits for the host: the loss history is kept as device tensors and read every ``log_every``
steps. On the CPU everything is float32 and a rerun with the same seed is bit-identical.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from ..filters import gaussian_blur
from ..seed import make_generator
from .anoseg_losses import (
    balanced_segmentation_loss,
    detection_score,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    masked_reconstruction_loss,
    segmentation_loss,
)
from .anoseg_nets import UP_MODES, AnoSegGenerator, DetectorGenerator, PairDiscriminator
from .base import AnomalyMethod, Prediction, collect_images, register, resize
from .training import CHECKPOINT_EVERY, LossLog, Training

IMAGE_SCORES = ("map_max", "gan")
SEG_LOSSES = {"l1": segmentation_loss, "balanced_l1": balanced_segmentation_loss}
SEGMENTER_LOSSES = ("seg", "re", "adv", "d")
PLACEMENTS = ("inside", "anywhere")
DETECTOR_LOSSES = ("fea", "rec", "adv", "d")


def default_forger(inside: bool = True) -> Callable:
    """AnoSeg's hard augmentation (:mod:`anolearn.forge.hard_augment`) with its default settings;
    ``inside`` keeps the pasted rectangle inside the image."""
    from ..forge.hard_augment import HardAugment

    return HardAugment(inside=inside)


@register("anoseg")
class AnoSeg(AnomalyMethod):
    """AnoSeg: segmentation generator + conditional discriminator, optional Appendix-A detector.

    Args:
        steps: training steps of the segmentation GAN.
        batch_size: images per step (half of them forged, on average).
        input_size: side of the square resolution the networks run at (power of two >= 16).
        width: channel multiplier of all networks (1.0 = the paper's Table 6).
        bottleneck: side of the encoder's output grid (8 = Table 6 at 256 px); ``input_size /
            bottleneck`` must be ``2**k`` with k in 1..5.
        lr, betas: Adam settings of every network.
        lambda_seg, lambda_re, lambda_adv: loss weights of ``L_Seg``, ``L_Re`` and ``L_Adv``.
        seg_loss: ``"balanced_l1"`` (default) or ``"l1"`` (the paper's).
        p_anomalous: probability that a training sample is forged.
        coord_channels: concatenate coordinate channels (False: the ablation without them).
        adversarial: train with the discriminator (False: the ablation without ``L_Adv``; no
            discriminator is built).
        image_score: ``"map_max"`` (max of the smoothed map) or ``"gan"`` (Appendix A; trains
            the detector GAN in :meth:`fit`).
        map_sigma: Gaussian smoothing of the returned pixel map, in pixels (0 = the raw map).
        score_sigma: Gaussian smoothing before the maximum for ``"map_max"``, in pixels.
        detector_steps: training steps of the Appendix-A detector GAN.
        alpha, beta: weights of the Appendix-A score.
        up_mode: the decoders' doublings: ``"transpose"`` (Table 6's 4x4 transposed convolutions) or
            ``"resize"`` (nearest x2 + 3x3 convolution, which cannot draw a checkerboard).
        placement: where forged rectangles go: ``"inside"`` the image, or ``"anywhere"`` they
            overlap it, clipped by the border, so that every pixel is forged equally often and
            the coordinate channels cannot learn "anomalies are in the middle".
        encoder: ``"scratch"`` (the paper's ResNet-18 layout, random weights) or
            ``"efficientnet_lite0"`` (frozen ImageNet features; see
            :class:`~anolearn.methods.anoseg_nets.PretrainedCodeEncoder`).
        pretrained: ImageNet weights for that encoder (False only for tests).
        amp: mixed precision on CUDA (ignored on other devices).
        log_every: steps between reads of the loss history (one host sync each).
        seed: seed of the weight initialisation, batch sampling and forging.

    Attributes:
        history: ``{"step": [...], "seg": [...], "re": [...], "adv": [...], "d": [...]}``, each
            loss averaged over the last ``log_every`` steps (``adv``/``d`` are NaN without the
            discriminator).
        detector_history: the same for the detector GAN (``fea``, ``rec``, ``adv``, ``d``).
        timings: wall-clock seconds of the last :meth:`fit`, per stage (``segmenter``, ``detector``).
        forger: callable ``forger(images, generator=g) -> Forged``; hard augmentation by default.
    """

    def __init__(self, steps: int = 4000, batch_size: int = 16, input_size: int = 256, width: float = 1.0,
                 bottleneck: int = 8, lr: float = 2e-4, betas: tuple = (0.5, 0.999), lambda_seg: float = 1.0,
                 lambda_re: float = 1.0, lambda_adv: float = 0.1, seg_loss: str = "balanced_l1",
                 p_anomalous: float = 0.5, coord_channels: bool = True, adversarial: bool = True,
                 image_score: str = "map_max", map_sigma: float = 0.0, score_sigma: float = 4.0,
                 detector_steps: int = 2000, alpha: float = 1.0, beta: float = 0.1, up_mode: str = "transpose",
                 placement: str = "inside", encoder: str = "scratch", pretrained: bool = True, amp: bool = True,
                 log_every: int = 25, seed: int = 0):
        super().__init__()
        if seg_loss not in SEG_LOSSES:
            raise ValueError(f"seg_loss must be one of {tuple(SEG_LOSSES)}, got {seg_loss!r}.")
        if image_score not in IMAGE_SCORES:
            raise ValueError(f"image_score must be one of {IMAGE_SCORES}, got {image_score!r}.")
        if input_size < 16 or input_size & (input_size - 1):
            raise ValueError(f"input_size must be a power of two >= 16, got {input_size}.")
        downsample = round(math.log2(input_size / bottleneck)) if bottleneck > 0 else -1
        if bottleneck < 1 or 2**downsample * bottleneck != input_size or not 1 <= downsample <= 5:
            raise ValueError(f"bottleneck must be input_size / 2**k for k in 1..5 (256 / 8 = 32 is Table 6), "
                             f"got bottleneck={bottleneck} for input_size={input_size}.")
        if up_mode not in UP_MODES:
            raise ValueError(f"up_mode must be one of {UP_MODES}, got {up_mode!r}.")
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}.")
        if not 0 <= p_anomalous <= 1:
            raise ValueError(f"p_anomalous must be a probability, got {p_anomalous}.")
        if steps < 1 or batch_size < 2 or log_every < 1:
            raise ValueError("steps and log_every must be >= 1 and batch_size >= 2 (batch norm).")
        self.steps, self.batch_size, self.input_size, self.width = steps, batch_size, input_size, width
        self.bottleneck = bottleneck
        self.lr, self.betas = lr, tuple(betas)
        self.lambda_seg, self.lambda_re, self.lambda_adv, self.seg_loss = lambda_seg, lambda_re, lambda_adv, seg_loss
        self.p_anomalous, self.coord_channels, self.adversarial = p_anomalous, coord_channels, adversarial
        self.image_score, self.map_sigma, self.score_sigma = image_score, map_sigma, score_sigma
        self.detector_steps, self.alpha, self.beta = detector_steps, alpha, beta
        self.up_mode, self.placement, self.encoder, self.pretrained = up_mode, placement, encoder, pretrained
        self.amp, self.log_every, self.seed = amp, log_every, seed
        # Weight initialisation from the seed, whatever the global random state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.generator = AnoSegGenerator(coord_channels, width, downsample, up_mode, encoder, pretrained)
            self.discriminator = PairDiscriminator(input_size, 4, width) if adversarial else None
            self.detector = DetectorGenerator(width, downsample, up_mode) if image_score == "gan" else None
            self.detector_discriminator = PairDiscriminator(input_size, 4, width) if image_score == "gan" else None
        self.register_buffer("trained_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("detector_trained_steps", torch.zeros((), dtype=torch.long))
        self.history: dict[str, list[float]] = {}
        self.detector_history: dict[str, list[float]] = {}
        self.timings: dict[str, float] = {}
        self.forger = default_forger(inside=placement == "inside")
        self.eval()

    # ------------------------------------------------------------------ helpers
    def _optimizer(self, module: torch.nn.Module, device: torch.device) -> torch.optim.Adam:
        # Fused Adam on CUDA checks the GradScaler's inf flag on the device (no host sync).
        return torch.optim.Adam(module.parameters(), lr=self.lr, betas=self.betas, fused=device.type == "cuda")

    def _forge(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A training batch: forged images with probability ``p_anomalous``, else untouched.

        Returns ``(images (B, 3, s, s), A (B, 1, s, s) with 1 = normal, forged (B,) bool)``.
        """
        forged = self.forger(x, generator=generator)
        b = x.shape[0]
        pick = torch.rand(b, generator=generator, device=x.device) < self.p_anomalous  # (B,)
        images = torch.where(pick.view(b, 1, 1, 1), forged.images, x)
        A = torch.where(pick.view(b, 1, 1, 1), forged.normal_maps, torch.ones_like(forged.masks))
        return images, A, pick

    # ------------------------------------------------------------------ training
    def fit(self, train, progress: bool = True, callback: Callable[[str, dict], None] | None = None,
            checkpoint: str | Path | None = None, checkpoint_every: float = CHECKPOINT_EVERY) -> AnoSeg:
        """Train on normal images (a dataset of sample dicts or a ``(N, 3, H, W)`` tensor).

        Args:
            train: normal training images in [0, 1].
            progress: show tqdm progress bars.
            callback: called as ``callback(stage, history)`` after every history update, with
                ``stage`` ``"segmenter"`` or ``"detector"`` (e.g. to redraw a live loss curve).
            checkpoint: a file to save the training's progress to every ``checkpoint_every``
                seconds, and to resume from (:mod:`anolearn.methods.training`).
        """
        images = collect_images(train, self.input_size, self.device)  # (N, 3, s, s)
        run = Training(self, checkpoint, checkpoint_every, data=images)
        generator = make_generator(self.seed, images.device)
        self.timings = {}
        stages = [("segmenter", self._fit_segmenter)]
        if self.image_score == "gan":
            stages.append(("detector", self._fit_detector))
        for stage, fit_stage in stages:
            start = time.perf_counter()
            fit_stage(run, images, generator, progress, callback)
            if images.device.type == "cuda":
                torch.cuda.synchronize(images.device)
            self.timings[stage] = time.perf_counter() - start
        self.eval()
        return self

    def _fit_segmenter(self, run, images, generator, progress, callback) -> None:
        device = images.device
        G, D = self.generator, self.discriminator
        opt_g = self._optimizer(G, device)
        opt_d = self._optimizer(D, device) if D is not None else None
        scaler_g, scaler_d = self.grad_scaler(device), self.grad_scaler(device)
        log = LossLog(SEGMENTER_LOSSES, self.log_every, self.steps)
        self.history = log.history
        nan = torch.full((), float("nan"), device=device)
        self.train()
        state = dict(opt_g=opt_g, scaler_g=scaler_g, scaler_d=scaler_d, generator=generator, log=log)
        if D is not None:
            state["opt_d"] = opt_d
        loop = run.stage("segmenter", self.steps, progress, desc="anoseg: train", **state)
        for step in loop:
            idx = torch.randint(images.shape[0], (self.batch_size,), generator=generator, device=device)
            x, A, _ = self._forge(images[idx], generator)  # (B, 3, s, s), (B, 1, s, s)
            with self.autocast(device):
                x_hat, A_hat = G(x)
            loss_d, loss_adv = nan, nan
            if D is not None:
                # Discriminator: real pair (x, A), fake pair (x_hat, A_hat) without gradient into G.
                with self.autocast(device):
                    loss_d = discriminator_loss(D(torch.cat([x, A], 1)),
                                                D(torch.cat([x_hat.detach(), A_hat.detach()], 1)))
                opt_d.zero_grad(set_to_none=True)
                scaler_d.scale(loss_d).backward()
                scaler_d.step(opt_d)
                scaler_d.update()
                D.requires_grad_(False)  # G's step needs gradients through D, not for D
                with self.autocast(device):
                    loss_adv = generator_adversarial_loss(D(torch.cat([x_hat, A_hat], 1)))
                D.requires_grad_(True)
            loss_seg = SEG_LOSSES[self.seg_loss](A_hat, A)
            loss_re = masked_reconstruction_loss(x_hat, x, A)
            loss_g = self.lambda_seg * loss_seg + self.lambda_re * loss_re
            if D is not None:
                loss_g = loss_g + self.lambda_adv * loss_adv
            opt_g.zero_grad(set_to_none=True)
            scaler_g.scale(loss_g).backward()
            scaler_g.step(opt_g)
            scaler_g.update()
            last = log.add(step, {"seg": loss_seg, "re": loss_re, "adv": loss_adv, "d": loss_d})
            if last:
                loop.show(seg=f"{last['seg']:.3f}", re=f"{last['re']:.3f}")
                if callback is not None:
                    callback("segmenter", self.history)
        self.trained_steps.fill_(self.steps)
        self.eval()

    @torch.no_grad()
    def _normal_maps(self, images: torch.Tensor) -> torch.Tensor:
        """``A_hat`` (1 = normal) of images already at ``input_size``, ``(N, 1, s, s)`` float."""
        self.generator.eval()
        out = []
        for chunk in images.split(64):
            with self.autocast(chunk.device):
                out.append(self.generator(chunk)[1].float())
        return torch.cat(out)

    def _fit_detector(self, run, images, generator, progress, callback) -> None:
        """Appendix A: the detection GAN, trained on normal images and AnoSeg's (frozen) maps."""
        device = images.device
        G_ad, D_ad = self.detector, self.detector_discriminator
        A_hat_all = self._normal_maps(images)  # (N, 1, s, s), AnoSeg is not trained further
        opt_g, opt_d = self._optimizer(G_ad, device), self._optimizer(D_ad, device)
        scaler_g, scaler_d = self.grad_scaler(device), self.grad_scaler(device)
        log = LossLog(DETECTOR_LOSSES, self.log_every, self.detector_steps)
        self.detector_history = log.history
        G_ad.train()
        D_ad.train()
        loop = run.stage("detector", self.detector_steps, progress, desc="anoseg: detector GAN", opt_g=opt_g,
                         opt_d=opt_d, scaler_g=scaler_g, scaler_d=scaler_d, generator=generator, log=log)
        for step in loop:
            idx = torch.randint(images.shape[0], (self.batch_size,), generator=generator, device=device)
            x, A_hat = images[idx], A_hat_all[idx]  # x_Nor and AnoSeg's map of it
            ones = torch.ones_like(A_hat)  # A_Nor
            forged = self.forger(x, generator=generator)
            is_forged = forged.labels.float()  # (B,) a sample the forger left normal is not a fake
            with self.autocast(device):
                x_hat = G_ad(x, A_hat)
                real = D_ad(torch.cat([x, ones], 1))
                fake = D_ad(torch.cat([x_hat.detach(), A_hat], 1))
                ano = D_ad(torch.cat([forged.images, forged.normal_maps], 1))  # L_cls: forged pairs are fake
            loss_cls = (F.binary_cross_entropy_with_logits(ano.float(), torch.zeros_like(is_forged), reduction="none")
                        * is_forged).sum() / is_forged.sum().clamp_min(1.0)
            loss_d = discriminator_loss(real, fake) + loss_cls
            opt_d.zero_grad(set_to_none=True)
            scaler_d.scale(loss_d).backward()
            scaler_d.step(opt_d)
            scaler_d.update()
            D_ad.requires_grad_(False)
            with self.autocast(device):
                f_real = D_ad.features(torch.cat([x, ones], 1))
                pair_fake = torch.cat([x_hat, A_hat], 1)
                h_fake = D_ad.body(pair_fake)
                f_fake, logit_fake = h_fake.flatten(1), D_ad.head(h_fake).flatten()
            D_ad.requires_grad_(True)
            loss_fea = feature_matching_loss(f_real.detach(), f_fake)
            loss_rec = (x_hat.float() - x).abs().mean()
            loss_adv = generator_adversarial_loss(logit_fake)
            loss_g = loss_fea + loss_rec + self.lambda_adv * loss_adv
            opt_g.zero_grad(set_to_none=True)
            scaler_g.scale(loss_g).backward()
            scaler_g.step(opt_g)
            scaler_g.update()
            last = log.add(step, {"fea": loss_fea, "rec": loss_rec, "adv": loss_adv, "d": loss_d})
            if last:
                loop.show(fea=f"{last['fea']:.3f}", rec=f"{last['rec']:.3f}")
                if callback is not None:
                    callback("detector", self.detector_history)
        self.detector_trained_steps.fill_(self.detector_steps)
        self.eval()

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``G``'s outputs at the input resolution: ``x_hat (B, 3, H, W)`` and ``A_hat (B, 1, H, W)``
        (1 = normal, the paper's convention)."""
        self.check_fitted()
        self.eval()
        x = resize(images.to(self.device).float(), self.input_size)
        with self.autocast(x.device):
            x_hat, A_hat = self.generator(x)
        size = images.shape[-2:]
        return resize(x_hat.float(), size), resize(A_hat.float(), size)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, image_score: str | None = None) -> Prediction:
        """Anomaly maps ``1 - A_hat`` and image scores.

        Args:
            images: ``(B, 3, H, W)`` in [0, 1], any size (resized to ``input_size`` and back).
            image_score: override :attr:`image_score` (``"gan"`` needs the trained detector).

        Returns:
            :class:`Prediction` with ``scores (B,)`` and ``maps (B, H, W)``, high = anomalous.
        """
        kind = image_score or self.image_score
        if kind not in IMAGE_SCORES:
            raise ValueError(f"image_score must be one of {IMAGE_SCORES}, got {kind!r}.")
        self.check_fitted()
        self.eval()
        x = resize(images.to(self.device).float(), self.input_size)  # (B, 3, s, s)
        with self.autocast(x.device):
            _, A_hat = self.generator(x)
        A_hat = A_hat.float()  # (B, 1, s, s), 1 = normal
        anomaly = resize(1.0 - A_hat, images.shape[-2:])[:, 0]  # (B, H, W), 1 = anomalous
        maps = gaussian_blur(anomaly, self.map_sigma)
        if kind == "map_max":
            scores = gaussian_blur(anomaly, self.score_sigma).flatten(1).amax(1)
        else:
            scores = self._detector_scores(x, A_hat)
        return Prediction(scores=scores, maps=maps)

    def _detector_scores(self, x: torch.Tensor, A_hat: torch.Tensor) -> torch.Tensor:
        if self.detector is None or int(self.detector_trained_steps) == 0:
            raise RuntimeError("image_score='gan' needs the Appendix-A detector: construct AnoSeg with "
                               "image_score='gan' and fit() it.")
        with self.autocast(x.device):
            x_hat = self.detector(x, A_hat)
            f_real = self.detector_discriminator.features(torch.cat([x, torch.ones_like(A_hat)], 1))
            f_fake = self.detector_discriminator.features(torch.cat([x_hat, A_hat], 1))
        return detection_score(f_real, f_fake, x, x_hat, self.alpha, self.beta)

    def is_fitted(self) -> bool:
        return int(self.trained_steps) > 0
