"""Shared fixtures: a tiny dataset in the real MVTec AD layout (real folder and file names)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

# Real MVTec AD names: bottle is RGB, screw is grayscale (as are grid and zipper).
MVTEC_FIXTURE = {
    "bottle": {"color": True, "defects": ("broken_large", "broken_small", "contamination")},
    "screw": {"color": False, "defects": ("manipulated_front", "scratch_head", "thread_side")},
}


def _write(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


def make_mvtec_tree(root: Path, size: int = 48, n_train: int = 4, n_good: int = 2, n_per_defect: int = 2) -> Path:
    """Write a miniature MVTec AD: ``root/<category>/{train/good, test/good, test/<defect>, ground_truth/<defect>}``."""
    rng = np.random.default_rng(0)
    for category, spec in MVTEC_FIXTURE.items():
        shape = (size, size, 3) if spec["color"] else (size, size)

        def image():
            return rng.integers(0, 256, shape, dtype=np.uint8)

        for i in range(n_train):
            _write(root / category / "train" / "good" / f"{i:03d}.png", image())
        for i in range(n_good):
            _write(root / category / "test" / "good" / f"{i:03d}.png", image())
        for defect in spec["defects"]:
            for i in range(n_per_defect):
                _write(root / category / "test" / defect / f"{i:03d}.png", image())
                mask = np.zeros((size, size), np.uint8)
                mask[size // 4 : size // 2, size // 4 : size // 2 + i] = 255  # 0/255 as in MVTec
                _write(root / category / "ground_truth" / defect / f"{i:03d}_mask.png", mask)
    (root / "license.txt").write_text("fixture")
    return root


@pytest.fixture
def mvtec_root(tmp_path: Path) -> Path:
    return make_mvtec_tree(tmp_path / "mvtec_anomaly_detection")
