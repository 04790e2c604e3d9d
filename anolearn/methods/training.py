"""The training loop every trained method shares: steps, progress bar, loss log, checkpoints, resume.

Each method writes its own training step -- the losses, the backward pass, the optimiser step,
the part a chapter explains. What is the same in every method lives here:

* :class:`Training` runs the steps of one ``fit()``, stage by stage (AnoSeg trains two GANs one
  after the other; the others have one stage): a progress bar and, every ``checkpoint_every``
  seconds, an atomic checkpoint of everything the next step depends on;
* :class:`LossLog` keeps each step's losses on the device and averages them over every ``every``
  steps into a history (one host synchronisation per ``every`` steps, not one per step);
* :class:`ShuffledBatches` picks the training images of each step: every epoch a new random
  order of all images, cut into batches.

A method's ``fit`` reads::

    run = Training(self, checkpoint, checkpoint_every, data=images)   # resumes if the file exists
    ...  # optimiser, schedule, generator, batches, log
    loop = run.stage("train", steps, progress, optimizer=optimizer, scheduler=scheduler,
                     generator=generator, batches=batches, log=log)
    for step in loop:          # from 0, or from where the checkpoint stopped
        ...                    # the method's own training step

**Resuming.** ``fit(train, checkpoint="run/training.pt")`` writes that file every few minutes
(:data:`CHECKPOINT_EVERY`) and at the end of each stage; after a crash, a kill or a full disk,
the same call in a new process goes on from the last checkpoint instead of step 0. The file holds
the model's weights and, for each stage, the state of every object its steps depend on:
optimisers, learning-rate schedules, gradient scalers, random generators, the batch order and
the loss log. With all of them restored the resumed steps draw the same random numbers and make
the same updates as an uninterrupted run would: on the CPU the final weights are identical bit
for bit (tested for every trained method). (On a GPU a few kernels are not deterministic, so two
runs -- resumed or not -- may differ in the last digits.) A checkpoint is refused, with a message
naming it, when it belongs to another method, other settings, other training data or another
kind of device. When ``fit`` returns the file stays, holding the finished training: the same call
again restores it without a step (the command line deletes it once ``model.pt`` is written).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

#: Seconds between two training checkpoints: at most this much training is lost to a crash.
CHECKPOINT_EVERY = 300.0
TRAINING_FORMAT = 1


class TrainingCheckpointError(ValueError):
    """A training checkpoint that cannot be resumed (unreadable, or another model's or data's)."""


def atomic_save(payload: Any, path: str | Path) -> Path:
    """``torch.save(payload, path)`` through a temporary file and a rename: the file at ``path`` is
    always either the old one or the complete new one, never half written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


# ----------------------------------------------------------------------------- loss log
class LossLog:
    """The loss history of a training stage, averaged over every ``every`` steps.

    Each step's losses are stacked on the device (no host synchronisation); every ``every``
    steps, and at the last step, their mean is read once and appended to :attr:`history`,
    ``{"step": [...], name: [...] for each name}`` (``step`` counts the steps done).

    Args:
        names: the losses to keep, in order (keys of the dict a step passes to :meth:`add`).
        every: steps per history entry.
        steps: the stage's number of steps (the last entry may average fewer steps).
    """

    def __init__(self, names: Sequence[str], every: int, steps: int):
        self.names, self.every, self.steps = tuple(names), every, steps
        self.history: dict[str, list[float]] = {"step": []}
        self.buffer: list[torch.Tensor] = []

    def add(self, step: int, losses: dict[str, torch.Tensor]) -> dict[str, float] | None:
        """Record the losses of step ``step`` (0-based); return the new history entry when one is
        written (every ``every`` steps), else None."""
        self.buffer.append(torch.stack([losses[name].detach() for name in self.names]))
        if (step + 1) % self.every and step + 1 != self.steps:
            return None
        device = self.buffer[-1].device  # (entries restored from a checkpoint are on the CPU)
        values = torch.stack([t.to(device) for t in self.buffer]).float().mean(0).tolist()  # one host sync
        self.buffer.clear()
        self.history["step"].append(step + 1)
        for name, value in zip(self.names, values):
            self.history.setdefault(name, []).append(value)
        return dict(zip(self.names, values))

    def state_dict(self) -> dict:
        return {"history": {k: list(v) for k, v in self.history.items()}, "buffer": [t.clone() for t in self.buffer]}

    def load_state_dict(self, state: dict) -> None:
        self.history.clear()  # in place: a method's ``history`` attribute is this dict
        self.history.update(state["history"])
        self.buffer[:] = state["buffer"]


# ----------------------------------------------------------------------------- batch order
class ShuffledBatches:
    """Indices of the training images of each step, epoch after epoch.

    At the start of every epoch the ``n`` images are put in a new random order (one
    ``torch.randperm`` from ``generator``) and cut into ``n // batch_size`` batches; an incomplete
    last batch is dropped, as a ``DataLoader(shuffle=True, drop_last=True)`` does.

    Example::

        >>> batches = ShuffledBatches(10, 4, torch.Generator().manual_seed(0))
        >>> [len(batches.next()) for _ in range(3)], batches.per_epoch
        ([4, 4, 4], 2)
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, device: torch.device | None = None):
        if n < 1 or batch_size < 1:
            raise ValueError(f"ShuffledBatches needs n >= 1 and batch_size >= 1, got {n} and {batch_size}.")
        self.n, self.batch_size = n, min(batch_size, n)
        self.per_epoch = n // self.batch_size
        self.generator, self.device = generator, device
        self.order: torch.Tensor | None = None
        self.position = 0  # batches of the current epoch already given

    def next(self) -> torch.Tensor:
        """``(batch_size,)`` long indices of the next batch (on ``device``)."""
        if self.position == 0:
            self.order = torch.randperm(self.n, generator=self.generator, device=self.device)
        b = self.batch_size
        idx = self.order[self.position * b:(self.position + 1) * b]
        self.position = (self.position + 1) % self.per_epoch
        return idx

    def state_dict(self) -> dict:
        return {"order": self.order, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        order = state["order"]
        self.order = None if order is None else order.to(self.device or "cpu")
        self.position = state["position"]


# ----------------------------------------------------------------------------- state of objects
def _state_of(obj: Any) -> Any:
    """What a checkpoint keeps of one object a training step depends on."""
    if isinstance(obj, torch.Generator):
        return obj.get_state()
    if hasattr(obj, "state_dict"):
        return obj.state_dict()
    if isinstance(obj, list):
        return [v.detach().clone() if isinstance(v, torch.Tensor) else v for v in obj]
    if isinstance(obj, dict):
        return dict(obj)
    raise TypeError(f"cannot checkpoint a {type(obj).__name__}: give an object with state_dict(), a "
                    f"torch.Generator, a list or a dict.")


def _restore(obj: Any, state: Any, device: torch.device) -> None:
    """Put ``state`` (from :func:`_state_of`) back into ``obj``, in place."""
    if isinstance(obj, torch.Generator):
        obj.set_state(state)
    elif hasattr(obj, "load_state_dict"):
        obj.load_state_dict(state)
    elif isinstance(obj, list):
        obj[:] = [v.to(device) if isinstance(v, torch.Tensor) else v for v in state]
    else:
        obj.clear()
        obj.update(state)


def describe_data(train) -> dict[str, Any]:
    """What a checkpoint records of the training data, to refuse resuming on other data: the
    number of images and the shape of the first (a tensor ``(N, 3, H, W)`` or a dataset)."""
    n = len(train)
    first = train[0] if n else None
    if isinstance(first, dict):
        first = first["image"]
    elif isinstance(first, (tuple, list)):
        first = first[0]
    return {"images": n, "shape": list(first.shape) if isinstance(first, torch.Tensor) else None}


# ----------------------------------------------------------------------------- the loop
class Training:
    """The steps of one ``fit()``: stages, progress bars, periodic checkpoints and resume.

    Creating it reads ``checkpoint`` if the file exists (and restores the model's weights from it);
    each :meth:`stage` then restores the state of its objects and starts where it stopped.

    Args:
        method: the method being trained (its ``name``, ``config()``, weights and device).
        checkpoint: file to write the training's progress to, and to resume from; None = no
            checkpoints (a plain training).
        every: seconds between checkpoints (0 = after every step).
        data: the training data (a tensor or dataset), recorded by :func:`describe_data`.
    """

    def __init__(self, method, checkpoint: str | Path | None = None, every: float = CHECKPOINT_EVERY, data=None):
        self.method = method
        self.path = Path(checkpoint) if checkpoint is not None else None
        self.every = every
        self.data = describe_data(data) if data is not None and self.path is not None else None
        self.device = method.device
        self.stages: dict[str, dict] = {}  # each stage's state as last saved: {"step", "steps", "state"}
        self.saved: dict | None = None  # the checkpoint this fit resumes from
        self.last_save = time.monotonic()
        self.warned = False
        if self.path is not None and self.path.exists():
            self.saved = read_training_checkpoint(self.path)
            self._check(self.saved)
            state = {k: v.to(self.device) for k, v in self.saved["model"].items()}
            try:
                method._load_state(state)
            except (RuntimeError, KeyError, AttributeError) as err:
                raise TrainingCheckpointError(f"{self.path} does not fit this {method.name} model "
                                              f"({' '.join(str(err).split())}); delete it to train from the "
                                              f"start.") from err
            self.stages = dict(self.saved["stages"])

    def _check(self, saved: dict) -> None:
        mine = {"method": self.method.name, "config": self.method.config(), "data": self.data,
                "device": self.device.type}
        plain = json.loads(json.dumps(mine, default=str))  # tuples as lists, as in the file
        theirs = json.loads(json.dumps({k: saved.get(k) for k in mine}, default=str))
        differ = [k for k in mine if plain[k] != theirs[k]]
        if differ:
            what = ", ".join(f"{k} {theirs[k]!r} there vs {plain[k]!r} here" for k in differ)
            raise TrainingCheckpointError(f"{self.path} holds the training of another model ({what}); delete it "
                                          f"to train from the start, or choose another checkpoint file.")

    def stage(self, name: str, steps: int, progress: bool = True, desc: str | None = None,
              **objects: Any) -> TrainingStage:
        """The steps of one stage; ``objects`` are what the steps depend on (optimisers, schedules,
        gradient scalers, ``torch.Generator`` s, batch orders, loss logs; anything with
        ``state_dict()``, or a list or dict changed in place), saved in every checkpoint."""
        return TrainingStage(self, name, steps, progress, desc or f"{self.method.name}: {name}", objects)

    def save(self, stage: str, step: int, steps: int, state: dict) -> None:
        """Write a checkpoint: the weights, the stages done so far, and ``stage`` after ``step`` of its
        ``steps`` steps with its objects' ``state``."""
        if self.path is None:
            return
        method = self.method
        payload = {"format": TRAINING_FORMAT, "kind": "training", "method": method.name, "config": method.config(),
                   "data": self.data, "device": self.device.type, "model": method.checkpoint_state(),
                   "stages": {**self.stages, stage: {"step": step, "steps": steps, "state": state}}, "stage": stage,
                   "step": step, "steps": steps}
        try:
            atomic_save(payload, self.path)
        except (OSError, RuntimeError) as err:  # a full disk: training goes on, unprotected
            if not self.warned:
                tqdm.write(f"warning: could not write the training checkpoint {self.path} "
                           f"({type(err).__name__}: {err}); training goes on without it.", file=sys.stderr)
                self.warned = True
        self.last_save = time.monotonic()


class TrainingStage:
    """Iterate over it to get the step numbers still to do; see :meth:`Training.stage`."""

    def __init__(self, run: Training, name: str, steps: int, progress: bool, desc: str, objects: dict[str, Any]):
        self.run, self.name, self.steps, self.objects = run, name, steps, objects
        self.start = 0
        saved = run.stages.get(name)
        if saved is not None:  # resume: put every object back as it was after `start` steps
            missing = [key for key in objects if key not in saved["state"]]
            if saved["step"] < steps and missing:
                raise TrainingCheckpointError(f"{run.path} has no saved state of {', '.join(missing)} for the "
                                              f"{name} stage (written by another version?); delete it to train "
                                              f"from the start.")
            for key, obj in objects.items():
                if key in saved["state"]:  # a finished stage keeps no optimiser state (not needed again)
                    _restore(obj, saved["state"][key], run.device)
            self.start = saved["step"]
        self.bar = tqdm(total=steps, initial=self.start, desc=desc, disable=not progress, leave=False)

    def state(self, finished: bool = False) -> dict:
        return {key: _state_of(obj) for key, obj in self.objects.items()
                if not (finished and isinstance(obj, torch.optim.Optimizer))}

    def show(self, **values: Any) -> None:
        """Show ``values`` (e.g. ``loss="0.123"``) next to the progress bar."""
        self.bar.set_postfix(**values)

    def __iter__(self) -> Iterator[int]:
        run = self.run
        done = self.start >= self.steps
        for step in range(self.start, self.steps):
            yield step  # the method's training step runs here
            self.bar.update(1)
            if run.path is not None and step + 1 < self.steps and time.monotonic() - run.last_save >= run.every:
                run.save(self.name, step + 1, self.steps, self.state())
        self.bar.close()
        if run.path is None:
            return
        final = self.state(finished=True)
        if not done:  # the end of a stage is always saved: the next stage (or post-processing) starts from it
            run.save(self.name, self.steps, self.steps, final)
        run.stages[self.name] = {"step": self.steps, "steps": self.steps, "state": final}


# ----------------------------------------------------------------------------- reading
def read_training_checkpoint(path: str | Path) -> dict:
    """The content of a training checkpoint (``weights_only=True``: nothing in it can run code).

    Raises:
        TrainingCheckpointError: the file is not a readable training checkpoint (the message names it).
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # not a torch file, unsafe content
        raise TrainingCheckpointError(f"{path} is not a readable training checkpoint ({type(err).__name__}: "
                                      f"{err}); delete it to train from the start.") from err
    if not isinstance(payload, dict) or payload.get("kind") != "training" or "stages" not in payload:
        raise TrainingCheckpointError(f"{path} is not a training checkpoint of anolearn; delete it to train "
                                      f"from the start.")
    return payload


def progress_summary(payload: dict) -> str:
    """``"step 120 of 1000"`` (with the stage's name when it is not the only one) of a checkpoint."""
    where = f"step {payload['step']} of {payload['steps']}"
    return where if payload["stage"] == "train" else f"{payload['stage']} stage, {where}"


__all__ = ["CHECKPOINT_EVERY", "LossLog", "ShuffledBatches", "Training", "TrainingCheckpointError", "TrainingStage",
           "atomic_save", "describe_data", "progress_summary", "read_training_checkpoint"]
