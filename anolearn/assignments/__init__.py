"""Automatic feedback for the book's assignments (one per part of the book).

Each assignment is a notebook in ``assignments/``: the instructor version with solutions is
the source, and ``assignments/make_student.py`` generates the student version with the
solution replaced by a stub. The student runs a check cell that calls one function of
this package, which prints which property failed and on what input.

===========  ====================  ===============================  ==============================
assignment   book part             the student implements            check
===========  ====================  ===============================  ==============================
A1           I, data and metrics   ``aupro(masks, maps, fpr_limit)``  :func:`check_aupro`
===========  ====================  ===============================  ==============================
"""
from .a1_aupro import check_aupro
from .feedback import (
    AssignmentIncomplete,
    CheckFailed,
    CheckResult,
    Feedback,
    run_checks,
)

#: notebook name -> (the function the student writes, its check). Used by the tests, which
#: prove that every check fails on the student stub and passes on the instructor solution.
ASSIGNMENTS = {
    "a1_aupro": ("aupro", check_aupro),
}

__all__ = ["ASSIGNMENTS", "AssignmentIncomplete", "CheckFailed", "CheckResult", "Feedback", "check_aupro",
           "run_checks"]
