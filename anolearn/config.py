"""One switch for the whole book: the quick and the full profile.

Every chapter, benchmark and command reads its sizes and schedules from
:func:`get_profile`, and nothing else decides them. The switch is the environment
variable ``ANOLEARN_PROFILE``:

* ``quick`` (default): small images, few of them, short schedules, so that each
  chapter runs in at most about 3 minutes on a 2-core CPU without a GPU.
* ``full``: the papers' settings (256 x 256 images, long schedules), meant for a GPU.

A second variable, ``ANOLEARN_DATASET``, picks the data every chapter uses: ``synthetic``
(default, built in) or a real dataset fetched by ``data_scripts`` (``mvtec_ad``, ``visa``,
``btad``), or any folder in MVTec AD layout. A reader with a GPU and the internet runs
``ANOLEARN_PROFILE=full ANOLEARN_DATASET=mvtec_ad``.

Example::

    >>> import os; os.environ["ANOLEARN_PROFILE"] = "quick"
    >>> from anolearn.config import get_profile
    >>> p = get_profile()
    >>> p.name, p.image_size
    ('quick', 128)

A chapter may also pass a profile explicitly (``get_profile("full")``) to *show* the
full settings without switching to them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

ENV_VAR = "ANOLEARN_PROFILE"
DATASET_ENV_VAR = "ANOLEARN_DATASET"
PROFILE_NAMES = ("quick", "full")


@dataclass(frozen=True)
class Profile:
    """Sizes and schedules shared by every chapter.

    Attributes:
        name: ``"quick"`` or ``"full"``.
        image_size: working resolution (square) at which methods train and are evaluated.
        synthetic_size: resolution at which the built-in synthetic dataset is written.
        n_train: normal training images per synthetic category.
        n_test_good: normal test images per synthetic category.
        n_test_defect: defective test images per synthetic category (spread over defect types).
        batch_size: default training batch size.
        seed: default seed for data generation and training.
        dataset: the data source chapters use (``"synthetic"``, ``"mvtec_ad"``, ... or a folder).
        schedules: per-method training settings (``{"draem": {"steps": ...}, ...}``); later
            chapters add their entries here so that all knobs stay in this one file.
    """

    name: str
    image_size: int
    synthetic_size: int
    n_train: int
    n_test_good: int
    n_test_defect: int
    batch_size: int
    seed: int = 0
    dataset: str = "synthetic"
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)

    def schedule(self, method: str) -> dict[str, Any]:
        """Training settings of ``method`` in this profile (a copy; empty if none are set)."""
        return dict(self.schedules.get(method, {}))


# The two profiles. Quick: every chapter in <= 3 CPU minutes. Full: the papers' scale.
PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick",
        image_size=128,
        synthetic_size=128,
        n_train=60,
        n_test_good=20,
        n_test_defect=40,
        batch_size=8,
        schedules={
            # A random 16k-patch memory keeps the CPU search short (0.822 vs 0.829 mean image AUROC
            # with the full ~61k-patch bank on the synthetic quick profile).
            "feature_knn": {"k": 1, "layers": (2, 4, 10), "sigma": 2.0, "max_bank": 16384},
        },
    ),
    "full": Profile(
        name="full",
        image_size=256,
        synthetic_size=256,
        n_train=240,
        n_test_good=40,
        n_test_defect=80,
        batch_size=16,
        schedules={
            "feature_knn": {"k": 1, "layers": (2, 4, 10), "sigma": 2.0},
        },
    ),
}


def get_profile(name: str | None = None, **overrides: Any) -> Profile:
    """Return the active profile.

    Args:
        name: ``"quick"`` or ``"full"``; ``None`` reads ``ANOLEARN_PROFILE`` (default ``"quick"``).
        **overrides: fields to replace, e.g. ``get_profile(image_size=64)`` in a test.

    Raises:
        ValueError: for an unknown profile name, listing the valid ones.
    """
    chosen = (name or os.environ.get(ENV_VAR) or "quick").strip().lower()
    if chosen not in PROFILES:
        raise ValueError(
            f"Unknown profile {chosen!r} (from {'argument' if name else ENV_VAR}); "
            f"choose one of {', '.join(PROFILE_NAMES)}, e.g. `export {ENV_VAR}=quick`."
        )
    profile = PROFILES[chosen]
    dataset = os.environ.get(DATASET_ENV_VAR, "").strip()
    if dataset:
        overrides.setdefault("dataset", dataset)
    return replace(profile, **overrides) if overrides else profile
