"""Automatic feedback for the book's assignments (one per part of the book).

Each assignment is a notebook in ``assignments/``: the instructor version with solutions is
the source, and ``assignments/make_student.py`` generates the student version with the
solution replaced by a stub. The student runs a check cell that calls one function of
this package, which prints which property failed and on what input.

===========  ====================  ===============================  ==============================
assignment   book part             the student implements            check
===========  ====================  ===============================  ==============================
A1           I, data and metrics   ``aupro(masks, maps, fpr_limit)``  :func:`check_aupro`
A2           II, forging           ``perlin_noise(gradients, size)``  :func:`check_perlin`
A3           III, saliency         ``layercam(activations,``          :func:`check_layercam`
                                   ``gradients, size)``
A4           IV, segmentation      ``masked_reconstruction_loss(``    :func:`check_masked_loss`
                                   ``x_hat, x, A)``
A5           V, masking            ``grid_masks(k, size, n,``         :func:`check_grid_masks`
                                   ``generator)``
===========  ====================  ===============================  ==============================
"""
from .a1_aupro import check_aupro
from .a2_perlin import check_perlin
from .a3_layercam import check_layercam
from .a4_masked_loss import check_masked_loss
from .a5_grid_masks import check_grid_masks
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
    "a2_perlin": ("perlin_noise", check_perlin),
    "a3_layercam": ("layercam", check_layercam),
    "a4_masked_loss": ("masked_reconstruction_loss", check_masked_loss),
    "a5_grid_masks": ("grid_masks", check_grid_masks),
}

__all__ = ["ASSIGNMENTS", "AssignmentIncomplete", "CheckFailed", "CheckResult", "Feedback", "check_aupro",
           "check_grid_masks", "check_layercam", "check_masked_loss", "check_perlin", "run_checks"]
