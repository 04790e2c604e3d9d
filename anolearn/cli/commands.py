"""``train`` and ``evaluate``: one method on one category, with its costs measured.

Both are plain functions (the command line in :mod:`anolearn.cli.main` only parses
arguments), so a notebook can call them too::

    from anolearn.cli.commands import train, evaluate
    info = train("raw_pixel", "synthetic:brick", out="runs/raw_brick")
    row = evaluate("runs/raw_brick")
"""
from __future__ import annotations

import errno
import inspect
import json
import platform
import shutil
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .. import __version__
from ..config import Profile, get_profile
from ..data import REAL_DATASETS, DatasetError, ImageReadError, load_dataset
from ..data.download import file_digest, human_size
from ..device import describe_device
from ..methods import create_method, load_method
from ..methods.evaluate import predict_dataset
from ..methods.settings import signature_of
from ..methods.training import CHECKPOINT_EVERY, TrainingCheckpointError, progress_summary, read_training_checkpoint
from ..metrics import aupro, image_auroc, pixel_ap, pixel_auroc
from ..seed import run_seed, seed_everything
from .measure import PeakMemory, Timer
from .runs import RunDir, append_rows, now, read_rows, write_json
from .spec import CliError, DataSpec, check_methods, check_settings, parse_data, parse_device

METRICS = ("image_auroc", "pixel_auroc", "pixel_ap", "aupro")
# The columns of a row of results.csv, in order (see evaluate).
RESULT_COLUMNS = ("method", "data", "category", "profile", "image_size", "seed", *METRICS, "train_seconds",
                  "infer_images_per_s", "peak_memory_mb", "memory_kind", "device", "n_train", "n_test", "finished",
                  "notes")


def method_settings(method: str, profile: Profile, overrides: dict | None = None, category: str | None = None) -> dict:
    """Constructor settings of ``method`` on ``category``: the profile's schedule, then ``overrides`` (``--set``).

    A method that draws its own random numbers takes a ``seed`` argument. Unless the schedule or
    ``--set seed=...`` names one, it gets the seed of this (method, category) run,
    :func:`~anolearn.seed.run_seed` ``(profile.seed, method, category)``: the same wherever the
    run is trained (alone, in any cell of a benchmark grid, or in a chapter), and another one
    for every profile seed (``get_profile(seed=1)``). Without a ``category`` (only to check the
    settings of a method) the seed is left out.
    """
    import inspect

    from ..methods import METHODS

    settings = {**profile.schedule(method), **(overrides or {})}
    parameter = inspect.signature(METHODS[method]).parameters.get("seed") if method in METHODS else None
    if parameter is not None and "seed" not in settings and category is not None:
        settings["seed"] = run_seed(profile.seed, method, category)
    return settings


def _load(spec: DataSpec, category: str | None, split: str, profile: Profile, cache: bool = True):
    try:
        return load_dataset(spec.source, category, split, profile, cache=cache)
    except DatasetError as err:
        raise CliError(str(err)) from None


def _read_every_sample(dataset, what: str, progress: bool) -> None:
    """Read (decode, resize) every image and mask of ``dataset`` once: a corrupt, truncated or
    too small file, or a mask of the wrong size, is named now rather than hours into training."""
    try:
        for i in tqdm(range(len(dataset)), desc=f"checking {what}", unit="img", disable=not progress, leave=False):
            dataset[i]
    except (ImageReadError, DatasetError) as err:
        raise CliError(str(err)) from None


def _state_bytes(model: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def _free_bytes(folder: Path) -> int:
    while not folder.exists():  # the run folder is created later: ask its first existing parent
        folder = folder.parent
    return shutil.disk_usage(folder).free


def _save(model, path: Path) -> str:
    """Save ``model`` to ``path`` (atomically); return the file's SHA-256 (kept in train.json)."""
    try:
        model.save(path)
    except (OSError, RuntimeError) as err:  # torch reports a full disk as "RuntimeError: ... unexpected pos"
        free = _free_bytes(path.parent)
        full = getattr(err, "errno", None) == errno.ENOSPC or free < _state_bytes(model)
        reason = f"the disk is full ({human_size(free)} free)" if full else f"{type(err).__name__}: {err}"
        raise CliError(f"could not write the checkpoint {path}: {reason}. Nothing half-written was kept; free some "
                       f"space (or choose an --out on another disk) and rerun the same command.") from None
    return file_digest(path)


def train(method: str, data: str | DataSpec, out: str, profile: Profile | None = None, overrides: dict | None = None,
          device: str | None = None, progress: bool = True, category: str | None = None,
          check_test: bool = False, checkpoint_every: float = CHECKPOINT_EVERY) -> dict:
    """Train ``method`` on the normal images of one category and save it in the run folder ``out``.

    Every input is checked before anything is written (method, data, settings against the
    method's signature, device, the output folder, every training image, free disk space), so a
    refused command leaves ``out`` as it was. ``check_test`` also reads every test image and
    mask first (for a training that is evaluated afterwards).

    Resumes: if ``out`` already holds this exact run, finished, nothing is trained again. While
    it trains, the method writes its progress to ``out/training.pt`` every ``checkpoint_every``
    seconds (:mod:`anolearn.methods.training`); the same command after an interruption goes on
    from there (and says so), and ends with the weights an uninterrupted run would have had.
    ``model.pt`` is only written once training has finished, so a half-trained model is never
    mistaken for a result; ``training.pt`` is deleted then.

    Returns:
        ``train.json``'s content: seconds (of this call), peak memory (MB), device, number of
        images, where training resumed (``resumed_from``, None if from the start), and a
        ``resumed`` flag (True: it had already finished, nothing was done).
    """
    profile = profile or get_profile()
    check_methods([method])
    spec = data if isinstance(data, DataSpec) else parse_data(data, profile)
    category = category if category is not None else spec.categories[0]
    name = category if category is not None else Path(spec.source).name  # a category folder given itself
    settings = check_settings(method, method_settings(method, profile, overrides, name))
    device = parse_device(device)
    run = RunDir(out)
    identity = {"method": method, "data": spec.source, "category": category, "profile": profile.name,
                "image_size": profile.image_size, "seed": profile.seed, "config": settings}
    if run.check(identity):
        info = json.loads(run.train_info.read_text())
        run.training.unlink(missing_ok=True)  # left by a run stopped right after writing model.pt
        return {**info, "resumed": True}

    train_set = _load(spec, category, "train", profile)
    _read_every_sample(train_set, f"{spec.label(category)} train", progress)
    if check_test:
        _read_every_sample(_load(spec, category, "test", profile, cache=False), f"{spec.label(category)} test",
                           progress)
    # The global generators too (for any draw a method does not take from its own generator).
    seed_everything(settings.get("seed", run_seed(profile.seed, method, name)))
    try:
        model = create_method(method, **settings)
    except (TypeError, ValueError) as err:  # a combination of settings the method itself refuses
        raise CliError(f"{method} does not accept these settings: {err}") from None
    model = model.to(device)
    free, needed = _free_bytes(run.path), _state_bytes(model)
    if free < needed:
        raise CliError(f"only {human_size(free)} is free on the disk holding {run.path}, and the checkpoint of "
                       f"{method} needs at least {human_size(needed)}; free some space or choose another --out.")
    # A method of the book saves its progress and resumes; one written to the older contract
    # (fit(train, progress) only, e.g. a reader's own) trains from the start.
    resumable = "checkpoint" in inspect.signature(model.fit).parameters
    fit_options = {"checkpoint": run.training, "checkpoint_every": checkpoint_every} if resumable else {}
    resumed_from = None
    if resumable and run.training.exists():
        try:
            resumed_from = progress_summary(read_training_checkpoint(run.training))
        except TrainingCheckpointError as err:
            raise CliError(str(err)) from None
        tqdm.write(f"{method}: resuming the interrupted training in {run.path} from its checkpoint "
                   f"({resumed_from}).")
    run.claim(identity)
    try:
        with PeakMemory(device) as memory, Timer(device) as timer:
            model.fit(train_set, progress=progress, **fit_options)
    except (ImageReadError, DatasetError) as err:  # a file that changed since it was checked
        raise CliError(str(err)) from None
    except TrainingCheckpointError as err:  # another model's, data's or device's training.pt
        raise CliError(str(err)) from None
    digest = _save(model, run.checkpoint)
    info = {"train_seconds": round(timer.seconds, 3), "peak_memory_mb": memory.peak_mb, "memory_kind": memory.kind,
            "device": describe_device(device), "n_train": len(train_set), "finished": now(),
            "resumed_from": resumed_from, "checkpoint_sha256": digest,
            "anolearn": __version__, "python": platform.python_version(), "torch": torch.__version__}
    write_json(run.train_info, info)
    run.training.unlink(missing_ok=True)  # the finished model is in model.pt
    return {**info, "resumed": False}


def _load_model(run: RunDir, manifest: dict, device: torch.device):
    """The run's model, refused when ``model.pt`` is not the one this run's training wrote."""
    redo = (f"Delete {run.checkpoint} and train again (`python -m anolearn train` with this run's arguments, "
            f"see {run.manifest}).")
    try:
        model = load_method(run.checkpoint, map_location=device)
    except ValueError as err:
        raise CliError(f"{err} {redo}") from None
    if model.name != manifest["method"]:
        raise CliError(f"{run.checkpoint} holds a {model.name} model, but {run.manifest} says this run trained "
                       f"{manifest['method']}: the file comes from another run. {redo}")
    # The run's settings: the method's defaults, then those run.json lists (the profile's and --set).
    # A default of None means "decide when built" (the model stores what it decided): not compared.
    defaults = {k: p.default for k, p in signature_of(model.name).items()
                if p.default is not inspect.Parameter.empty and p.default is not None}
    wanted = json.loads(json.dumps({**defaults, **manifest.get("config", {})}, default=str))
    config = json.loads(json.dumps(model.config(), default=str))
    differ = sorted(k for k, v in config.items() if k in wanted and wanted[k] != v)
    if differ:
        what = ", ".join(f"{k}={config[k]!r} there vs {wanted[k]!r}" for k in differ)
        raise CliError(f"{run.checkpoint} was trained with other settings than {run.manifest} lists ({what}): "
                       f"the file comes from another run. {redo}")
    expected = json.loads(run.train_info.read_text()).get("checkpoint_sha256") if run.train_info.exists() else None
    if expected and file_digest(run.checkpoint) != expected:
        raise CliError(f"{run.checkpoint} is not the file this run's training wrote (its SHA-256 differs from the "
                       f"one in {run.train_info}): it was replaced, e.g. by another run's model.pt. {redo}")
    return model


def split_metrics(predictions: dict, has_masks: bool) -> tuple[dict[str, float], str]:
    """The metrics of :data:`METRICS` that this test split allows, and a note on those it does not.

    Image AUROC needs good and defective test images; the pixel metrics need masks with both
    normal and anomalous pixels. What cannot be computed is NaN (``n/a`` in the tables) and the
    note says why.
    """
    labels, masks = predictions["labels"], predictions["masks"]
    values, notes = dict.fromkeys(METRICS, float("nan")), []
    n_bad = int(labels.sum())
    if 0 < n_bad < len(labels):
        values["image_auroc"] = float(image_auroc(labels, predictions["scores"]))
    else:
        only = "good" if n_bad == 0 else "defective"
        notes.append(f"image_auroc cannot be computed: the test split has only {only} images ({len(labels)}), and "
                     f"AUROC needs good and defective ones")
    pixel = ", ".join(METRICS[1:])
    n_px_bad = int(masks.sum()) if has_masks else 0
    if has_masks and 0 < n_px_bad < masks.numel():
        values.update(pixel_auroc=float(pixel_auroc(masks, predictions["maps"])),
                      pixel_ap=float(pixel_ap(masks, predictions["maps"])),
                      aupro=float(aupro(masks, predictions["maps"])))
    elif has_masks:
        notes.append(f"{pixel} cannot be computed: no mask of this test split marks an anomalous pixel")
    else:
        notes.append(f"{pixel} need ground-truth masks, and this test split has none")
    if notes:
        notes.append("a test split with good and defective images (test/<defect>/, masks in ground_truth/<defect>/) "
                     "allows them all")
    return values, "; ".join(notes) + ("." if notes else "")


def _stored_source(run: RunDir, manifest: dict) -> str:
    source = manifest["data"]
    if source == "synthetic" or source in REAL_DATASETS or Path(source).expanduser().is_absolute():
        return source
    if Path(source).is_dir():
        return str(Path(source).resolve())
    raise CliError(f"{run.manifest} names its data by the relative path {source!r} (written by an older anolearn), "
                   f"which is not a folder from here; run evaluate from the folder train was run in, or pass "
                   f"--data /absolute/path/{source}:{manifest['category']}.")


def evaluate(run_dir: str, data: str | None = None, profile: Profile | None = None, device: str | None = None,
             progress: bool = True, batch_size: int = 16) -> dict:
    """Evaluate the model in ``run_dir`` on the test split of its category (or of ``data``) and
    append one row to ``run_dir/results.csv``.

    Returns:
        The row: metrics, inference images per second, peak memory, what was run, and ``notes``
        naming the metrics the test split does not allow (e.g. no defective image).
    """
    run = RunDir(run_dir)
    if run.path.exists() and not run.path.is_dir():
        raise CliError(f"--run {run.path} is a file; give the run folder written by train.")
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
        spec, category = DataSpec(_stored_source(run, manifest), (manifest["category"],)), manifest["category"]
    device = parse_device(device)
    model = _load_model(run, manifest, device)
    model.eval()
    test_set = _load(spec, category, "test", profile)
    try:
        with PeakMemory(device) as memory, Timer(device) as timer:
            predictions = predict_dataset(model, test_set, batch_size=batch_size, progress=progress)
    except (ImageReadError, DatasetError) as err:
        raise CliError(str(err)) from None
    try:
        metrics, notes = split_metrics(predictions, getattr(test_set, "has_masks", True))
    except ValueError as err:  # NaN or infinite scores: a model that diverged
        raise CliError(f"{manifest['method']} in {run.path} gives unusable output on {spec.label(category)}: {err}"
                       ) from None
    train_info = json.loads(run.train_info.read_text()) if run.train_info.exists() else {}
    row = {
        "method": manifest["method"], "data": spec.source, "category": category or "",
        "profile": profile.name, "image_size": profile.image_size, "seed": manifest["seed"],
        **metrics,
        "train_seconds": train_info.get("train_seconds", float("nan")),
        "infer_images_per_s": round(len(test_set) / timer.seconds, 2) if timer.seconds > 0 else float("nan"),
        "peak_memory_mb": max(x for x in (memory.peak_mb, train_info.get("peak_memory_mb"), 0) if x is not None),
        "memory_kind": memory.kind, "device": describe_device(device),
        "n_train": train_info.get("n_train", ""), "n_test": len(test_set), "finished": now(), "notes": notes,
    }
    append_rows(run.results, [row])
    return row


def last_result(run_dir: str) -> dict | None:
    rows = read_rows(RunDir(run_dir).results)
    return rows[-1] if rows else None
