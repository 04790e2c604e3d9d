"""``python -m anolearn.assignments grade ...``: see :mod:`anolearn.assignments.grade`."""
import sys

from .grade import main

sys.exit(main())
