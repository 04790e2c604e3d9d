"""The registry of methods: a short name -> the class that implements it.

A method registers itself with :func:`register`; :func:`~anolearn.methods.base.create_method`,
:func:`~anolearn.methods.base.load_method` (a checkpoint stores the name) and the settings check
(:mod:`anolearn.methods.settings`) look classes up here. Kept apart from ``base`` so that both
can read it without importing each other.
"""
from __future__ import annotations

METHODS: dict[str, type] = {}


def register(name: str):
    """Class decorator: make a method available as ``create_method(name)`` and to ``load_method``."""

    def wrap(cls):
        cls.name = name
        METHODS[name] = cls
        return cls

    return wrap


__all__ = ["METHODS", "register"]
