"""DRAEM: reconstruct the forged image, then segment what the reconstruction changed.

Zavrtanik, Kristan and Skocaj, "DRAEM -- A discriminatively trained reconstruction embedding
for surface anomaly detection", ICCV 2021 (official code ``VitjanZ/DRAEM``).

Training sees only normal images ``I``. Each batch is forged (:mod:`anolearn.forge.draem`):
a DTD-like texture ``A`` is blended into ``I`` inside a thresholded Perlin blob ``M``, giving
``I_a``. Two networks are trained jointly:

* the **reconstructive sub-network** ``R`` (an encoder-decoder *without* skip connections,
  base width 128) maps ``I_a`` back to the clean ``I``:
  ``L_rec = ||I - R(I_a)||^2 + (1 - SSIM(I, R(I_a)))``;
* the **discriminative sub-network** ``S`` (a U-Net *with* skips, base width 64) reads the
  channel concatenation ``[R(I_a), I_a]`` and outputs two-class logits; it learns where the
  two differ *because* of a forgery: ``L_seg = Focal(S([R(I_a), I_a]), M)`` with ``gamma = 2``
  (:func:`anolearn.nn.focal_loss`).

``L = L_rec + L_seg``, one Adam optimiser over both networks (the focal loss reaches ``R``
too). At test time the anomaly map is the softmax probability of class 1, the image score the
maximum of the map after a ``21 x 21`` mean filter (:func:`anolearn.filters.mean_filter`).

**Faithful to the official code** (where the paper, the code and anomalib differ, the code
is what produced the published numbers, and we follow it; every item is a parameter; the
networks are in :mod:`anolearn.methods.draem_nets`):

==========================  ===========================  ==============================  ======================
item                         paper                        official code (default here)    anomalib 2.x
==========================  ===========================  ==============================  ======================
texture opacity              ``beta ~ U(0.1, 1)``         texture weight ``U(0.2, 1)``    ``U(0.1, 1)``
                                                          (``beta=(0.2, 1.0)``)
normal image rotation        ``U(-45, 45)``               ``U(-90, 90)``, prob. 0.3       none in its training step
schedule (700 epochs)        lr x0.1 after 400 and 600    x0.2 at 80 % and 90 %           x0.1 at epochs 400, 600
                                                          (``lr_milestones``)
forged : normal              --                           1 : 1 (``p_normal=0.5``)        generator's default
weights init                 --                           ``N(0, 0.02)``                  (not checked)
image score                  max of mean-filtered map     ``avg_pool2d(21, stride 1)``    (not checked)
==========================  ===========================  ==============================  ======================

(anomalib: ``Draem.configure_optimizers`` and the ``PerlinAnomalyGenerator`` defaults in
``src/anomalib/models/image/draem/lightning_model.py``; where we did not read its code we
say so rather than guess.)

**Our deviations, and why.** (1) The focal loss takes logits (``log_softmax``) instead of the
code's smoothed softmax probabilities: the same loss to ~1e-5, stable in float16. (2) The
anomaly source is DTD when fetched (``source="auto"``), otherwise anolearn's offline texture
bank (:class:`anolearn.forge.TextureSource`), because DTD cannot be downloaded here. (3) The
decoder's widths shrink inside the first convolution after upsampling rather than in the
second (the same layer types and counts). (4) ``train_crop``: the quick profile trains on
random 64 px crops of the 128 px images (all networks are fully convolutional) and scales the
score filter with the resolution (``score_filter=11`` at 128 px is 21 px at 256). (5) Batches
are drawn by a per-epoch random permutation from ``seed`` (the code's DataLoader shuffle).

**GPU.** On CUDA both networks run under float16 autocast with a gradient scaler; forging
runs on the device with a device ``torch.Generator``; losses are computed in float32. On the
CPU a rerun with the same ``seed`` is bit-identical.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..filters import mean_filter
from ..nn.focal import focal_loss
from ..nn.padding import use_padding
from ..nn.ssim import ssim_loss
from ..seed import make_generator
from .base import AnomalyMethod, Prediction, collect_images, register, resize
from .draem_nets import DraemNet, draem_init
from .training import CHECKPOINT_EVERY, LossLog, ShuffledBatches, Training


# ----------------------------------------------------------------------------- the method
@register("draem")
class DRAEM(AnomalyMethod):
    """DRAEM with the official code's settings as defaults.

    Args:
        rec_width, rec_depth: reconstructive network (128, 4 in DRAEM).
        seg_width, seg_depth: discriminative network (64, 5 in DRAEM).
        epochs: passes over the training images (700 in the paper; ``steps = epochs * (N // batch_size)``).
        steps: optimiser steps, used when ``epochs`` is None.
        batch_size: images per step (8).
        lr: Adam learning rate for both networks (1e-4).
        lr_milestones, lr_gamma: lr x ``lr_gamma`` after these fractions of the run (0.8, 0.9; 0.2).
        input_size: side the networks run at (images are resized, maps resized back); None = as given.
        train_crop: train on random square crops of this side (one place per batch); None = whole images.
        gamma: focal-loss exponent (2).
        score_filter: side of the mean filter before the image-score maximum (21; odd; 1 = none).
        p_normal, beta, threshold, p_rotate, source: the forger's settings (:func:`anolearn.forge.draem_forge`).
        conv_padding: border of every convolution, ``"zeros"`` (DRAEM) or ``"reflect"`` (no black frame
            around the image for the segmentation network to flag; :mod:`anolearn.nn.padding`).
        amp: float16 autocast on CUDA (ignored elsewhere).
        log_every: steps between reads of the loss history.
        seed: seed of the weights, batch order, crops and forgeries.

    Example::

        >>> m = DRAEM(rec_width=4, seg_width=4, rec_depth=2, seg_depth=2, epochs=None, steps=2, batch_size=2)
        >>> out = m.fit(torch.rand(4, 3, 32, 32), progress=False).predict(torch.rand(2, 3, 32, 32))
        >>> out.scores.shape, out.maps.shape
        (torch.Size([2]), torch.Size([2, 32, 32]))
    """

    loss_names: tuple[str, ...] = ("loss", "l2", "ssim", "focal")

    def __init__(self, rec_width: int = 128, rec_depth: int = 4, seg_width: int = 64, seg_depth: int = 5,
                 epochs: int | None = 700, steps: int = 1000, batch_size: int = 8, lr: float = 1e-4,
                 lr_milestones: tuple[float, ...] = (0.8, 0.9), lr_gamma: float = 0.2, input_size: int | None = 256,
                 train_crop: int | None = None, gamma: float = 2.0, score_filter: int = 21, p_normal: float = 0.5,
                 beta: tuple[float, float] = (0.2, 1.0), threshold: float = 0.5, p_rotate: float = 0.3,
                 source: str = "auto", conv_padding: str = "zeros", amp: bool = True, log_every: int = 10,
                 seed: int = 0):
        super().__init__()
        if epochs is None and steps < 1:
            raise ValueError(f"steps must be >= 1 (or set epochs), got {steps}.")
        if batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (batch norm), got {batch_size}.")
        if score_filter < 1 or score_filter % 2 != 1:
            raise ValueError(f"score_filter must be a positive odd window size, got {score_filter}.")
        self.rec_width, self.rec_depth, self.seg_width, self.seg_depth = rec_width, rec_depth, seg_width, seg_depth
        self.epochs, self.steps, self.batch_size, self.lr = epochs, steps, batch_size, lr
        self.lr_milestones, self.lr_gamma = tuple(lr_milestones), lr_gamma
        self.input_size, self.train_crop, self.gamma, self.score_filter = input_size, train_crop, gamma, score_filter
        self.p_normal, self.beta, self.threshold, self.p_rotate = p_normal, tuple(beta), threshold, p_rotate
        self.source, self.conv_padding, self.amp, self.log_every, self.seed = source, conv_padding, amp, log_every, seed
        with torch.random.fork_rng(devices=[]):  # weights depend on `seed` only
            torch.manual_seed(seed)
            self.build_networks()
        use_padding(self, conv_padding)
        self.register_buffer("trained_steps", torch.zeros((), dtype=torch.long))
        self.history: dict[str, list[float]] = {}
        self.timings: dict[str, float] = {}
        self._forger = None
        self.eval()

    def build_networks(self) -> None:
        self.reconstructive = DraemNet(3, 3, self.rec_width, self.rec_depth, skips=False)
        self.discriminative = DraemNet(6, 2, self.seg_width, self.seg_depth, skips=True)
        draem_init(self)

    # ------------------------------------------------------------------ pieces
    @property
    def forger(self):
        """The training forger (built on first use): DRAEM's Perlin/texture blends."""
        if self._forger is None:
            from ..forge.draem import DraemForger

            self._forger = DraemForger(source=self.source, p_normal=self.p_normal, beta=self.beta,
                                       threshold=self.threshold, p_rotate=self.p_rotate)
        return self._forger

    def crop_window(self, size: tuple[int, int], generator: torch.Generator) -> tuple[int, int, int]:
        """``(i, j, c)``: a random ``train_crop`` window (one per batch; the whole image without cropping)."""
        c, (h, w) = self.train_crop, size
        if not c or (c >= h and c >= w):
            return 0, 0, max(h, w)
        dev = generator.device
        i = int(torch.randint(h - c + 1, (1,), generator=generator, device=dev)) if h > c else 0
        j = int(torch.randint(w - c + 1, (1,), generator=generator, device=dev)) if w > c else 0
        return i, j, c

    def forward_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, 3, H, W)`` -> reconstruction ``(B, 3, H, W)`` and logits ``(B, 2, H, W)`` (float32)."""
        with self.autocast():
            rec = self.reconstructive(x)
            logits = self.discriminative(torch.cat([rec, x], 1))
        return rec.float(), logits.float()

    def training_losses(self, images: torch.Tensor, idx: torch.Tensor, window, generator) -> dict[str, torch.Tensor]:
        """Losses of one batch (the training images ``images[idx]`` cropped to ``window``)."""
        i, j, c = window
        x = images[idx][..., i:i + c, j:j + c]
        forged = self.forger(x, generator=generator)
        target = forged.originals if forged.originals is not None else x
        rec, logits = self.forward_logits(forged.images)
        parts = {"l2": F.mse_loss(rec, target), "ssim": ssim_loss(rec, target),
                 "focal": focal_loss(logits, forged.masks, gamma=self.gamma)}
        parts["loss"] = parts["l2"] + parts["ssim"] + parts["focal"]
        return parts

    def prepare(self, images: torch.Tensor, progress: bool) -> None:
        """Hook run once before training (SGSF caches saliency and contrast sets here)."""

    # ------------------------------------------------------------------ training
    def fit(self, train, progress: bool = True, checkpoint: str | Path | None = None,
            checkpoint_every: float = CHECKPOINT_EVERY) -> DRAEM:
        """Train on normal images: a dataset of sample dicts or a tensor ``(N, 3, H, W)`` in [0, 1].

        ``checkpoint``: a file to save the training's progress to every ``checkpoint_every``
        seconds, and to resume from (:mod:`anolearn.methods.training`).
        """
        start = time.perf_counter()
        images = collect_images(train, self.input_size, self.device)  # (N, 3, s, s)
        run = Training(self, checkpoint, checkpoint_every, data=images)
        device = images.device
        g = make_generator(self.seed, device)
        self.prepare(images, progress)
        batches = ShuffledBatches(images.shape[0], self.batch_size, g, device)  # a new order every epoch
        steps = self.epochs * batches.per_epoch if self.epochs else self.steps
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=self.lr, fused=device.type == "cuda")
        milestones = sorted({max(1, round(f * steps)) for f in self.lr_milestones})
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=self.lr_gamma)
        scaler = self.grad_scaler(device)
        log = LossLog(self.loss_names, self.log_every, steps)
        self.history = log.history
        self.train()
        loop = run.stage("train", steps, progress, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                         generator=g, batches=batches, log=log)
        for step in loop:
            idx = batches.next()
            parts = self.training_losses(images, idx, self.crop_window(images.shape[-2:], g), g)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(parts["loss"]).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            logged = log.add(step, parts)
            if logged:
                loop.show(loss=f"{logged['loss']:.3f}")
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        self.trained_steps.fill_(steps)
        self.timings = {"fit": time.perf_counter() - start, "steps": steps, "images": steps * batches.batch_size}
        self.eval()
        return self

    # ------------------------------------------------------------------ inference
    def is_fitted(self) -> bool:
        return int(self.trained_steps) > 0

    def segment(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Outputs for images at the working size: ``anomaly (B, 1, s, s)`` probability and ``rec``."""
        rec, logits = self.forward_logits(x)
        return {"rec": rec, "anomaly": logits.softmax(1)[:, 1:]}

    @torch.no_grad()
    def outputs(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every intermediate for figures, resized back to the input size: ``rec (B, 3, H, W)``,
        ``anomaly (B, 1, H, W)`` and ``score (B,)`` (max of the mean-filtered map at the working size)."""
        self.check_fitted()
        self.eval()
        images = images.to(self.device).float()
        x = resize(images, self.input_size) if self.input_size else images
        out = self.segment(x)
        p = out["anomaly"]
        filtered = mean_filter(p, self.score_filter) if self.score_filter > 1 else p
        result = {k: resize(v, images.shape[-2:]) for k, v in out.items()}
        result["score"] = filtered.flatten(1).amax(1)
        return result

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> Prediction:
        """Anomaly maps ``(B, H, W)`` (probability of "anomalous") and image scores ``(B,)``."""
        out = self.outputs(images)
        return Prediction(scores=out["score"], maps=out["anomaly"][:, 0])


__all__ = ["DRAEM"]
