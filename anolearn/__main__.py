"""``python -m anolearn ...``: the command line (see :mod:`anolearn.cli`)."""
import sys

from .cli import main

sys.exit(main())
