"""The contract every method in the book implements.

Chapters, the benchmark and the command line treat all methods alike through four calls::

    method = SomeMethod(**settings)
    method.fit(train_dataset)                  # normal images only; shows a progress bar
    out = method.predict(images)               # images (B, 3, H, W) in [0, 1]
    out.scores  # (B,)      image anomaly scores, higher = more anomalous
    out.maps    # (B, H, W) pixel anomaly maps at the input resolution, higher = more anomalous
    method.save("run/model.pt"); same = load_method("run/model.pt")

``save`` writes only tensors and plain Python values, so :func:`load_method` can use
``torch.load(..., weights_only=True)``: loading a checkpoint never executes code from the
file. A method registers itself with :func:`register` under a short name, which the
checkpoint stores.

A method that trains for long takes two more arguments,
``fit(train, checkpoint="run/training.pt", checkpoint_every=300)``: every few minutes its
training writes a checkpoint there, and the same call after an interruption resumes from it
(:mod:`anolearn.methods.training`). Methods that learn in one pass over the data (the
baselines) accept and ignore them.

What every method shares lives here, so that a method's own file holds only its idea:

* :func:`resize` -- images to the size a network runs at, and maps back;
* :func:`collect_images` -- a training set as one ``(N, 3, H, W)`` tensor at that size;
* :meth:`AnomalyMethod.autocast` / :meth:`~AnomalyMethod.grad_scaler` -- mixed precision, decided
  in one place (:meth:`~AnomalyMethod.amp_dtype`);
* :meth:`AnomalyMethod.check_fitted` -- one error for a method used before ``fit``;
* :meth:`AnomalyMethod.config` -- the settings, read from the constructor's signature;
* the training loop, loss log and checkpoints: :mod:`anolearn.methods.training`.
"""
from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from .registry import METHODS, register
from .settings import check_settings
from .training import CHECKPOINT_EVERY, atomic_save

CHECKPOINT_FORMAT = 1


@dataclass
class Prediction:
    """Output of :meth:`AnomalyMethod.predict`: ``scores (B,)`` and ``maps (B, H, W)``."""

    scores: torch.Tensor
    maps: torch.Tensor


def image_batches(data: Dataset | torch.Tensor, batch_size: int, shuffle: bool = False, generator=None):
    """Yield ``(B, 3, H, W)`` image batches from a dataset of sample dicts or an image tensor."""
    if isinstance(data, torch.Tensor):
        data = TensorDataset(data)
    loader = DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator)
    for batch in loader:
        yield batch["image"] if isinstance(batch, dict) else batch[0]


def resize(images: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``(B, C, H, W)`` to ``size`` (antialiased when shrinking); a no-op at that size.

    Methods whose networks run at a fixed ``input_size`` resize images with it, and their maps
    back to the images' size, so that metrics are computed at the dataset's resolution.
    """
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(images.shape[-2:]) == size:
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=size[0] < images.shape[-2])


def collect_images(train: Dataset | torch.Tensor, size: int | None = None,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """All training images as one float tensor ``(N, 3, s, s)`` on ``device``, resized to ``size``
    (None = as given); resized 64 at a time, so the full-size images are never all in memory."""
    chunks = []
    for batch in image_batches(train, 64):
        batch = batch.to(device).float()
        if batch.dim() != 4 or batch.shape[1] != 3:
            raise ValueError(f"Training images must be (N, 3, H, W), got {tuple(batch.shape)}.")
        chunks.append(resize(batch, size) if size else batch)
    if not chunks:
        raise ValueError("fit() got no training images.")
    return torch.cat(chunks)


class AnomalyMethod(nn.Module):
    """Base class of every method. Subclasses implement :meth:`fit`, :meth:`predict` and
    :meth:`is_fitted`, and keep each constructor argument in the attribute of the same name
    (see :meth:`config`)."""

    name: ClassVar[str] = "method"
    #: Settings kept under another attribute name, because that name holds something else (a
    #: network, say): ``{setting: attribute}``.
    setting_attributes: ClassVar[dict[str, str]] = {}
    #: Mixed precision on CUDA (when the method's ``amp`` setting is on) runs in float16, with a
    #: gradient scaler against underflow; a method that sets this runs in bfloat16 where the GPU
    #: supports it (no scaler needed), else float16.
    amp_bfloat16: ClassVar[bool] = False

    def fit(self, train: Dataset | torch.Tensor, progress: bool = True, checkpoint: str | Path | None = None,
            checkpoint_every: float = CHECKPOINT_EVERY) -> "AnomalyMethod":
        raise NotImplementedError

    def predict(self, images: torch.Tensor) -> Prediction:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this method: each name of the constructor's
        signature with its value, read from the attribute of that name (or of
        :attr:`setting_attributes`). Plain values only (ints, floats, strings, tuples, ...)."""
        return {name: getattr(self, self.setting_attributes.get(name, name))
                for name in inspect.signature(type(self)).parameters}

    @property
    def device(self) -> torch.device:
        for tensor in list(self.parameters()) + list(self.buffers()):
            return tensor.device
        return torch.device("cpu")

    # ------------------------------------------------------------------ fitted check
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` has run (read from the fitted state, so it holds after loading)."""
        raise NotImplementedError

    def check_fitted(self) -> None:
        """Raise a clear error when the method is used before :meth:`fit`."""
        if not self.is_fitted():
            raise RuntimeError(f"Call fit() on normal training images before using {type(self).__name__} "
                               f"for prediction.")

    # ------------------------------------------------------------------ mixed precision
    def amp_dtype(self, device: torch.device | None = None) -> torch.dtype | None:
        """The dtype mixed precision runs in on ``device`` (default: the method's), or None for
        float32: only on CUDA, only when the method's ``amp`` setting is on."""
        device = torch.device(device) if device is not None else self.device
        if not getattr(self, "amp", False) or device.type != "cuda":
            return None
        return torch.bfloat16 if self.amp_bfloat16 and torch.cuda.is_bf16_supported() else torch.float16

    def autocast(self, device: torch.device | None = None):
        """``torch.autocast`` in :meth:`amp_dtype` (a no-op context where that is float32)."""
        dtype = self.amp_dtype(device)
        return contextlib.nullcontext() if dtype is None else torch.autocast("cuda", dtype=dtype)

    def grad_scaler(self, device: torch.device | None = None) -> torch.amp.GradScaler:
        """A gradient scaler, enabled only for float16 (whose small gradients underflow unscaled)."""
        return torch.amp.GradScaler("cuda", enabled=self.amp_dtype(device) == torch.float16)

    # ------------------------------------------------------------------ persistence
    def frozen_keys(self) -> set[str]:
        """State-dict keys of pretrained backbone tensors that training never changes: rebuilt from
        their package on loading, never saved.

        A :class:`~anolearn.backbones.FeatureExtractor` stays in eval mode (its BatchNorm statistics
        are ImageNet's), so of a backbone only the parameters being fine-tuned can change: a frozen
        backbone saves nothing, a partly fine-tuned one its trainable blocks, a fully fine-tuned one
        every parameter.
        """
        from ..backbones import FeatureExtractor

        keys = set()
        for name, module in self.named_modules():
            if isinstance(module, FeatureExtractor):
                trainable = {n for n, p in module.named_parameters() if p.requires_grad}
                keys |= {f"{name}.{k}" for k in module.state_dict() if k not in trainable}
        return keys

    def checkpoint_state(self) -> dict[str, torch.Tensor]:
        """What :meth:`save` writes: the state dict without the backbone tensors training never changes, on the CPU."""
        frozen = self.frozen_keys()
        return {k: v.detach().cpu() for k, v in self.state_dict().items() if k not in frozen}

    def save(self, path: str | Path) -> Path:
        """Write ``{method, config, state}`` atomically (temporary file, then rename)."""
        payload = {"format": CHECKPOINT_FORMAT, "method": self.name, "config": self.config(),
                   "state": self.checkpoint_state()}
        return atomic_save(payload, path)

    def _load_state(self, state: dict[str, torch.Tensor]) -> None:
        # Buffers whose shape depends on the training data (a memory bank, a mean image)
        # are resized to the checkpoint's shape before the usual strict load.
        for key, value in state.items():
            module_name, _, buffer_name = key.rpartition(".")
            module = self.get_submodule(module_name) if module_name else self
            if buffer_name in module._buffers:
                module._buffers[buffer_name] = torch.empty_like(value)
        frozen = self.frozen_keys()
        if frozen:  # the frozen backbone tensors already hold their package's weights
            state = {**{k: v for k, v in self.state_dict().items() if k in frozen}, **state}
        self.load_state_dict(state, strict=True)


def create_method(name: str, **config: Any) -> AnomalyMethod:
    """Instantiate a registered method by name, e.g. ``create_method("feature_knn", k=1)``.

    The settings are checked against the method's signature first (names, types, ranges; see
    :mod:`anolearn.methods.settings`), so a bad one is named before anything is built.

    Raises:
        ValueError: an unknown method, or a :class:`~anolearn.methods.settings.SettingsError`.
    """

    if name not in METHODS:
        raise ValueError(f"Unknown method {name!r}; available: {', '.join(sorted(METHODS))}.")
    return METHODS[name](**check_settings(name, config))


def load_method(path: str | Path, map_location: str | torch.device = "cpu") -> AnomalyMethod:
    """Load a checkpoint written by :meth:`AnomalyMethod.save` (``weights_only=True``).

    Raises:
        ValueError: if the file is not an anolearn checkpoint or is corrupt (the message names it).
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise  # a wrong path is clearer as itself than wrapped as "not a checkpoint"
    except Exception as err:  # truncated file, not a torch file, unsafe pickle content
        raise ValueError(f"{path} is not a readable anolearn checkpoint ({type(err).__name__}: {err}).") from err
    if not isinstance(payload, dict) or "method" not in payload or not isinstance(payload.get("state"), dict):
        raise ValueError(f"{path} is not an anolearn checkpoint (no 'method'/'state' entries).")
    config = payload.get("config", {})
    if not isinstance(config, dict):
        raise ValueError(f"{path} is not an anolearn checkpoint (its 'config' is not a dict of settings).")
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    try:
        method = create_method(payload["method"], **config)
    except (TypeError, ValueError) as err:  # an unknown method or setting: another version, or edited
        raise ValueError(f"{path} cannot be rebuilt ({str(err).rstrip('.')}); it was written by another version "
                         f"of anolearn, or edited.") from err
    try:
        method._load_state(payload["state"])
    except (RuntimeError, KeyError, AttributeError) as err:  # missing, extra or misshapen tensors
        detail = " ".join(str(err).split())
        raise ValueError(f"{path} does not fit a {payload['method']} model with its own settings ({detail}); "
                         f"it was written by another version of anolearn, or edited.") from err
    return method.to(map_location)
