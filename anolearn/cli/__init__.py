"""The command line, ``python -m anolearn`` (see :mod:`anolearn.cli.main`)."""
from .main import main

__all__ = ["main"]
