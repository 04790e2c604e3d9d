"""What the command line is asked to run on: ``--data`` specs and method names, checked early.

A data spec is ``SOURCE:CATEGORY``:

* ``synthetic:brick``: the built-in synthetic dataset (written on first use);
* ``mvtec_ad:bottle``, ``visa:pcb1``, ``btad:01``: a real dataset fetched by ``data_scripts``;
* ``/data/my_parts:screws``: any folder in MVTec AD layout and one of its categories;
* ``/data/my_parts/screws``: a category folder itself (it holds ``train/good``).

A folder is stored as its absolute path, so that a run trained with ``--data parts:screws``
can be evaluated from any directory.

For ``benchmark`` the category may be omitted (``synthetic`` means every category) or be a
comma-separated list (``synthetic:brick,capsule``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import Profile
from ..data import REAL_DATASETS, DatasetError, list_categories
from ..methods import METHODS


class CliError(Exception):
    """A bad input; the command line prints its message as one line and exits with status 2."""


@dataclass(frozen=True)
class DataSpec:
    """A parsed ``--data`` value: ``source`` (synthetic, a real dataset, or a folder) and categories."""

    source: str
    categories: tuple[str | None, ...]

    def label(self, category: str | None) -> str:
        return f"{self.source}:{category}" if category else self.source


def _is_named_source(source: str) -> bool:
    return source == "synthetic" or source in REAL_DATASETS


def parse_data(text: str, profile: Profile, many: bool = False) -> DataSpec:
    """Parse and check a ``--data`` value.

    Raises:
        CliError: unknown category (listing the valid ones), a folder that does not exist or is
            not in MVTec AD layout, or a missing category where one is required.
    """
    source, sep, cats = text.rpartition(":") if ":" in text else (text, "", "")
    if not sep or "/" in cats or "\\" in cats:  # no category part (a ':' may belong to a path)
        source, cats = text, ""
    if not _is_named_source(source):
        folder = Path(source).expanduser().resolve()
        if not folder.is_dir():
            raise CliError(f"--data {text}: {folder} is not a folder and not one of "
                           f"synthetic, {', '.join(sorted(REAL_DATASETS))}.")
        if not cats and (folder / "train").is_dir():  # the category folder itself
            if not (folder / "train" / "good").is_dir():
                raise CliError(f"--data {text}: {folder}/train has no 'good' folder; "
                               f"an MVTec-layout category holds train/good/*.png (see data_scripts/README.md).")
            return DataSpec(str(folder), (None,))
        source = str(folder)
    try:
        available = list_categories(source, profile)
    except DatasetError as err:
        raise CliError(f"--data {text}: {err}") from None
    if not available:
        raise CliError(f"--data {text}: {source} holds no category in MVTec AD layout "
                       f"(expected CATEGORY/train/good/*.png; see data_scripts/README.md).")
    if not cats:
        if not many:
            raise CliError(f"--data {text}: name a category, e.g. {source}:{available[0]} "
                           f"(available: {', '.join(available)}).")
        return DataSpec(source, tuple(available))
    chosen = tuple(c.strip() for c in cats.split(",") if c.strip())
    if len(chosen) > 1 and not many:
        raise CliError(f"--data {text}: train and evaluate take one category; use benchmark for several.")
    unknown = [c for c in chosen if c not in available]
    if unknown:
        raise CliError(f"--data {text}: unknown category {', '.join(unknown)}; available: {', '.join(available)}.")
    return DataSpec(source, chosen)


def check_methods(names: list[str]) -> list[str]:
    """Check method names against the registry.

    Raises:
        CliError: naming the unknown method and listing the registered ones.
    """
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise CliError(f"unknown method {', '.join(unknown)}; available: {', '.join(sorted(METHODS))}.")
    return names


def parse_overrides(pairs: list[str]) -> dict:
    """``["steps=20", "lr=1e-4", "layers=(2, 4)"]`` -> ``{"steps": 20, "lr": 0.0001, "layers": (2, 4)}``."""
    import ast

    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--set {pair}: expected KEY=VALUE, e.g. --set steps=20.")
        try:
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = value.strip()  # a plain string such as a forger name
    return out


def parse_device(text: str | None) -> torch.device:
    """Check a ``--device`` value (or ``ANOLEARN_DEVICE``, or pick the best device when neither is set).

    Raises:
        CliError: a name torch does not know (``tpu``), or a device this machine does not have.
    """
    from ..device import ENV_VAR, get_device

    where = "--device" if text else ENV_VAR
    wanted = text or os.environ.get(ENV_VAR)
    if not wanted:
        return get_device()
    try:
        device = torch.device(wanted)
    except RuntimeError:
        raise CliError(f"{where} {wanted}: not a device name; use cpu, cuda, cuda:N or mps "
                       f"(or leave it out for the best one available).") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise CliError(f"{where} {wanted}: anolearn runs on cpu, cuda, cuda:N or mps; leave it out for the best one "
                       f"available.")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            build = "" if torch.version.cuda else f" (this torch {torch.__version__} is built without CUDA)"
            raise CliError(f"{where} {wanted}: there is no CUDA GPU on this machine{build}; use --device cpu, "
                           f"or leave it out for the best device available.")
        if device.index is not None and device.index >= count:
            raise CliError(f"{where} {wanted}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}.")
    try:
        return get_device(wanted)
    except RuntimeError as err:  # mps asked for where there is none
        raise CliError(f"{where} {wanted}: {err} Use --device cpu, or leave it out.") from None


def check_settings(method: str, settings: dict) -> dict:
    """The method's settings checked against its signature (see :mod:`anolearn.methods.settings`).

    Raises:
        CliError: naming the setting and saying how to change it.
    """
    from ..methods.settings import SettingsError, signature_of
    from ..methods.settings import check_settings as check

    try:
        return check(method, settings)
    except SettingsError as err:
        fix = f" Change it with --set {err.name}=VALUE." if err.name in signature_of(method) else ""
        raise CliError(f"{err}{fix}") from None
