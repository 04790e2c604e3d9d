"""Checking a method's settings before a model is built (or anything is written).

Every method takes its settings as annotated constructor arguments (``steps: int = 1000``).
:func:`check_settings` compares the settings a caller gives (keyword arguments of
:func:`~anolearn.methods.create_method`, a profile's schedule, ``--set`` on the command line,
the config stored in a checkpoint) with that signature and refuses, naming the setting:

* a name the constructor does not take (with the closest valid name as a hint);
* a value of the wrong type, read from the annotation (``int``, ``float``, ``bool``, ``str``,
  ``X | None``, ``tuple[int, ...]``, ``tuple[float, float]``, ``Sequence[int]``, ``dict``);
* a value out of range, from the small table :data:`RANGES` below (keyed by the setting's name,
  so that ``lr`` or ``batch_size`` mean the same in every method).

Why a check before the constructor: a negative step count, a zero batch size or a learning rate
of -1 otherwise fails deep inside the training loop (a ``ZeroDivisionError``, an optimiser's
``Invalid learning rate``), or worse, does not fail at all (``k=0`` neighbours gives NaN scores
that only show at evaluation). Checking is cheap and gives one clear message up front. A
method's own constructor may check more (combinations of settings, allowed strings).

The values are normalised on the way: a list becomes a tuple where a tuple is expected, and a
whole float (``1e3``, as ``--set steps=1e3`` reads) becomes an int where an int is expected.
"""
from __future__ import annotations

import difflib
import inspect
import math
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from .registry import METHODS


class SettingsError(ValueError):
    """A setting a method does not take, or a value of the wrong type or out of range.

    ``name`` is the setting concerned (None when the method itself is unknown)."""

    def __init__(self, message: str, name: str | None = None):
        super().__init__(message)
        self.name = name


# A range rule: (test of one number, what the test says in words).
Rule = tuple[Callable[[float], bool], str]
AT_LEAST_1: Rule = (lambda v: v >= 1, ">= 1")
POSITIVE: Rule = (lambda v: v > 0, "> 0")
NON_NEGATIVE: Rule = (lambda v: v >= 0, ">= 0")
PROBABILITY: Rule = (lambda v: 0 <= v <= 1, "in [0, 1]")
BELOW_1: Rule = (lambda v: 0 <= v < 1, "in [0, 1)")
RUN_FRACTION: Rule = (lambda v: 0 < v <= 1, "in (0, 1] (a fraction of the run)")
ODD: Rule = (lambda v: v >= 1 and v % 2 == 1, "an odd number >= 1")

# Ranges by setting name. A tuple or list setting (``ks``, ``blocks``, ``lr_milestones``) has the
# rule checked for each of its elements. Names no method has are harmless; a setting without
# a rule here is checked for its type only.
RANGES: dict[str, Rule] = {
    # counts: steps, epochs, batches, repetitions
    **dict.fromkeys(("steps", "epochs", "detector_steps", "refine_steps", "batch_size", "log_every",
                     "n_masks", "n_contrast", "k", "max_bank", "max_patches"), AT_LEAST_1),
    # sizes of networks, images, crops and patches (in channels or pixels)
    **dict.fromkeys(("depth", "rec_depth", "seg_depth", "ext_depth", "base_width", "rec_width", "seg_width",
                     "ext_width", "blocks", "head", "ks", "input_size", "train_crop", "patch_size",
                     "patch_stride", "bottleneck", "block", "retrieval_size", "retrieval_grid"), AT_LEAST_1),
    "width": POSITIVE,  # a channel count, or a multiplier of the paper's widths (AnoSeg's 0.125)
    "score_filter": ODD,  # side of a centred mean filter
    # optimiser
    "lr": POSITIVE, "lr_gamma": POSITIVE, "weight_decay": NON_NEGATIVE, "momentum": BELOW_1, "betas": BELOW_1,
    "lr_milestones": RUN_FRACTION,
    # probabilities and fractions
    **dict.fromkeys(("p_anomalous", "p_normal", "p_rotate", "ratio", "translate", "jitter"), PROBABILITY),
    "val_fraction": BELOW_1,
    # smoothing widths (0 = none), loss weights and exponents
    **dict.fromkeys(("sigma", "map_sigma", "score_sigma", "patch_sigma", "gamma", "lam", "alpha", "beta",
                     "lambda_seg", "lambda_re", "lambda_adv", "w_l2", "w_gms", "w_ssim", "w_mask"), NON_NEGATIVE),
    # seeds and worker processes
    **dict.fromkeys(("seed", "test_seed", "num_workers"), NON_NEGATIVE),
}
# Where one name means different things in different methods: (method, name) -> rule.
METHOD_RANGES: dict[tuple[str, str], Rule] = {
    ("draem", "beta"): PROBABILITY,  # the range of the forged patch's opacity
    ("sgsf", "beta"): PROBABILITY,
}

_TYPE_WORDS = {int: "an integer", float: "a number", bool: "True or False", str: "a string", dict: "a dict",
               type(None): "None", tuple: "a tuple", list: "a tuple"}


def signature_of(method: str) -> dict[str, inspect.Parameter]:
    """The constructor parameters of a registered method, by name."""
    return dict(inspect.signature(METHODS[method]).parameters)


def _hints(method: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(METHODS[method].__init__)
    except Exception:  # an annotation that cannot be evaluated: check what can be
        return {k: p.annotation for k, p in signature_of(method).items() if not isinstance(p.annotation, str)}


def _describe(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin in (tuple, list, Sequence) or annotation in (tuple, list):
        if len(args) == 2 and args[1] is Ellipsis or (origin is not tuple and args):
            return f"a tuple of {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s, e.g. (2, 4)"
        if args:
            return f"a tuple of {len(args)} {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
        return "a tuple, e.g. (2, 4)"
    return _TYPE_WORDS.get(origin or annotation, getattr(annotation, "__name__", str(annotation)))


_NO = object()  # "does not match this annotation"


def _convert(value: Any, annotation: Any) -> Any:
    """``value`` as ``annotation`` wants it (normalised), or ``_NO``."""
    if annotation is Any or annotation is inspect.Parameter.empty:
        return value
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        for alternative in args:
            converted = _convert(value, alternative)
            if converted is not _NO:
                return converted
        return _NO
    if annotation is type(None):
        return None if value is None else _NO
    if annotation is bool:
        return value if isinstance(value, bool) else _NO
    if annotation is int:
        if isinstance(value, bool):
            return _NO
        if isinstance(value, int):
            return value
        if isinstance(value, float) and math.isfinite(value) and value == int(value):
            return int(value)  # 1e3 written for 1000
        return _NO
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return _NO
        return value if math.isfinite(value) else _NO
    if origin in (tuple, list, Sequence) or annotation in (tuple, list, Sequence):
        if not isinstance(value, (tuple, list)):
            return _NO
        if not args:
            return tuple(value)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                return _NO
            items = [_convert(v, a) for v, a in zip(value, args)]
        else:
            items = [_convert(v, args[0]) for v in value]
        return _NO if any(i is _NO for i in items) else tuple(items)
    if isinstance(annotation, type):
        return value if isinstance(value, annotation) else _NO
    return value  # an annotation this check does not understand: leave it to the method


def _numbers(value: Any) -> list[float]:
    items = value if isinstance(value, (tuple, list)) else [value]
    return [v for v in items if isinstance(v, (int, float)) and not isinstance(v, bool)]


def check_settings(method: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Check ``settings`` against the constructor of ``method``; return them normalised.

    Args:
        method: a registered method name, e.g. ``"riad"``.
        settings: constructor keyword arguments, e.g. ``{"steps": 20, "lr": 1e-3}``.

    Returns:
        A new dict with the same keys: lists turned into tuples where the method wants a tuple,
        whole floats into ints where it wants an int.

    Raises:
        SettingsError: naming the method, the setting and what it must be.

    Example::

        >>> check_settings("riad", {"steps": 1e3, "ks": [2, 4]})
        {'steps': 1000, 'ks': (2, 4)}
        >>> check_settings("riad", {"steps": 0})
        Traceback (most recent call last):
        ...
        anolearn.methods.settings.SettingsError: riad: steps=0 is out of range: steps must be >= 1 (default 1000).
    """
    if method not in METHODS:
        raise SettingsError(f"Unknown method {method!r}; available: {', '.join(sorted(METHODS))}.")
    parameters = signature_of(method)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    hints = _hints(method)
    checked = {}
    for name, value in settings.items():
        parameter = parameters.get(name)
        if parameter is None or parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            if takes_any:
                checked[name] = value
                continue
            close = difflib.get_close_matches(name, parameters, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise SettingsError(f"{method} does not accept the setting {name!r}; {hint}its settings are: "
                                f"{', '.join(parameters)}.", name)
        default = "" if parameter.default is inspect.Parameter.empty else f" (default {parameter.default!r})"
        annotation = hints.get(name, inspect.Parameter.empty)
        converted = _convert(value, annotation)
        if converted is _NO:
            raise SettingsError(f"{method}: {name}={value!r} has the wrong type: {name} must be "
                                f"{_describe(annotation)}{default}.", name)
        test, words = METHOD_RANGES.get((method, name)) or RANGES.get(name) or (None, "")
        if test is not None and not all(test(v) for v in _numbers(converted)):
            each = "each value of " if isinstance(converted, tuple) else ""
            raise SettingsError(f"{method}: {name}={value!r} is out of range: {each}{name} must be {words}{default}.",
                                name)
        checked[name] = converted
    return checked


__all__ = ["METHOD_RANGES", "RANGES", "SettingsError", "check_settings", "signature_of"]
