"""Small trained models shipped with the package, so that a chapter can show a method that works.

A chapter's live run uses the quick profile (about a minute per model on a laptop CPU), which is
enough to watch a method learn but not always enough for it to work well. The models here were
trained with the ``standard`` profile by the command recorded beside each of them, on the
built-in synthetic data, and then stored compactly by ``benchmarks/ship_models.py``:

* floating-point weights in float16 where float32 would not fit in a few megabytes (``"float16"``
  in the manifest; they are turned back into float32 on loading; the rounding moves the metrics
  a little, by up to about 0.02 here: the manifest records them before and after);
* tensors computed from the training images (``rebuild``: SGSF's bank of normal images, CutSwap's
  Gaussians) are left out and recomputed on loading from the same training images, by the
  model's ``prepare``;
* pretrained weights that training left unchanged are not stored (the package's ImageNet weights
  are loaded instead): the shipped CutSwap models fine-tune only their encoder's last two blocks
  (``--set finetune_blocks=2`` in their command; the standard profile fine-tunes all of it), so
  that their files hold those blocks alone.

``manifest.json`` lists every file with its SHA-256, the command that trained it, how long the
training took and on what machine. :func:`load_shipped` checks the hash before it reads a file.

Example::

    from anolearn.shipped import load_shipped
    model = load_shipped("riad", "hexnut")          # a fitted RIAD, ready for predict()
    model = load_shipped("sgsf", "capsule", train)  # SGSF also needs its training images
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.json"
#: The script that writes the files and the manifest (in a checkout of the repository).
SCRIPT = "benchmarks/ship_models.py"


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read 1 MB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest() -> dict[str, dict]:
    """Every shipped model, keyed ``"<method>/<category>"``: file, sha256, command, seconds, ..."""
    if not MANIFEST.is_file():
        return {}
    return json.loads(MANIFEST.read_text())["models"]


def shipped_entry(method: str, category: str) -> dict:
    """The manifest entry of one model; a one-line error listing what ships when it is not there."""
    models = manifest()
    key = f"{method}/{category}"
    if key not in models:
        have = ", ".join(sorted(models)) or "none"
        raise FileNotFoundError(f"No shipped {method} model for {category!r} (shipped: {have}); train one with "
                                f"`python -m anolearn train --method {method} --data synthetic:{category} --out runs/{method}`.")
    return models[key]


def compact_state(state: dict[str, torch.Tensor], half: bool, drop: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """A checkpoint's state with the keys in ``drop`` left out and, if ``half``, float32 tensors
    stored as float16 (integer tensors, e.g. uint8 images or step counters, are kept as they are)."""
    out = {}
    for key, value in state.items():
        if key.rpartition(".")[2] in drop:
            continue
        out[key] = value.half() if half and value.dtype == torch.float32 else value
    return out


def load_shipped(method: str, category: str, train=None, device: str | torch.device = "cpu"):
    """Load a shipped model, fitted and ready for ``predict``.

    Args:
        method, category: e.g. ``"riad", "hexnut"``; :func:`manifest` lists what ships.
        train: the category's training images (a dataset or an ``(N, 3, H, W)`` tensor), needed
            only for a model whose manifest entry names tensors to ``rebuild`` (SGSF's image bank,
            CutSwap's Gaussians).
        device: where the model runs.

    Raises:
        FileNotFoundError: the model does not ship (the message says how to train one).
        ValueError: the file's SHA-256 is not the manifest's (changed or damaged), or ``train``
            is missing where the model needs it.
    """
    from ..methods.base import collect_images, create_method

    entry = shipped_entry(method, category)
    path = HERE / entry["file"]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is listed in {MANIFEST.name} but missing; reinstall anolearn or run "
                                f"`python {SCRIPT}` in a checkout.")
    if sha256(path) != entry["sha256"]:
        raise ValueError(f"{path} does not have the SHA-256 recorded in {MANIFEST.name}: it was changed or damaged; "
                         f"restore it from the repository or rerun `python {SCRIPT}`.")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in payload["config"].items()}
    model = create_method(payload["method"], **config)
    state = {k: v.float() if v.dtype == torch.float16 else v for k, v in payload["state"].items()}
    rebuild = entry.get("rebuild", [])
    if rebuild:
        if train is None:
            raise ValueError(f"The shipped {method} model needs its training images to rebuild {', '.join(rebuild)}: "
                             f"load_shipped({method!r}, {category!r}, train).")
        # The rebuilt tensors take the place of the ones left out; the strict load below checks the rest.
        own = model.state_dict()
        for key in own:
            if key.rpartition(".")[2] in rebuild:
                state.setdefault(key, own[key])
    model._load_state(state)
    model.to(device)
    if rebuild:
        images = collect_images(train, getattr(model, "input_size", None), model.device)
        model.prepare(images, progress=False)
    model.eval()
    return model


def evaluate_shipped(method: str, category: str, device: str | torch.device = "cpu"):
    """Load a shipped model and score it on its category's synthetic test split (the standard
    profile's images, written on first use like every synthetic dataset).

    Returns:
        ``(model, test_set, predictions, metrics)``: predictions from
        :func:`anolearn.methods.predict_dataset`, metrics from :func:`anolearn.methods.evaluate`.
    """
    from ..config import get_profile
    from ..data import load_dataset
    from ..methods import evaluate, predict_dataset

    standard = get_profile("standard", dataset="synthetic")
    entry = shipped_entry(method, category)
    train = load_dataset("synthetic", category, "train", standard) if entry.get("rebuild") else None
    model = load_shipped(method, category, train, device)
    test = load_dataset("synthetic", category, "test", standard)
    predictions = predict_dataset(model, test, progress=False)
    return model, test, predictions, evaluate(model, test, progress=False, predictions=predictions)
