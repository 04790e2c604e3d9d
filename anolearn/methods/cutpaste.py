"""CutPaste: learn to spot forgeries, then score with a density of normal embeddings.

**CutPaste** (Li, Sohn, Yoon, Pfister, CVPR 2021). An encoder ``f`` with an MLP head is trained
with cross-entropy to classify each training sample into ``K`` classes: class 0 = a normal
image (randomly translated and colour-jittered), class ``k >= 1`` = the same images forged by
forger ``k`` (CutPaste, CutPaste-Scar, ...):

    L = - 1/(K B) sum_{k=0}^{K-1} sum_{b=1}^{B} log softmax(head(f(F_k(x_b))))_k,     F_0 = identity.

At test time the head is dropped. A Gaussian (:mod:`.gde`) is fitted to the pooled embeddings
``f(x)`` of the normal training images, and the image score is the Mahalanobis distance of
``f(x_test)``. For **localisation** the paper's patch-level variant embeds every ``p x p`` patch
of the image at stride ``s``, fits a second Gaussian to the patch embeddings of the normal
training images, scores each test patch, and spreads each patch's score over its pixels with
a Gaussian kernel (``sigma``), normalised by the summed kernel weights::

    A(x)_{ij} = sum_{patches P containing ij} g_P(ij) d(P) / sum_P g_P(ij)

The same protocol with other negatives gives other methods: **CutSwap** is CutPaste trained on
CutSwap forgeries (``forger="cutswap"``, registered as ``"cutswap"`` in
:mod:`anolearn.methods.cutswap`, which says what is known of it).

Forgers (``forger`` argument; ``K`` = number of classes):

=====================  ===  ===========================================================
``"cutpaste"``          2   normal vs CutPaste (rectangles)
``"scar"``              2   normal vs CutPaste-Scar (thin rotated strips)
``"union"``             2   normal vs CutPaste or Scar (one of the two per sample)
``"3way"``              3   normal vs CutPaste vs Scar (the paper's best)
``"cutswap"``           2   normal vs CutSwap
``"cutswap+cutpaste"``  3   normal vs CutPaste vs CutSwap
=====================  ===  ===========================================================

Settings. Paper [secondary sources]: ResNet-18 from scratch, 256 x 256 images, batches of 32
images per class (64 for 2-way, 96 for 3-way), SGD lr 0.03, momentum 0.9, cosine schedule, 256
epochs of 256 steps, "random translation and colour jitter"; patch-level localisation on 32 x 32
patches with stride 4 at 256 x 256 (another secondary note gives 64 x 64; unconfirmed). These are
the full profile's ``schedules["cutpaste"]``. The quick profile (:mod:`anolearn.config`) must
train two models per category in well under a minute of one CPU core: a narrow ResNet (width 16,
one block per stage, 0.3 M parameters) trained for 250 Adam steps (lr 1e-3, which converges faster
than SGD in so few steps) on random 64 x 64 crops of the 128 x 128 images, 16 normal images per
step; maps from 32 x 32 patches at stride 16 (49 per image) with ``sigma = 8``.

Our choices where the paper is silent (all parameters): embeddings are L2-normalised before the
density (as a public re-implementation does); the translation uses reflection padding; one
encoder serves both the image-level and the patch-level density (the paper trains a separate
patch-level model on patches; ``train_crop`` trains on random crops, which is that model, and
the quick profile uses it for the one model); without localisation (``patch_size=None``) the
map is the image score everywhere. For CutSwap the LayerCAM maps of the training images are
computed once before training and translated/cropped with the images (``cache_saliency``): a
LayerCAM pass costs a forward and a backward pass of the pretrained network, and the saliency
of a normal training image does not change between steps (only its augmentation does).

GPU: forging and augmentation run on the device; training and embedding use mixed precision
(bfloat16 where supported, else float16 with loss scaling) when the device is CUDA.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..forge.color import color_jitter
from ..forge.result import Forged
from ..seed import make_generator
from .base import AnomalyMethod, Prediction, collect_images, register
from .cutpaste_nets import ProjectionHead, build_encoder
from .gde import GaussianDensity
from .training import CHECKPOINT_EVERY, Training

FORGERS = {"cutpaste": 2, "scar": 2, "union": 2, "3way": 3, "cutswap": 2, "cutswap+cutpaste": 3}


def make_forgers(name: str, options: dict | None = None) -> list[Callable[..., Forged]]:
    """The forgers of the classes ``1..K-1`` for a forger name (see the module table).

    Args:
        name: a key of ``FORGERS``.
        options: keyword arguments for the CutSwap forger (ignored by the CutPaste ones).

    Returns:
        list of callables ``forger(images (B, 3, H, W), generator) -> Forged``.
    """
    from ..forge.cutpaste import CutPaste, CutPasteScar, CutPasteUnion

    if name not in FORGERS:
        raise ValueError(f"Unknown forger {name!r}; choose one of {', '.join(FORGERS)}.")
    if name == "cutpaste":
        return [CutPaste()]
    if name == "scar":
        return [CutPasteScar()]
    if name == "union":
        return [CutPasteUnion(p_scar=0.5)]
    if name == "3way":
        return [CutPaste(), CutPasteScar()]
    try:
        from ..forge.cutswap import CutSwap
    except ImportError as err:
        raise ImportError(f"forger {name!r} needs anolearn.forge.cutswap, which could not be imported: {err}") from err
    swap = CutSwap(**(options or {}))
    return [swap] if name == "cutswap" else [CutPaste(), swap]


def _is_cutswap(forger) -> bool:
    try:
        from ..forge.cutswap import CutSwap
    except ImportError:
        return False
    return isinstance(forger, CutSwap)


def translate(images: torch.Tensor, max_shift: float, generator: torch.Generator | None) -> torch.Tensor:
    """Shift each image by up to ``max_shift`` of its size in x and y (reflection at the borders).

    Args:
        images: ``(B, C, H, W)``.
        max_shift: fraction of the side, e.g. 0.1; 0 returns the input.

    Returns:
        ``(B, C, H, W)``.
    """
    if max_shift <= 0:
        return images
    b, c, h, w = images.shape
    ty, tx = int(round(max_shift * h)), int(round(max_shift * w))
    if ty == 0 and tx == 0:
        return images
    padded = F.pad(images, (tx, tx, ty, ty), mode="reflect")  # (B, C, H + 2ty, W + 2tx)
    oy = torch.randint(0, 2 * ty + 1, (b,), generator=generator, device=images.device)
    ox = torch.randint(0, 2 * tx + 1, (b,), generator=generator, device=images.device)
    rows = oy[:, None] + torch.arange(h, device=images.device)  # (B, H)
    cols = ox[:, None] + torch.arange(w, device=images.device)  # (B, W)
    batch = torch.arange(b, device=images.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def random_crop(images: torch.Tensor, size: int, generator: torch.Generator | None) -> torch.Tensor:
    """One random ``size x size`` crop per image: ``(B, C, H, W)`` -> ``(B, C, size, size)``."""
    b, c, h, w = images.shape
    if size > min(h, w):
        raise ValueError(f"train_crop={size} is larger than the images ({h} x {w}).")
    oy = torch.randint(0, h - size + 1, (b,), generator=generator, device=images.device)
    ox = torch.randint(0, w - size + 1, (b,), generator=generator, device=images.device)
    rows = oy[:, None] + torch.arange(size, device=images.device)
    cols = ox[:, None] + torch.arange(size, device=images.device)
    batch = torch.arange(b, device=images.device)[:, None, None]
    return images.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def translate_crop(images: torch.Tensor, max_shift: float, size: int | None,
                   generator: torch.Generator | None) -> torch.Tensor:
    """:func:`translate` followed by :func:`random_crop`, as one gather (same draws, same result).

    Args:
        images: ``(B, C, H, W)``.
        max_shift: as :func:`translate` (0 = no translation).
        size: crop side, or None for no crop.

    Returns:
        ``(B, C, size, size)`` (``(B, C, H, W)`` without a crop).
    """
    b, c, h, w = images.shape
    dev = images.device
    ty, tx = (int(round(max_shift * h)), int(round(max_shift * w))) if max_shift > 0 else (0, 0)
    oy = torch.zeros(b, dtype=torch.long, device=dev)
    ox = torch.zeros(b, dtype=torch.long, device=dev)
    source = images
    if ty or tx:  # the draws of translate()
        source = F.pad(images, (tx, tx, ty, ty), mode="reflect")
        oy = torch.randint(0, 2 * ty + 1, (b,), generator=generator, device=dev)
        ox = torch.randint(0, 2 * tx + 1, (b,), generator=generator, device=dev)
    out_h, out_w = h, w
    if size:  # the draws of random_crop()
        if size > min(h, w):
            raise ValueError(f"train_crop={size} is larger than the images ({h} x {w}).")
        oy = oy + torch.randint(0, h - size + 1, (b,), generator=generator, device=dev)
        ox = ox + torch.randint(0, w - size + 1, (b,), generator=generator, device=dev)
        out_h = out_w = size
    if source is images and out_h == h and out_w == w:
        return images
    rows = oy[:, None] + torch.arange(out_h, device=dev)  # (B, h')
    cols = ox[:, None] + torch.arange(out_w, device=dev)  # (B, w')
    batch = torch.arange(b, device=dev)[:, None, None]
    return source[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def gaussian_patch_kernel(size: int, sigma: float, device=None) -> torch.Tensor:
    """``(size, size)`` Gaussian weights centred on the patch (peak 1)."""
    x = torch.arange(size, device=device, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return g[:, None] * g[None, :]


def patches_to_map(patch_scores: torch.Tensor, size: int, stride: int, sigma: float,
                   out_size: tuple[int, int]) -> torch.Tensor:
    """Spread patch scores over their pixels with a Gaussian kernel ("receptive-field upsampling").

    Args:
        patch_scores: ``(B, nh, nw)`` score of the patch whose top-left corner is ``(i s, j s)``.
        size, stride: patch side and stride in pixels.
        sigma: Gaussian width in pixels (weights of a patch's score at its own pixels).
        out_size: ``(H, W)``; pixels right/below the last patch copy the nearest covered pixel.

    Returns:
        ``(B, H, W)`` float.
    """
    k = gaussian_patch_kernel(size, sigma, patch_scores.device).view(1, 1, size, size)
    s = patch_scores.float()[:, None]  # (B, 1, nh, nw)
    num = F.conv_transpose2d(s, k, stride=stride)  # (B, 1, (nh-1)s+size, (nw-1)s+size)
    den = F.conv_transpose2d(torch.ones_like(s[:1]), k, stride=stride)
    maps = num / den
    pad_h, pad_w = out_size[0] - maps.shape[-2], out_size[1] - maps.shape[-1]
    if pad_h or pad_w:
        maps = F.pad(maps, (0, pad_w, 0, pad_h), mode="replicate")
    return maps[:, 0]


@register("cutpaste")
class CutPasteGDE(AnomalyMethod):
    """CutPaste-style self-supervised training + Gaussian density scoring (image and patch level).

    Args:
        forger: which negatives (a key of ``FORGERS``); ``None`` = the class default
            (``"cutpaste"`` here, ``"cutswap"`` for :class:`CutSwapGDE`).
        forger_options: keyword arguments of the CutSwap forger (plain values).
        encoder: ``"scratch"`` (ResNet-18-style, random init) or a backbone name (fine-tuned).
        width, blocks: size of the scratch encoder (64 and (2, 2, 2, 2) = ResNet-18).
        pretrained: ImageNet weights for a backbone encoder.
        finetune_blocks: fine-tune only the backbone's last blocks (None = all; see
            :class:`~anolearn.methods.cutpaste_nets.PretrainedEncoder`). Our choice, not the paper's:
            it makes the saved model a few MB instead of about 20.
        head: hidden sizes of the MLP projection head.
        steps: optimisation steps.
        batch_size: normal images per step (the step sees ``K * batch_size`` samples).
        lr, momentum, weight_decay: SGD (or Adam: ``optimizer="adam"``, momentum unused), cosine schedule.
        optimizer: ``"sgd"`` or ``"adam"``.
        translate: random translation of the normal images, fraction of the side.
        jitter: colour-jitter strength of the normal images (brightness, contrast, saturation, hue).
        train_crop: train on random ``train_crop`` crops (the paper's patch-level model); None = whole images.
        patch_size, patch_stride, patch_sigma: patch-level localisation (None size = no localisation).
        max_patches: fit the patch Gaussian on at most this many random training patches.
        shrinkage: covariance shrinkage of both Gaussians (see :class:`GaussianDensity`).
        normalize: L2-normalise embeddings before the density.
        cache_saliency: CutSwap only: compute the saliency maps of the training images once, before
            training, and translate/crop them with the images (instead of a LayerCAM pass per step).
        amp: mixed precision on CUDA (ignored elsewhere).
        seed: seeds the weights, the sampling, the augmentation and the forging.

    Attributes:
        history: ``{"loss": [...], "accuracy": [...]}`` per training step (classification of the ``K``
            classes), for training curves; not stored in checkpoints.
    """

    default_forger = "cutpaste"
    setting_attributes = {"forger": "forger_name", "encoder": "encoder_name", "head": "head_sizes",
                          "optimizer": "optimizer_name"}  # ``self.encoder`` and ``self.head`` are networks
    amp_bfloat16 = True  # bfloat16 where the GPU has it (no loss scaling needed)

    def __init__(self, forger: str | None = None, forger_options: dict | None = None, encoder: str = "scratch",
                 width: int = 64, blocks: Sequence[int] = (2, 2, 2, 2), pretrained: bool = True,
                 finetune_blocks: int | None = None, head: Sequence[int] = (512, 128), steps: int = 1000,
                 batch_size: int = 32, lr: float = 0.03,
                 momentum: float = 0.9, weight_decay: float = 3e-5, optimizer: str = "sgd", translate: float = 0.1,
                 jitter: float = 0.1, train_crop: int | None = None, patch_size: int | None = 32,
                 patch_stride: int = 4, patch_sigma: float = 4.0, max_patches: int | None = 200_000,
                 shrinkage: float | str | None = "ledoit_wolf", normalize: bool = True, cache_saliency: bool = True,
                 amp: bool = True, seed: int = 0):
        super().__init__()
        forger = forger or self.default_forger
        if forger not in FORGERS:
            raise ValueError(f"Unknown forger {forger!r}; choose one of {', '.join(FORGERS)}.")
        if optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}.")
        if patch_size is not None and (patch_size < 1 or patch_stride < 1):
            raise ValueError(f"patch_size and patch_stride must be positive, got {patch_size}, {patch_stride}.")
        if steps < 1 or batch_size < 1:
            raise ValueError(f"steps and batch_size must be positive, got {steps}, {batch_size}.")
        self.forger_name, self.forger_options = forger, dict(forger_options or {})
        self.encoder_name, self.width, self.blocks, self.pretrained = encoder, width, tuple(blocks), pretrained
        self.finetune_blocks = finetune_blocks
        self.head_sizes, self.steps, self.batch_size = tuple(head), steps, batch_size
        self.lr, self.momentum, self.weight_decay, self.optimizer_name = lr, momentum, weight_decay, optimizer
        self.translate, self.jitter, self.train_crop = translate, jitter, train_crop
        self.patch_size, self.patch_stride, self.patch_sigma = patch_size, patch_stride, patch_sigma
        self.max_patches, self.shrinkage, self.normalize, self.amp, self.seed = (
            max_patches, shrinkage, normalize, amp, seed)
        self.cache_saliency = cache_saliency
        self.num_classes = FORGERS[forger]
        with torch.random.fork_rng(devices=[]):  # weights depend on `seed` only, not on global state
            torch.manual_seed(seed)
            self.encoder = build_encoder(encoder, width, self.blocks, pretrained, finetune_blocks)
            self.head = ProjectionHead(self.encoder.dim, self.num_classes, self.head_sizes)
        self.gde = GaussianDensity(shrinkage)
        self.patch_gde = GaussianDensity(shrinkage)
        self.history: dict[str, list[float]] = {"loss": [], "accuracy": []}

    # ------------------------------------------------------------------ helpers
    def augment(self, images: torch.Tensor, generator: torch.Generator | None,
                extra: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The normal images of a step: random translation, colour jitter and (optional) crop.

        Args:
            images: ``(B, 3, H, W)`` in [0, 1].
            extra: optional ``(B, L, H, W)`` maps (cached saliency) that move with the images.

        Returns:
            ``(images (B, 3, h, w), extra (B, L, h, w) or None)``; ``h = train_crop`` if set, else ``H``.
        """
        x = images if extra is None else torch.cat([images, extra], 1)
        x = translate_crop(x, self.translate, self.train_crop, generator)
        x, extra = (x, None) if extra is None else (x[:, :3], x[:, 3:])
        if self.jitter:
            x = color_jitter(x, self.jitter, self.jitter, self.jitter, min(self.jitter, 0.5), generator=generator)
        return x, extra

    def forge_batch(self, normal: torch.Tensor, forgers: Sequence[Callable[..., Forged]],
                    generator: torch.Generator | None,
                    saliency: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Normal images and one forged copy per forger, with class labels.

        Args:
            normal: ``(B, 3, H, W)`` in [0, 1].
            forgers: the forgers of classes ``1..K-1``.
            saliency: optional precomputed saliency maps (list of ``(B, 1, H, W)``) for CutSwap forgers.

        Returns:
            ``(images (K B, 3, H, W), labels (K B,) long)``, class ``k`` in rows ``k B .. (k+1) B - 1``.
        """
        b = normal.shape[0]
        parts = [normal]
        for forger in forgers:
            if saliency is not None and _is_cutswap(forger):
                parts.append(forger(normal, generator=generator, saliency=saliency).images)
            else:
                parts.append(forger(normal, generator=generator).images)
        labels = torch.arange(len(parts), device=normal.device).repeat_interleave(b)
        return torch.cat(parts), labels

    @torch.no_grad()
    def saliency_cache(self, images: torch.Tensor, forgers: Sequence[Callable[..., Forged]],
                       batch_size: int = 32) -> torch.Tensor | None:
        """Saliency maps ``(N, L, H, W)`` of the training images for the CutSwap forger (None if none)."""
        swap = next((f for f in forgers if _is_cutswap(f)), None)
        if swap is None or not self.cache_saliency:
            return None
        from ..forge.cutswap import saliency_levels

        return torch.cat([torch.cat(saliency_levels(x, swap.saliency), 1) for x in images.split(batch_size)])

    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            f = self.encoder(images)  # (B, D)
        f = f.float()
        return F.normalize(f, dim=1) if self.normalize else f

    @torch.no_grad()
    def embed(self, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Pooled embeddings ``(B, D)`` of whole images (eval mode; L2-normalised if ``normalize``)."""
        was_training = self.training
        self.eval()
        out = torch.cat([self._embed(x.to(self.device)) for x in images.split(batch_size)])
        self.train(was_training)
        return out

    @torch.no_grad()
    def embed_patches(self, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Embeddings of all ``patch_size`` patches at ``patch_stride``: ``(B, nh, nw, D)``."""
        if self.patch_size is None:
            raise RuntimeError("This model was built without localisation (patch_size=None).")
        p, s = self.patch_size, self.patch_stride
        b, c, h, w = images.shape
        if p > min(h, w):
            raise ValueError(f"patch_size={p} is larger than the images ({h} x {w}).")
        tiles = images.unfold(2, p, s).unfold(3, p, s)  # (B, 3, nh, nw, p, p)
        nh, nw = tiles.shape[2], tiles.shape[3]
        tiles = tiles.permute(0, 2, 3, 1, 4, 5).reshape(-1, c, p, p)  # (B nh nw, 3, p, p)
        return self.embed(tiles, batch_size).view(b, nh, nw, -1)

    # ------------------------------------------------------------------ training and scoring
    def fit(self, train, progress: bool = True, checkpoint: str | Path | None = None,
            checkpoint_every: float = CHECKPOINT_EVERY) -> "CutPasteGDE":
        """Train the classifier on normal images and their forgeries, then fit the Gaussians.

        ``checkpoint``: a file to save the training's progress to every ``checkpoint_every``
        seconds, and to resume from (:mod:`anolearn.methods.training`).
        """
        device = self.device
        images = collect_images(train, None, device)  # (N, 3, H, W)
        if images.shape[0] < 2:
            raise ValueError("fit() needs at least two normal training images.")
        run = Training(self, checkpoint, checkpoint_every, data=images)
        forgers = make_forgers(self.forger_name, self.forger_options)
        generator = make_generator(self.seed, device)  # augmentation and forging, on the device
        saliency = self.saliency_cache(images, forgers)  # (N, L, H, W) or None
        sampler = make_generator(self.seed + 1)  # which images each step uses (CPU)
        params = [p for p in self.parameters() if p.requires_grad]
        if self.optimizer_name == "sgd":
            opt = torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        else:
            opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.steps)
        scaler = self.grad_scaler(device)
        losses, accs = [], []  # per step, on the device (read once, at the end)
        self.train()
        loop = run.stage("train", self.steps, progress, desc=f"{self.name} ({self.forger_name}): train",
                         optimizer=opt, scheduler=schedule, scaler=scaler, generator=generator, sampler=sampler,
                         losses=losses, accuracies=accs)
        for step in loop:
            idx = torch.randint(images.shape[0], (self.batch_size,), generator=sampler).to(device)
            with torch.no_grad():
                normal, sal = self.augment(images[idx], generator, None if saliency is None else saliency[idx])
                sal = None if sal is None else list(sal.split(1, dim=1))
                batch, labels = self.forge_batch(normal, forgers, generator, sal)
            with self.autocast():
                logits = self.head(self.encoder(batch))  # (K B, K)
                loss = F.cross_entropy(logits.float(), labels)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            schedule.step()
            losses.append(loss.detach())
            accs.append((logits.detach().argmax(1) == labels).float().mean())
            if progress and (step % 20 == 0 or step == self.steps - 1):
                loop.show(loss=f"{losses[-1].item():.3f}", acc=f"{accs[-1].item():.2f}")
        self.history = {"loss": torch.stack(losses).tolist(), "accuracy": torch.stack(accs).tolist()}
        if not all(math.isfinite(v) for v in self.history["loss"][-5:]):
            raise RuntimeError("Training diverged (loss is NaN/inf); lower lr.")
        self.eval()
        self.fit_density(images, progress)
        return self

    @torch.no_grad()
    def fit_density(self, images: torch.Tensor, progress: bool = False) -> "CutPasteGDE":
        """Fit the image-level (and patch-level) Gaussians to normal images ``(N, 3, H, W)``."""
        self.gde.fit(self.embed(images))
        if self.patch_size is not None:
            chunks = [self.embed_patches(x).flatten(0, 2) for x in tqdm(
                images.split(16), desc=f"{self.name}: patch embeddings", disable=not progress, leave=False)]
            feats = torch.cat(chunks)  # (N nh nw, D)
            if self.max_patches is not None and feats.shape[0] > self.max_patches:
                g = make_generator(self.seed + 2)
                feats = feats[torch.randperm(feats.shape[0], generator=g)[: self.max_patches].to(feats.device)]
            self.patch_gde.fit(feats)
        return self

    def prepare(self, images: torch.Tensor, progress: bool = False) -> None:
        """Recompute what ``fit`` derives from the training images once the networks are trained: the
        two Gaussians (:meth:`fit_density`). A shipped model leaves them out of its file (their
        precision matrices do not fit in float16) and :func:`~anolearn.shipped.load_shipped` calls this."""
        self.eval()
        self.fit_density(images, progress)

    def is_fitted(self) -> bool:
        return self.gde.fitted

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> Prediction:
        self.check_fitted()
        images = images.to(self.device)
        b, _, h, w = images.shape
        scores = self.gde.score(self.embed(images))  # (B,)
        if self.patch_size is None:
            return Prediction(scores=scores, maps=scores.view(b, 1, 1).expand(b, h, w).clone())
        feats = self.embed_patches(images)  # (B, nh, nw, D)
        nh, nw = feats.shape[1:3]
        patch_scores = self.patch_gde.score(feats.flatten(0, 2)).view(b, nh, nw)
        maps = patches_to_map(patch_scores, self.patch_size, self.patch_stride, self.patch_sigma, (h, w))
        return Prediction(scores=scores, maps=maps)


__all__ = ["FORGERS", "CutPasteGDE", "make_forgers", "patches_to_map", "random_crop", "translate", "translate_crop"]
