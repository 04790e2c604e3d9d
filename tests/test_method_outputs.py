"""Every registered method, trained briefly on tiny data, gives the outputs recorded in a fixture.

The fixture ``tests/data/method_outputs.pt`` holds, for each case below, the image scores, the
anomaly maps (every 4th pixel) and the training history (losses) that the code produced when the fixture was
recorded. A change of the library that should not change what a method computes (moving code,
sharing helpers, adding checkpoints) must keep them: the same seed gives the same outputs.

The cases cover each method's code paths at tiny sizes (crops, padding, epochs and milestones,
both AnoSeg stages, SSM's held-out calibration and faithful inference, SGSF's guidance variants,
CutPaste's forgers and CutSwap's saliency cache). Values are compared with a tolerance of a few
float32 rounding steps, so that another CPU (other vector instructions) still passes, while any
change in the random draws, the order of operations or a setting moves them far beyond it.

When a change of outputs is *intended* (a method is retuned or fixed), record the fixture again
and say so in the commit::

    python tests/test_method_outputs.py --record
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from tiny_data import smooth_images  # noqa: E402

from anolearn.methods import create_method  # noqa: E402

FIXTURE = Path(__file__).parent / "data" / "method_outputs.pt"

DRAEM = {"rec_width": 4, "rec_depth": 2, "seg_width": 4, "seg_depth": 3, "epochs": None, "steps": 3,
         "batch_size": 4, "lr": 1e-3, "input_size": None, "score_filter": 5, "source": "textures", "log_every": 2}
SGSF = {"ext_width": 4, "ext_depth": 2, "seg_width": 4, "seg_depth": 3, "epochs": None, "steps": 3, "batch_size": 4,
        "lr": 1e-3, "input_size": None, "source": "textures", "retrieval_size": 64, "retrieval_grid": 2,
        "n_contrast": 2, "log_every": 2}
RIAD = {"ks": (2, 4), "base_width": 4, "depth": 2, "batch_size": 4, "steps": 3, "lr": 1e-3}
SSM = {"base_width": 4, "depth": 2, "batch_size": 4, "steps": 3, "lr": 1e-3}
ANOSEG = {"steps": 3, "batch_size": 4, "input_size": 32, "width": 0.125, "log_every": 2, "detector_steps": 2}
CUTPASTE = {"width": 4, "blocks": (1, 1, 1, 1), "head": (16,), "steps": 3, "batch_size": 4, "optimizer": "adam",
            "lr": 1e-3, "patch_size": 16, "patch_stride": 8, "patch_sigma": 4.0}
FAST_SWAP = {"saliency": "spectral_residual"}

# case name -> (method, settings)
CASES: dict[str, tuple[str, dict]] = {
    "raw_pixel": ("raw_pixel", {"sigma": 1.0}),
    "feature_knn": ("feature_knn", {"layers": (2, 4), "k": 2, "max_bank": 300}),
    "riad": ("riad", RIAD),
    "riad_crop_pad_epochs": ("riad", {**RIAD, "epochs": 2, "train_crop": 24, "pad": 4, "lr_milestones": (0.5,),
                                      "k_weights": "area", "smoothing": "row1d"}),
    "ssm": ("ssm", SSM),
    "ssm_faithful": ("ssm", {**SSM, "faithful": True, "val_fraction": 0.0, "image_score": "max"}),
    "draem": ("draem", DRAEM),
    "draem_crop_epochs": ("draem", {**DRAEM, "epochs": 2, "train_crop": 16, "lr_milestones": (0.5,),
                                    "conv_padding": "reflect"}),
    "sgsf": ("sgsf", SGSF),
    "sgsf_mean_perlin": ("sgsf", {**SGSF, "test_guidance": "mean", "forging": "perlin"}),
    "sgsf_denoising": ("sgsf", {**SGSF, "extractor": "denoising", "input_size": 32}),
    "sgsf_no_guidance": ("sgsf", {**SGSF, "guidance": False}),
    "anoseg": ("anoseg", ANOSEG),
    "anoseg_gan": ("anoseg", {**ANOSEG, "image_score": "gan", "seg_loss": "l1"}),
    "anoseg_variants": ("anoseg", {**ANOSEG, "adversarial": False, "up_mode": "resize", "placement": "anywhere",
                                   "map_sigma": 1.0}),
    "anoseg_pretrained": ("anoseg", {**ANOSEG, "encoder": "efficientnet_lite0"}),
    "cutpaste": ("cutpaste", CUTPASTE),
    "cutpaste_3way_sgd": ("cutpaste", {**CUTPASTE, "forger": "3way", "optimizer": "sgd", "lr": 0.01,
                                       "train_crop": 24, "max_patches": 20}),
    "cutswap": ("cutswap", {**CUTPASTE, "forger_options": FAST_SWAP}),
    "cutswap_live": ("cutswap", {**CUTPASTE, "forger": "cutswap+cutpaste", "forger_options": FAST_SWAP,
                                 "cache_saliency": False, "patch_size": None}),
}


def train_images() -> torch.Tensor:
    """``(8, 3, 32, 32)`` normal training images."""
    return smooth_images(8, 32, seed=0)


def eval_images() -> torch.Tensor:
    """``(3, 3, 32, 32)``: two normal images and one with a bright square."""
    x = smooth_images(3, 32, seed=1)
    x[2, :, 8:16, 8:16] = 1.0
    return x


def outputs(case: str) -> dict:
    """Train the case's method (CPU, seeded) and return its scores, maps and training history."""
    name, settings = CASES[case]
    torch.manual_seed(0)
    method = create_method(name, **settings).fit(train_images(), progress=False)
    out = method.predict(eval_images())
    # every 4th pixel of the maps: any change of what a method computes shows there too
    result = {"scores": out.scores.detach().cpu(), "maps": out.maps.detach().cpu()[:, ::4, ::4].contiguous(),
              "history": getattr(method, "history", None)}
    if hasattr(method, "detector_history"):
        result["detector_history"] = method.detector_history
    return result


def _numbers(history) -> torch.Tensor:
    """Every number of a history (a dict of lists or a list of dicts), in a fixed order, as float64."""
    if history is None:
        return torch.zeros(0, dtype=torch.float64)
    if isinstance(history, dict):
        values = [v for key in sorted(history) for v in history[key]]
    else:
        values = [record[key] for record in history for key in sorted(record)]
    return torch.tensor(values, dtype=torch.float64)


@pytest.fixture(scope="module")
def recorded() -> dict:
    return torch.load(FIXTURE, weights_only=True)


def test_the_fixture_covers_every_registered_method(recorded):
    from anolearn.methods import METHODS

    assert set(recorded) == set(CASES)
    assert {name for name, _ in CASES.values()} == set(METHODS)


@pytest.mark.parametrize("case", list(CASES))
def test_same_outputs_as_recorded(case, recorded):
    got, want = outputs(case), recorded[case]
    torch.testing.assert_close(got["scores"], want["scores"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got["maps"], want["maps"], rtol=1e-4, atol=1e-5)
    for key in ("history", "detector_history"):
        if key in want:
            assert type(got[key]) is type(want[key])
            if isinstance(want[key], dict):
                assert list(got[key]) == list(want[key])  # the same losses, in the same order
            torch.testing.assert_close(_numbers(got[key]), _numbers(want[key]), rtol=1e-4, atol=1e-6,
                                       equal_nan=True)


def record() -> None:
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    fixture = {}
    for case in CASES:
        print(f"recording {case}", flush=True)
        fixture[case] = outputs(case)
    torch.save(fixture, FIXTURE)
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes)")


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python tests/test_method_outputs.py --record")
    record()
