"""``train`` and ``evaluate``: one method on one category, with its costs measured.

Both are plain functions (the command line in :mod:`anolearn.cli.main` only parses
arguments), so a notebook can call them too::

    from anolearn.cli.commands import train, evaluate
    info = train("raw_pixel", "synthetic:brick", out="runs/raw_brick")
    row = evaluate("runs/raw_brick")
"""
from __future__ import annotations

import platform

import torch

from .. import __version__
from ..config import Profile, get_profile
from ..data import DatasetError, load_dataset
from ..device import describe_device, get_device
from ..methods import create_method, load_method
from ..methods.evaluate import evaluate as evaluate_method
from ..methods.evaluate import predict_dataset
from ..seed import seed_everything
from .measure import PeakMemory, Timer
from .runs import RunDir, append_rows, now, read_rows, write_json
from .spec import CliError, DataSpec, check_methods, parse_data

METRICS = ("image_auroc", "pixel_auroc", "pixel_ap", "aupro")


def method_settings(method: str, profile: Profile, overrides: dict | None = None) -> dict:
    """Constructor settings of ``method``: the profile's schedule, then ``overrides`` (``--set``).

    A method that draws its own random numbers takes a ``seed`` argument; the profile's seed is
    passed to it (so that ``get_profile(seed=1)`` really changes the run), unless the schedule
    or ``--set seed=...`` names one. It is written into the settings only when it differs from
    the method's default, so the settings of a default run stay as short as the schedule.
    """
    import inspect

    from ..methods import METHODS

    settings = {**profile.schedule(method), **(overrides or {})}
    parameter = inspect.signature(METHODS[method]).parameters.get("seed") if method in METHODS else None
    if parameter is not None and "seed" not in settings and parameter.default != profile.seed:
        settings["seed"] = profile.seed
    return settings


def _load(spec: DataSpec, category: str | None, split: str, profile: Profile):
    try:
        return load_dataset(spec.source, category, split, profile)
    except DatasetError as err:
        raise CliError(str(err)) from None


def train(method: str, data: str | DataSpec, out: str, profile: Profile | None = None, overrides: dict | None = None,
          device: str | None = None, progress: bool = True, category: str | None = None) -> dict:
    """Train ``method`` on the normal images of one category and save it in the run folder ``out``.

    Resumes: if ``out`` already holds this exact run, finished, nothing is trained again.
    An interrupted training restarts from the beginning (the checkpoint is only written once
    training has finished, so a half-trained model is never mistaken for a result).

    Returns:
        ``train.json``'s content: seconds, peak memory (MB), device, number of images, resumed flag.
    """
    profile = profile or get_profile()
    check_methods([method])
    spec = data if isinstance(data, DataSpec) else parse_data(data, profile)
    category = category if category is not None else spec.categories[0]
    settings = method_settings(method, profile, overrides)
    run = RunDir(out)
    identity = {"method": method, "data": spec.source, "category": category, "profile": profile.name,
                "image_size": profile.image_size, "seed": profile.seed, "config": settings}
    if run.claim(identity):
        info = __import__("json").loads(run.train_info.read_text())
        return {**info, "resumed": True}

    device = get_device(device)
    train_set = _load(spec, category, "train", profile)
    seed_everything(profile.seed)
    try:
        model = create_method(method, **settings)
    except TypeError as err:  # a --set key the method does not take
        raise CliError(f"{method} does not accept these settings ({err}); see its docstring for the parameters.") from None
    model = model.to(device)
    with PeakMemory(device) as memory, Timer(device) as timer:
        model.fit(train_set, progress=progress)
    model.save(run.checkpoint)
    info = {"train_seconds": round(timer.seconds, 3), "peak_memory_mb": memory.peak_mb, "memory_kind": memory.kind,
            "device": describe_device(device), "n_train": len(train_set), "finished": now(),
            "anolearn": __version__, "python": platform.python_version(), "torch": torch.__version__}
    write_json(run.train_info, info)
    return {**info, "resumed": False}


def evaluate(run_dir: str, data: str | None = None, profile: Profile | None = None, device: str | None = None,
             progress: bool = True, batch_size: int = 16) -> dict:
    """Evaluate the model in ``run_dir`` on the test split of its category (or of ``data``) and
    append one row to ``run_dir/results.csv``.

    Returns:
        The row: metrics, inference images per second, peak memory, and what was run.
    """
    run = RunDir(run_dir)
    manifest = run.read_manifest()
    if not run.checkpoint.exists():
        raise CliError(f"{run.path} has no model.pt: its training did not finish; run `train` again with the "
                       f"same arguments to resume.")
    profile = profile or get_profile(manifest["profile"])
    if profile.name != manifest["profile"] or profile.image_size != manifest["image_size"]:
        raise CliError(f"{run.path} was trained in the {manifest['profile']} profile at {manifest['image_size']} px; "
                       f"evaluate it with ANOLEARN_PROFILE={manifest['profile']}.")
    if data:
        spec = parse_data(data, profile)
        category = spec.categories[0]
    else:
        spec, category = DataSpec(manifest["data"], (manifest["category"],)), manifest["category"]
    device = get_device(device)
    try:
        model = load_method(run.checkpoint, map_location=device)
    except ValueError as err:
        raise CliError(f"{err} Delete {run.checkpoint} and train again.") from None
    model.eval()
    test_set = _load(spec, category, "test", profile)
    with PeakMemory(device) as memory, Timer(device) as timer:
        predictions = predict_dataset(model, test_set, batch_size=batch_size, progress=progress)
    metrics = evaluate_method(model, test_set, predictions=predictions)
    train_info = __import__("json").loads(run.train_info.read_text()) if run.train_info.exists() else {}
    row = {
        "method": manifest["method"], "data": spec.source, "category": category or "",
        "profile": profile.name, "image_size": profile.image_size, "seed": manifest["seed"],
        **{m: metrics.get(m, float("nan")) for m in METRICS},
        "train_seconds": train_info.get("train_seconds", float("nan")),
        "infer_images_per_s": round(len(test_set) / timer.seconds, 2) if timer.seconds > 0 else float("nan"),
        "peak_memory_mb": max(x for x in (memory.peak_mb, train_info.get("peak_memory_mb"), 0) if x is not None),
        "memory_kind": memory.kind, "device": describe_device(device),
        "n_train": train_info.get("n_train", ""), "n_test": len(test_set), "finished": now(),
    }
    append_rows(run.results, [row])
    return row


def last_result(run_dir: str) -> dict | None:
    rows = read_rows(RunDir(run_dir).results)
    return rows[-1] if rows else None
