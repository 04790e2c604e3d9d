"""Where anolearn keeps data, weights and runs.

``ANOLEARN_DATA`` sets the data folder (default ``~/.cache/anolearn``). Real datasets
fetched by ``data_scripts`` land in ``<data>/<dataset>``; the synthetic dataset is written
to ``<data>/synthetic/<size>px-<profile>``.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "ANOLEARN_DATA"

# The command that fetches each real dataset; error messages quote these.
FETCH_COMMANDS = {
    "mvtec_ad": "python data_scripts/fetch_mvtec_ad.py",
    "visa": "python data_scripts/fetch_visa.py",
    "btad": "python data_scripts/fetch_btad.py",
    "dtd": "python data_scripts/fetch_dtd.py",
    "retinal_oct": "python data_scripts/fetch_retinal_oct.py",
    "synthetic": "python data_scripts/make_synthetic.py",
    "torchvision_weights": "python data_scripts/fetch_torchvision_weights.py",
}


def data_root() -> Path:
    """The anolearn data folder (created if missing)."""
    root = Path(os.environ.get(ENV_VAR) or Path.home() / ".cache" / "anolearn").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def dataset_dir(name: str) -> Path:
    """Default folder of a real dataset, e.g. ``dataset_dir("mvtec_ad")``."""
    return data_root() / name
