"""RIAD: reconstruction by inpainting -- hide parts of the image, paint them back, compare.

Zavrtanik, Kristan and Skocaj, "Reconstruction by inpainting for visual anomaly detection",
Pattern Recognition 112, 107706, 2021.

An autoencoder trained on normal images reconstructs anomalies too well: it learns to copy.
RIAD never lets the network see the pixels it must predict. For a cell size ``k`` the image
is cut into ``k x k`` cells, split at random into ``n = 3`` disjoint groups, giving three
complementary masks ``M_1, M_2, M_3`` (1 = visible, :mod:`anolearn.masking`). A U-Net
``f`` inpaints each masked image, and the composed reconstruction takes every pixel from the
pass in which it was hidden:

    x_hat = sum_i f(x * M_i) * (1 - M_i).

Training (normal images only) minimises, with one ``k`` drawn per batch from ``K``,

    L = w_l2 * ||x - x_hat||^2 + w_gms * L_MSGMS(x, x_hat) + w_ssim * (1 - SSIM(x, x_hat)),

(all weights 1; :mod:`anolearn.nn.msgms`, :mod:`anolearn.nn.ssim`). A defect is something the
network cannot infer from its surroundings, so its inpainting looks normal and differs from
the image. The anomaly map is the MS-GMS map between ``x`` and ``x_hat``, for every ``k`` in
``K = {2, 4, 8, 16}``, averaged over ``k`` and smoothed; the image score is its maximum:

    A(x) = G_sigma * (1/|K|) sum_k A_MSGMS(x, x_hat_k),          s(x) = max A(x).

Settings: from the paper and the unofficial code SSM was built from (plutoyuxie's
re-implementation): ``K = {2, 4, 8, 16}``, Adam (lr 1e-4, weight decay 1e-5), 300 epochs with
the lr divided by 10 at epoch 250, batch 4, 256 x 256 (the full profile). Our choices, and why:

* **Fixed schedule, no early stopping.** The re-implementation stops early on a 20 % split of
  the normal images; we train a fixed number of steps (``steps`` or ``epochs``), so no
  checkpoint is ever chosen, least of all on the test set.
* **The three passes run as one batch** (``3B`` images through the U-Net at once): faster on
  a GPU than three calls. Batch-norm statistics are then taken over all three masked copies
  rather than each separately, a negligible difference.
* **Independent masks per image** in a training batch (the code draws one partition per batch).
* **Test masks are fixed** (drawn from ``test_seed``) and shared by every image, so an image's
  score never depends on which images share its batch.
* **Smoothing:** a 2-D Gaussian, ``sigma = 7`` pixels (as the re-implementation; the paper's
  exact filter is not in our sources). ``k_weights="area"`` weights each ``k`` by its cell
  area, as the re-implementation and SSM's code do (``/ N_k^2``); the default averages.
* **Optional training crops** (``train_crop``): the quick profile trains on 64 x 64 crops of
  the 128 x 128 images to fit a CPU budget; inference always sees whole images.
* **Images are used in [0, 1]** (as SSM's code; the RIAD re-implementation normalises them
  with ImageNet statistics first).
* **Mixed precision** (float16 autocast + gradient scaling) on CUDA only; the losses are always
  computed in float32. On the CPU a run is deterministic under ``seed``.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from ..filters import gaussian_blur, gaussian_kernel1d
from ..masking import compose, grid_masks, grid_shape
from ..nn.msgms import msgms_loss, msgms_map
from ..nn.ssim import ssim_loss
from ..nn.unet import UNet
from ..seed import make_generator
from .base import AnomalyMethod, Prediction, register
from .training import CHECKPOINT_EVERY, ShuffledBatches, Training

K_WEIGHTS = ("uniform", "area")
SMOOTHINGS = ("gaussian", "row1d", "none")
PRELOAD_BYTES = 1 << 30  # datasets below 1 GiB (as float32) are stacked into one tensor before training


def smooth_maps(maps: torch.Tensor, sigma: float, mode: str = "gaussian") -> torch.Tensor:
    """Smooth ``(B, H, W)`` anomaly maps.

    Args:
        maps: ``(B, H, W)``.
        sigma: Gaussian standard deviation in pixels.
        mode: ``"gaussian"`` (2-D, reflected borders), ``"row1d"`` (1-D along each row only: what
            SSM's released ``test.py`` does by accident, see :mod:`anolearn.methods.ssm`) or ``"none"``.
    """
    if mode not in SMOOTHINGS:
        raise ValueError(f"smoothing must be one of {SMOOTHINGS}, got {mode!r}.")
    if mode == "none" or sigma <= 0:
        return maps
    if mode == "gaussian":
        return gaussian_blur(maps, sigma)
    kernel = gaussian_kernel1d(sigma, device=maps.device, dtype=maps.dtype)  # truncated at 4 sigma, as scipy
    r = kernel.numel() // 2
    b, h, w = maps.shape
    x = maps.reshape(b * h, 1, w)  # every row is a 1-D signal
    if r <= w:  # mirror including the edge pixel: scipy.ndimage's default mode "reflect", as the code
        x = torch.cat([x[..., :r].flip(-1), x, x[..., w - r:].flip(-1)], -1)
    else:
        x = F.pad(x, (r, r), mode="replicate")
    return F.conv1d(x, kernel.view(1, 1, -1)).view(b, h, w)


def k_weight_vector(ks: tuple[int, ...], size: tuple[int, int], mode: str) -> list[float]:
    """Weights of the per-``k`` maps, summing to 1: equal (``"uniform"``) or ``∝ 1 / (number of cells)``
    (``"area"``, the official ``/ N_k^2``: larger cells weigh more)."""
    if mode not in K_WEIGHTS:
        raise ValueError(f"k_weights must be one of {K_WEIGHTS}, got {mode!r}.")
    if mode == "uniform":
        return [1.0 / len(ks)] * len(ks)
    inverse = [1.0 / math.prod(grid_shape(size, k)) for k in ks]
    return [v / sum(inverse) for v in inverse]


class _EpochSampler(Sampler):
    """The image indices of one epoch in a random order, for a DataLoader; resumable mid-epoch.

    It draws exactly what ``RandomSampler(data, generator=generator)`` draws -- one permutation
    when an epoch starts, and one more, unused, when it runs out (``RandomSampler``'s empty
    remainder) -- so the random numbers drawn after it are the same, but it can start an epoch
    at a given batch (``order``, ``start``) after a checkpoint.
    """

    def __init__(self, n: int, generator: torch.Generator):
        self.n, self.generator = n, generator
        self.order: torch.Tensor | None = None  # this epoch's order (None: draw one when iterated)
        self.start = 0  # first position of the order to give
        self.ran_out = False  # the unused permutation of this epoch is drawn

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        if self.order is None:
            self.order, self.start, self.ran_out = torch.randperm(self.n, generator=self.generator), 0, False
        yield from self.order[self.start:].tolist()
        if not self.ran_out:
            torch.randperm(self.n, generator=self.generator)
            self.ran_out = True


class _BatchStream:
    """Endless shuffled training batches ``(B, 3, H, W)`` from a tensor or a dataset of sample dicts.

    Small datasets are stacked into one tensor once (fast); large ones (e.g. Retinal-OCT's 26k
    images) stream through a DataLoader. Shuffling uses ``generator``, so the order is reproducible,
    and :meth:`state_dict` holds where the stream is, so a resumed training goes on with the
    same batches.
    """

    def __init__(self, data, batch_size: int, generator: torch.Generator, num_workers: int = 0):
        self.n = len(data)
        if self.n == 0:
            raise ValueError("fit() got no training images.")
        self.batch_size = min(batch_size, self.n)
        self.per_epoch = self.n // self.batch_size  # incomplete last batches are dropped
        first = data[0] if isinstance(data, torch.Tensor) else _image_of(data[0])
        self.tensor = None
        if isinstance(data, torch.Tensor):
            self.tensor = data
        elif self.n * first.numel() * 4 <= PRELOAD_BYTES:
            self.tensor = torch.stack([_image_of(data[i]) for i in range(self.n)])
        if self.tensor is not None:
            if self.tensor.dim() != 4 or self.tensor.shape[1] != 3:
                raise ValueError(f"Training images must be (N, 3, H, W), got {tuple(self.tensor.shape)}.")
            self.batches = ShuffledBatches(self.n, self.batch_size, generator)
        else:
            self.sampler = _EpochSampler(self.n, generator)
            self.loader = DataLoader(data, batch_size=self.batch_size, drop_last=True, num_workers=num_workers,
                                     sampler=self.sampler, persistent_workers=num_workers > 0,
                                     pin_memory=torch.cuda.is_available())
            self.batches_given = 0  # of this epoch
            self._iterator = None

    def next(self) -> torch.Tensor:
        """The next training batch ``(B, 3, H, W)``."""
        if self.tensor is not None:
            return self.tensor[self.batches.next()]
        while True:
            if self._iterator is None:  # a new epoch, or the rest of one after a resume
                self._iterator = iter(self.loader)
            try:
                batch = next(self._iterator)
            except StopIteration:
                self._iterator, self.sampler.order, self.batches_given = None, None, 0
                continue
            self.batches_given += 1
            return batch["image"] if isinstance(batch, dict) else batch[0]

    def state_dict(self) -> dict:
        if self.tensor is not None:
            return self.batches.state_dict()
        return {"order": self.sampler.order, "given": self.batches_given, "ran_out": self.sampler.ran_out}

    def load_state_dict(self, state: dict) -> None:
        if self.tensor is not None:
            self.batches.load_state_dict(state)
            return
        self.sampler.order, self.sampler.ran_out = state["order"], state["ran_out"]
        self.batches_given, self.sampler.start = state["given"], state["given"] * self.batch_size
        self._iterator = None


def _image_of(sample) -> torch.Tensor:
    if isinstance(sample, dict):
        return sample["image"]
    if isinstance(sample, (tuple, list)):
        return sample[0]
    return sample


@register("riad")
class RIAD(AnomalyMethod):
    """Reconstruction by inpainting.

    Args:
        ks: cell sizes ``K`` in pixels (one drawn per training batch; all used at test time).
        n_masks: number of complementary masks ``n``.
        base_width, depth, up_mode: the U-Net (:class:`anolearn.nn.UNet`; 64, 4, ``"transpose"`` as RIAD).
        steps: optimiser steps (ignored when ``epochs`` is set).
        epochs: passes over the training images (``steps = epochs * (N // batch_size)``).
        batch_size: images per step (each becomes ``n_masks`` masked copies).
        lr, weight_decay: Adam settings.
        lr_milestones: fractions of the run after which the lr is multiplied by ``lr_gamma``.
        lr_gamma: lr factor at each milestone.
        w_l2, w_gms, w_ssim: loss weights.
        sigma: Gaussian smoothing of the anomaly map, in pixels.
        smoothing: ``"gaussian"`` (2-D), ``"row1d"`` or ``"none"``.
        k_weights: ``"uniform"`` (average over ``k``) or ``"area"`` (``/ N_k^2`` as the code).
        faithful_gms: MS-GMS with the code's border handling (see :mod:`anolearn.nn.msgms`).
        train_crop: train on random ``train_crop``-pixel square crops (one place per batch); None =
            whole images. The network is fully convolutional and inpainting is local, so crops
            cost 4x less at half the size: our CPU budget option, not the paper's.
        pad: mirror this many pixels around every image, in training and at test time, and crop
            the map back (:meth:`pad_images`); 0 = none (the papers). ``H + 2 pad`` must suit the
            U-Net (a multiple of ``2**depth``) and every ``k``.
        test_seed: seed of the fixed test masks.
        amp: mixed precision on CUDA (ignored on other devices).
        num_workers: DataLoader workers when a large dataset is streamed.
        seed: seed of the weights, the batch order, the choice of ``k`` and the training masks.

    Example::

        >>> m = RIAD(ks=(2, 4), base_width=8, depth=3, steps=2).fit(torch.rand(4, 3, 32, 32), progress=False)
        >>> out = m.predict(torch.rand(2, 3, 32, 32))
        >>> out.scores.shape, out.maps.shape
        (torch.Size([2]), torch.Size([2, 32, 32]))
    """

    def __init__(self, ks: tuple[int, ...] = (2, 4, 8, 16), n_masks: int = 3, base_width: int = 64, depth: int = 4,
                 up_mode: str = "transpose", steps: int = 1000, epochs: int | None = None, batch_size: int = 8,
                 lr: float = 1e-4, weight_decay: float = 1e-5, lr_milestones: tuple[float, ...] = (),
                 lr_gamma: float = 0.1, w_l2: float = 1.0, w_gms: float = 1.0, w_ssim: float = 1.0,
                 sigma: float = 7.0, smoothing: str = "gaussian", k_weights: str = "uniform",
                 faithful_gms: bool = False, train_crop: int | None = None, pad: int = 0, test_seed: int = 8,
                 amp: bool = True, num_workers: int = 0, seed: int = 0):
        super().__init__()
        if pad < 0:
            raise ValueError(f"pad must be >= 0 pixels, got {pad}.")
        if not ks or any(int(k) != k or k < 1 for k in ks):
            raise ValueError(f"ks must be positive integer cell sizes, got {ks}.")
        if n_masks < 2:
            raise ValueError(f"Inpainting needs n_masks >= 2 complementary masks, got {n_masks}.")
        if smoothing not in SMOOTHINGS:
            raise ValueError(f"smoothing must be one of {SMOOTHINGS}, got {smoothing!r}.")
        if k_weights not in K_WEIGHTS:
            raise ValueError(f"k_weights must be one of {K_WEIGHTS}, got {k_weights!r}.")
        if epochs is None and steps < 1:
            raise ValueError(f"steps must be >= 1 (or set epochs), got {steps}.")
        self.ks, self.n_masks = tuple(int(k) for k in ks), n_masks
        self.base_width, self.depth, self.up_mode = base_width, depth, up_mode
        self.steps, self.epochs, self.batch_size = steps, epochs, batch_size
        self.lr, self.weight_decay = lr, weight_decay
        self.lr_milestones, self.lr_gamma = tuple(lr_milestones), lr_gamma
        self.w_l2, self.w_gms, self.w_ssim = w_l2, w_gms, w_ssim
        self.sigma, self.smoothing, self.k_weights = sigma, smoothing, k_weights
        self.faithful_gms, self.train_crop, self.pad, self.test_seed = faithful_gms, train_crop, pad, test_seed
        self.amp, self.num_workers, self.seed = amp, num_workers, seed
        with torch.random.fork_rng(devices=[]):  # weights depend on `seed` only, not on the global RNG
            torch.manual_seed(seed)
            self.net = self.build_net()
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.history: list[dict[str, float]] = []

    def build_net(self) -> torch.nn.Module:
        """The inpainting network: a U-Net from 3 to 3 channels with ``tanh`` output."""
        return UNet(3, 3, self.base_width, self.depth, up_mode=self.up_mode, out_activation="tanh")

    # ------------------------------------------------------------------ the pieces a chapter shows
    def inpaint(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Run the network on every masked copy, all ``n`` passes as one batch.

        Args:
            images: ``(B, 3, H, W)`` in [0, 1].
            masks: ``(n, B, 1, H, W)`` (or ``(n, 1, 1, H, W)``), 1 = visible.

        Returns:
            ``(n, B, 3, H, W)`` float32 network outputs ``f(x * M_i)``.
        """
        n, b = masks.shape[0], images.shape[0]
        masked = (images[None] * masks).flatten(0, 1)  # (n B, 3, H, W)
        with self.autocast():
            out = self.net(masked)
        return out.float().view(n, b, *out.shape[1:])

    def test_masks(self, k: int, size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
        """One fixed set of ``n`` masks ``(n, 1, 1, H, W)`` for cell size ``k``, shared by a whole batch."""
        return grid_masks(k, size, self.n_masks, 1, generator, self.device)

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor, k: int, generator: torch.Generator | None = None) -> dict:
        """Composed reconstruction for one cell size (for figures).

        Args:
            images: ``(B, 3, H, W)``.
            k: cell size.
            generator: source of the masks (default: seeded with ``test_seed``).

        Returns:
            dict with ``masks (n, 1, 1, H, W)``, ``outputs (n, B, 3, H, W)``, ``x_hat (B, 3, H, W)``
            and ``map (B, H, W)`` (the unsmoothed MS-GMS map).
        """
        self.eval()
        x = self.pad_images(images.to(self.device))
        generator = generator or make_generator(self.test_seed, self.device)
        masks = self.test_masks(k, x.shape[-2:], generator)
        outputs = self.inpaint(x, masks)
        x_hat = compose(outputs, masks)
        out = {"masks": masks, "outputs": outputs, "x_hat": x_hat, "map": msgms_map(x, x_hat, faithful=self.faithful_gms)}
        return {name: self.crop_border(t) for name, t in out.items()}

    def reconstruction_losses(self, x: torch.Tensor, x_hat: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"l2", "msgms", "ssim", "loss"}`` with ``loss = w_l2 l2 + w_gms msgms + w_ssim ssim`` (float32)."""
        parts = {"l2": F.mse_loss(x_hat, x), "msgms": msgms_loss(x, x_hat, faithful=self.faithful_gms),
                 "ssim": ssim_loss(x, x_hat)}
        parts["loss"] = self.w_l2 * parts["l2"] + self.w_gms * parts["msgms"] + self.w_ssim * parts["ssim"]
        return parts

    def training_loss(self, x: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss of one batch ``x (B, 3, H, W)`` under masks ``(n, B, 1, H, W)``."""
        x_hat = compose(self.inpaint(x, masks), masks)
        return self.reconstruction_losses(x, x_hat)

    # ------------------------------------------------------------------ borders
    def pad_images(self, x: torch.Tensor) -> torch.Tensor:
        """Mirror ``pad`` pixels around ``x (B, 3, H, W)`` -> ``(B, 3, H + 2 pad, W + 2 pad)``.

        Near the border an inpainting network has context on one side only, so its errors, and the
        anomaly map, grow towards the edges and peak in the corners of *normal* images. Mirroring the
        image gives border pixels context on every side; training sees the same mirrored borders.
        """
        p = self.pad
        return F.pad(x, (p, p, p, p), mode="reflect") if p else x

    def crop_border(self, t: torch.Tensor) -> torch.Tensor:
        """Undo :meth:`pad_images` on any ``(..., H + 2 pad, W + 2 pad)`` tensor."""
        p = self.pad
        return t[..., p:t.shape[-2] - p, p:t.shape[-1] - p] if p else t

    # ------------------------------------------------------------------ training
    def random_crop(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Crop a training batch ``(B, 3, H, W)`` to ``train_crop`` pixels (one random place per batch)."""
        c = self.train_crop
        if not c or (c >= x.shape[-2] and c >= x.shape[-1]):
            return x
        i = int(torch.randint(x.shape[-2] - c + 1, (1,), generator=generator)) if x.shape[-2] > c else 0
        j = int(torch.randint(x.shape[-1] - c + 1, (1,), generator=generator)) if x.shape[-1] > c else 0
        return x[..., i:i + c, j:j + c]

    def holdout(self, train, generator: torch.Generator):
        """Split off images not used for training (none for RIAD; SSM calibrates its score on them)."""
        return train, None

    def after_fit(self, train, held_out, progress: bool) -> None:
        """Hook run after training, given the training and held-out images (SSM calibrates its score here)."""

    def fit(self, train: Dataset | torch.Tensor, progress: bool = True, checkpoint: str | Path | None = None,
            checkpoint_every: float = CHECKPOINT_EVERY) -> RIAD:
        """Train on normal images: a dataset of sample dicts or a tensor ``(N, 3, H, W)`` in [0, 1].

        ``checkpoint``: a file to save the training's progress to every ``checkpoint_every``
        seconds, and to resume from (:mod:`anolearn.methods.training`).
        """
        device = self.device
        run = Training(self, checkpoint, checkpoint_every, data=train)
        g = torch.Generator().manual_seed(self.seed)  # batch order and choice of k (CPU)
        g_masks = make_generator(self.seed + 1, device)  # training masks, drawn on the device
        train, held_out = self.holdout(train, g)
        batches = _BatchStream(train, self.batch_size, g, self.num_workers)
        steps = self.epochs * batches.per_epoch if self.epochs else self.steps
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        milestones = sorted({max(1, round(f * steps)) for f in self.lr_milestones})
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=self.lr_gamma)
        scaler = self.grad_scaler(device)
        self.history = []  # one record per step
        self.train()
        loop = run.stage("train", steps, progress, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                         generator=g, mask_generator=g_masks, batches=batches, history=self.history)
        for step in loop:
            x = self.random_crop(self.pad_images(batches.next()), g).to(device, non_blocking=True)
            k = self.ks[int(torch.randint(len(self.ks), (1,), generator=g))]
            masks = grid_masks(k, x.shape[-2:], self.n_masks, x.shape[0], g_masks, device)  # (n, B, 1, H, W)
            parts = self.training_loss(x, masks)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(parts["loss"]).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            record = {"step": step, "k": k, "lr": optimizer.param_groups[0]["lr"]}
            record.update({name: value.item() for name, value in parts.items()})
            self.history.append(record)
            if step % 10 == 0 or step == steps - 1:
                loop.show(loss=f"{record['loss']:.4f}")
        self.eval()
        self.fitted.fill_(True)
        self.after_fit(train, held_out, progress)
        return self

    # ------------------------------------------------------------------ inference
    def is_fitted(self) -> bool:
        return bool(self.fitted)

    def combine_k(self, per_k: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        """Weighted sum of per-``k`` maps ``(B, H, W)`` (weights from ``k_weights``, summing to 1)."""
        weights = k_weight_vector(self.ks, size, self.k_weights)
        return sum(w * m for w, m in zip(weights, per_k))

    @torch.no_grad()
    def anomaly_map(self, images: torch.Tensor, smooth: bool = True) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, H, W)`` MS-GMS anomaly map, ensembled over ``ks`` (and smoothed)."""
        self.check_fitted()
        self.eval()
        x = self.pad_images(images.to(self.device))  # (B, 3, H + 2 pad, W + 2 pad)
        size = x.shape[-2:]
        generator = make_generator(self.test_seed, self.device)
        per_k = []
        for k in self.ks:
            masks = self.test_masks(k, size, generator)  # (n, 1, 1, H', W')
            x_hat = compose(self.inpaint(x, masks), masks)  # (B, 3, H', W')
            per_k.append(msgms_map(x, x_hat, faithful=self.faithful_gms))
        maps = self.combine_k(per_k, size)
        maps = smooth_maps(maps, self.sigma, self.smoothing) if smooth else maps
        return self.crop_border(maps)  # (B, H, W)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> Prediction:
        maps = self.anomaly_map(images)  # (B, H, W)
        return Prediction(scores=maps.flatten(1).amax(1), maps=maps)


__all__ = ["RIAD", "k_weight_vector", "smooth_maps"]
