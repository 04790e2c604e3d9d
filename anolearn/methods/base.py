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
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from .registry import METHODS, register
from .settings import check_settings

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


class AnomalyMethod(nn.Module):
    """Base class of every method. Subclasses implement :meth:`fit` and :meth:`predict` and
    list their constructor arguments in :meth:`config` (plain values only)."""

    name: ClassVar[str] = "method"

    def fit(self, train: Dataset | torch.Tensor, progress: bool = True) -> "AnomalyMethod":
        raise NotImplementedError

    def predict(self, images: torch.Tensor) -> Prediction:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this method (ints, floats, strings, tuples, ...)."""
        return {}

    @property
    def device(self) -> torch.device:
        for tensor in list(self.parameters()) + list(self.buffers()):
            return tensor.device
        return torch.device("cpu")

    # ------------------------------------------------------------------ persistence
    def frozen_prefixes(self) -> tuple[str, ...]:
        """State-dict prefixes of frozen pretrained backbones: rebuilt from their package, never saved.

        A backbone whose weights are being fine-tuned is saved like any other network.
        """
        from ..backbones import FeatureExtractor

        return tuple(f"{name}." for name, m in self.named_modules()
                     if isinstance(m, FeatureExtractor) and not any(p.requires_grad for p in m.parameters()))

    def checkpoint_state(self) -> dict[str, torch.Tensor]:
        """What :meth:`save` writes: the state dict without frozen pretrained weights, on the CPU."""
        frozen = self.frozen_prefixes()
        return {k: v.detach().cpu() for k, v in self.state_dict().items() if not k.startswith(frozen or ("\0",))}

    def save(self, path: str | Path) -> Path:
        """Write ``{method, config, state}`` atomically (temporary file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = self.checkpoint_state()
        payload = {"format": CHECKPOINT_FORMAT, "method": self.name, "config": self.config(), "state": state}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        os.close(fd)
        try:
            torch.save(payload, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return path

    def _load_state(self, state: dict[str, torch.Tensor]) -> None:
        # Buffers whose shape depends on the training data (a memory bank, a mean image)
        # are resized to the checkpoint's shape before the usual strict load.
        for key, value in state.items():
            module_name, _, buffer_name = key.rpartition(".")
            module = self.get_submodule(module_name) if module_name else self
            if buffer_name in module._buffers:
                module._buffers[buffer_name] = torch.empty_like(value)
        frozen = self.frozen_prefixes()
        if frozen:  # the frozen backbones already hold their package's weights
            state = {**{k: v for k, v in self.state_dict().items() if k.startswith(frozen)}, **state}
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
