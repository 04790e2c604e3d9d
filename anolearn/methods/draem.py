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
is what produced the published numbers, and we follow it; every item is a parameter):

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

import contextlib
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..filters import mean_filter
from ..nn.focal import focal_loss
from ..nn.padding import use_padding
from ..nn.ssim import ssim_loss
from ..seed import make_generator
from .base import AnomalyMethod, Prediction, image_batches, register


# ----------------------------------------------------------------------------- networks
def double_conv(c_in: int, c_out: int) -> nn.Sequential:
    """DRAEM's block: two (3 x 3 convolution + batch norm + ReLU)."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                         nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class DraemNet(nn.Module):
    """DRAEM's encoder-decoder, with (discriminative) or without (reconstructive) skip connections.

    Encoder: ``double_conv`` at level 0, then ``depth`` times max-pool + ``double_conv``; widths
    ``min(base_width 2^l, 8 base_width)``. Decoder: bilinear upsampling x2 + 3 x 3 conv/BN/ReLU to
    the next width, concatenation with the encoder's features of that level (``skips=True``), then
    ``double_conv``; a final 3 x 3 convolution to ``out_channels`` (no activation). DRAEM uses
    ``(3 -> 3, 128, depth 4, no skips)`` and ``(6 -> 2, 64, depth 5, skips)``.

    Args:
        in_channels, out_channels: channels of input and output.
        base_width: width of level 0.
        depth: number of halvings (``H, W`` must be divisible by ``2^depth``).
        skips: concatenate encoder features in the decoder (U-Net) or not (autoencoder).
    """

    def __init__(self, in_channels: int, out_channels: int, base_width: int = 64, depth: int = 5, skips: bool = True):
        super().__init__()
        if depth < 1 or base_width < 1:
            raise ValueError(f"depth and base_width must be >= 1, got {depth} and {base_width}.")
        self.depth, self.skips = depth, skips
        self.widths = [min(base_width * 2**lv, 8 * base_width) for lv in range(depth + 1)]
        w = self.widths
        self.enc = nn.ModuleList([double_conv(in_channels, w[0])] + [double_conv(w[lv - 1], w[lv])
                                                                       for lv in range(1, depth + 1)])
        levels = list(reversed(range(1, depth + 1)))  # decoder step i goes from level lv to lv - 1
        self.up = nn.ModuleList([nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                                               nn.Conv2d(w[lv], w[lv - 1], 3, padding=1), nn.BatchNorm2d(w[lv - 1]),
                                               nn.ReLU(inplace=True)) for lv in levels])
        self.dec = nn.ModuleList([double_conv(w[lv - 1] * (2 if skips else 1), w[lv - 1]) for lv in levels])
        self.head = nn.Conv2d(w[0], out_channels, 3, padding=1)

    def check(self, x: torch.Tensor) -> None:
        f = 2**self.depth
        if x.dim() != 4 or x.shape[-2] % f or x.shape[-1] % f:
            raise ValueError(f"{type(self).__name__}(depth={self.depth}) needs (B, C, H, W) inputs with H and W "
                             f"divisible by {f}, got {tuple(x.shape)}.")

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Encoder features, level 0 (full resolution) to ``depth`` (bottleneck)."""
        self.check(x)
        feats = [self.enc[0](x)]
        for block in self.enc[1:]:
            feats.append(block(F.max_pool2d(feats[-1], 2)))
        return feats

    def decode(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """Decode encoder features; returns the output and ``{level: decoder features}`` (the bottleneck
        at ``depth``, every decoder block's output at its level)."""
        x = feats[-1]
        out = {self.depth: x}
        for i, (up, dec) in enumerate(zip(self.up, self.dec)):
            lv = self.depth - 1 - i
            x = up(x)
            x = dec(torch.cat([x, feats[lv]], 1) if self.skips else x)
            out[lv] = x
        return self.head(x), out

    def forward(self, x: torch.Tensor, return_features: bool = False):
        """``(B, in, H, W) -> (B, out, H, W)`` (and the decoder features, if asked)."""
        y, feats = self.decode(self.encode(x))
        return (y, feats) if return_features else y


def draem_init(module: nn.Module) -> None:
    """DRAEM's ``weights_init``: conv weights ``N(0, 0.02)``, batch-norm scales ``N(1, 0.02)``, biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def resize(images: torch.Tensor, size) -> torch.Tensor:
    """Bilinear resize of ``(B, C, H, W)`` to ``size`` (antialiased when shrinking); a no-op at that size."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(images.shape[-2:]) == size:
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=size[0] < images.shape[-2])


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

    def config(self) -> dict[str, Any]:
        names = ("rec_width", "rec_depth", "seg_width", "seg_depth", "epochs", "steps", "batch_size", "lr",
                 "lr_milestones", "lr_gamma", "input_size", "train_crop", "gamma", "score_filter", "p_normal", "beta",
                 "threshold", "p_rotate", "source", "conv_padding", "amp", "log_every", "seed")
        return {n: getattr(self, n) for n in names}

    # ------------------------------------------------------------------ pieces
    def autocast(self):
        if self.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    @property
    def forger(self):
        """The training forger (built on first use): DRAEM's Perlin/texture blends."""
        if self._forger is None:
            from ..forge.draem import DraemForger

            self._forger = DraemForger(source=self.source, p_normal=self.p_normal, beta=self.beta,
                                       threshold=self.threshold, p_rotate=self.p_rotate)
        return self._forger

    def collect(self, train) -> torch.Tensor:
        """All training images at the working size, ``(N, 3, s, s)`` on the method's device."""
        chunks = [b.to(self.device).float() for b in image_batches(train, 64)]
        if not chunks:
            raise ValueError("fit() got no training images.")
        images = torch.cat(chunks)
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"Training images must be (N, 3, H, W), got {tuple(images.shape)}.")
        return resize(images, self.input_size) if self.input_size else images

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
    def fit(self, train, progress: bool = True) -> DRAEM:
        """Train on normal images: a dataset of sample dicts or a tensor ``(N, 3, H, W)`` in [0, 1]."""
        start = time.perf_counter()
        images = self.collect(train)
        device = images.device
        g = make_generator(self.seed, device)
        self.prepare(images, progress)
        n = images.shape[0]
        b = min(self.batch_size, n)
        per_epoch = max(1, n // b)
        steps = self.epochs * per_epoch if self.epochs else self.steps
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=self.lr, fused=device.type == "cuda")
        milestones = sorted({max(1, round(f * steps)) for f in self.lr_milestones})
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=self.lr_gamma)
        scaler = torch.amp.GradScaler("cuda", enabled=self.amp and device.type == "cuda")
        self.history = {"step": []}
        buffer: list[torch.Tensor] = []
        self.train()
        order = None
        bar = tqdm(range(steps), desc=f"{self.name}: train", disable=not progress, leave=False)
        for step in bar:
            k = step % per_epoch
            if k == 0:
                order = torch.randperm(n, generator=g, device=device)
            idx = order[k * b:(k + 1) * b]
            parts = self.training_losses(images, idx, self.crop_window(images.shape[-2:], g), g)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(parts["loss"]).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            buffer.append(torch.stack([parts[name].detach() for name in self.loss_names]))
            if (step + 1) % self.log_every == 0 or step + 1 == steps:
                values = torch.stack(buffer).mean(0).tolist()  # one host sync per log_every steps
                buffer.clear()
                self.history["step"].append(step + 1)
                for name, v in zip(self.loss_names, values):
                    self.history.setdefault(name, []).append(v)
                bar.set_postfix(loss=f"{values[0]:.3f}")
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        self.trained_steps.fill_(steps)
        self.timings = {"fit": time.perf_counter() - start, "steps": steps, "images": steps * b}
        self.eval()
        return self

    # ------------------------------------------------------------------ inference
    def _check_fitted(self) -> None:
        if int(self.trained_steps) == 0:
            raise RuntimeError(f"Call fit() on normal training images before using {type(self).__name__}.")

    def segment(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Outputs for images at the working size: ``anomaly (B, 1, s, s)`` probability and ``rec``."""
        rec, logits = self.forward_logits(x)
        return {"rec": rec, "anomaly": logits.softmax(1)[:, 1:]}

    @torch.no_grad()
    def outputs(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every intermediate for figures, resized back to the input size: ``rec (B, 3, H, W)``,
        ``anomaly (B, 1, H, W)`` and ``score (B,)`` (max of the mean-filtered map at the working size)."""
        self._check_fitted()
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


__all__ = ["DRAEM", "DraemNet", "double_conv", "draem_init", "resize"]
