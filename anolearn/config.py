"""One switch for the whole book: the quick, standard and full profiles.

Every chapter, benchmark and command reads its sizes and schedules from
:func:`get_profile`, and nothing else decides them. The switch is the environment
variable ``ANOLEARN_PROFILE``:

* ``quick`` (default): small images, few of them, short schedules, so that each
  chapter runs in at most about 3 minutes on a 2-core CPU without a GPU.
* ``standard``: the same images, each method trained so that it works on a laptop CPU (a few
  minutes per method and category); the default of ``python -m anolearn train`` and ``benchmark``.
* ``full``: the papers' settings (256 x 256 images, long schedules), meant for a GPU.

A second variable, ``ANOLEARN_DATASET``, picks the data every chapter uses: ``synthetic``
(default, built in) or a real dataset fetched by ``data_scripts`` (``mvtec_ad``, ``visa``,
``btad``), or any folder in MVTec AD layout. A reader with a GPU and the
internet runs
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
PROFILE_NAMES = ("quick", "standard", "full")


@dataclass(frozen=True)
class Profile:
    """Sizes and schedules shared by every chapter.

    Attributes:
        name: ``"quick"``, ``"standard"`` or ``"full"``.
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
        synthetic_name: use the synthetic dataset written for this profile name instead of
            one of its own (None = its own).
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
    synthetic_name: str | None = None

    @property
    def synthetic_folder(self) -> str:
        """Name of the synthetic dataset's folder, ``<size>px-<profile>``; a profile that only trains
        differently (``standard``) shares the quick profile's images through ``synthetic_name``."""
        return f"{self.synthetic_size}px-{self.synthetic_name or self.name}"

    def schedule(self, method: str) -> dict[str, Any]:
        """Training settings of ``method`` in this profile (a copy; empty if none are set)."""
        return dict(self.schedules.get(method, {}))


# The three profiles. Quick: every chapter in <= 3 CPU minutes. Standard: every method learns on a laptop
# CPU. Full: the papers' scale.
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
            # AnoSeg (chapter 7): Table 6's networks at 1/8 width, run at 64 x 64 with the paper's 8 x 8
            # bottleneck, Adam 2e-4, 250 steps (~30 s on one CPU thread); maps are resized back for the metrics.
            "anoseg": {"steps": 250, "batch_size": 8, "input_size": 64, "width": 0.125, "bottleneck": 8,
                       "lr": 2e-4, "detector_steps": 100, "score_sigma": 4.0, "log_every": 10},
            # CutPaste / CutSwap (chapter 9): a narrow one-block-per-stage ResNet from scratch, trained on
            # random 64 px crops with Adam; 32 px patches at stride 16 for the maps. Same budget for both.
            "cutpaste": {"forger": "cutpaste", "width": 16, "blocks": (1, 1, 1, 1), "head": (128,), "steps": 250,
                         "batch_size": 16, "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "train_crop": 64,
                         "patch_size": 32, "patch_stride": 16, "patch_sigma": 8.0},
            "cutswap": {"forger": "cutswap", "width": 16, "blocks": (1, 1, 1, 1), "head": (128,), "steps": 250,
                        "batch_size": 16, "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "train_crop": 64,
                        "patch_size": 32, "patch_stride": 16, "patch_sigma": 8.0},
            # RIAD / SSM (chapters 10-11): a narrow U-Net (8-16-32-64-64) trained on 64 px crops with a 10x
            # larger lr than the papers: about 90 s of training per category on one CPU thread (width 16
            # for 150 steps took as long and reached a higher training loss).
            "riad": {"ks": (2, 4, 8, 16), "base_width": 8, "depth": 4, "steps": 300, "batch_size": 8,
                     "train_crop": 64, "lr": 1e-3, "lr_milestones": (0.8,), "sigma": 7.0},
            "ssm": {"ks": (2, 4, 8), "base_width": 8, "depth": 4, "steps": 300, "batch_size": 8,
                    "train_crop": 64, "lr": 1e-3, "lr_milestones": (0.8,), "refine_steps": 2, "ratio": 0.8,
                    "sigma": 7.0, "val_fraction": 0.1},
            # DRAEM / SGSF (chapter 8): both networks at base width 8 (DRAEM: 128 / 64), trained on 64 px crops
            # of the 128 px images, 200 steps of 8, Adam 1e-3 (10x the papers') x0.2 at 80 %: the same budget and
            # lr schedule for both (the papers' schedules differ). DRAEM's 21 px score filter scaled to 11 px.
            "draem": {"rec_width": 8, "rec_depth": 4, "seg_width": 8, "seg_depth": 5, "epochs": None, "steps": 200,
                      "batch_size": 8, "lr": 1e-3, "lr_milestones": (0.8,), "lr_gamma": 0.2, "input_size": None,
                      "train_crop": 64, "score_filter": 11},
            "sgsf": {"ext_width": 8, "ext_depth": 4, "seg_width": 8, "seg_depth": 5, "epochs": None, "steps": 200,
                     "batch_size": 8, "lr": 1e-3, "lr_milestones": (0.8,), "lr_gamma": 0.2, "input_size": None,
                     "train_crop": 64},
        },
    ),
    # Standard: the same images as quick, each method's recipe for a laptop CPU (a few minutes of training per
    # method and category; the seconds of every cell are in benchmarks/results/standard_suite/, measured under
    # load; benchmarks/results/standard_timing.md estimates them on an idle machine). What differs from quick, and why:
    # * whole 128 px images (DRAEM, SGSF, CutPaste, CutSwap, AnoSeg) instead of 64 px crops: a network trained
    #   on crops but run on whole images has never seen the image border and lights it up;
    # * where crops stay (RIAD, SSM: their masked passes make whole images slow), the test image is padded by
    #   mirroring (pad=16) so that every pixel has the context it had in training;
    # * reflect padding inside DRAEM's and SGSF's convolutions (zero padding draws a frame on the map);
    # * an ImageNet-pretrained EfficientNet-Lite0 (the backbone of feature_knn) as the encoder: fine-tuned
    #   in CutPaste and CutSwap (the CutPaste paper's pretrained variant), frozen in AnoSeg (its decoders and
    #   discriminator learn from scratch with the paper's losses); from scratch, a few hundred steps cannot
    #   learn features that separate subtle forgeries from normal texture;
    # * AnoSeg's decoder upsamples by resize + convolution (transposed convolutions drew a checkerboard)
    #   and its forgeries may fall anywhere (centred ones taught the coordinate channels a central blob).
    "standard": Profile(
        name="standard",
        image_size=128,
        synthetic_size=128,
        n_train=60,
        n_test_good=20,
        n_test_defect=40,
        batch_size=8,
        synthetic_name="quick",
        schedules={
            "feature_knn": {"k": 1, "layers": (2, 4, 10), "sigma": 2.0, "max_bank": 16384},
            # 128 px input with a 16 x 16 bottleneck (quick: 64 px, 8 x 8), 300 steps of 8.
            "anoseg": {"steps": 300, "batch_size": 8, "input_size": 128, "width": 0.125, "bottleneck": 16,
                       "lr": 2e-4, "detector_steps": 100, "score_sigma": 4.0, "log_every": 10, "up_mode": "resize",
                       "placement": "anywhere", "encoder": "efficientnet_lite0"},
            # A pretrained encoder, fine-tuned: a 10x smaller lr than quick (not to wash out its ImageNet
            # features) and 60 steps of 16 whole images suffice; patches at stride 8 (quick: 16).
            "cutpaste": {"forger": "cutpaste", "encoder": "efficientnet_lite0", "head": (128,), "steps": 60,
                         "batch_size": 16, "optimizer": "adam", "lr": 1e-4, "weight_decay": 0.0, "train_crop": None,
                         "patch_size": 32, "patch_stride": 8, "patch_sigma": 8.0},
            "cutswap": {"forger": "cutswap", "encoder": "efficientnet_lite0", "head": (128,), "steps": 60,
                        "batch_size": 16, "optimizer": "adam", "lr": 1e-4, "weight_decay": 0.0, "train_crop": None,
                        "patch_size": 32, "patch_stride": 8, "patch_sigma": 8.0},
            # 64 px crops as in quick but 800 steps (quick: 300) and mirrored padding at test time; K = {2, 4, 8}
            # (quick adds 16: 16 px cells on a 64 px crop leave a 4 x 4 grid, too coarse to inpaint).
            "riad": {"ks": (2, 4, 8), "base_width": 8, "depth": 4, "steps": 800, "batch_size": 8, "train_crop": 64,
                     "pad": 16, "lr": 1e-3, "lr_milestones": (0.8,), "sigma": 7.0},
            # As RIAD; 450 steps because each SSM step also trains the mask branch.
            "ssm": {"ks": (2, 4, 8), "base_width": 8, "depth": 4, "steps": 450, "batch_size": 8, "train_crop": 64,
                    "pad": 16, "lr": 1e-3, "lr_milestones": (0.8,), "refine_steps": 2, "ratio": 0.8, "sigma": 7.0,
                    "val_fraction": 0.1},
            # Whole images with reflect padding, 250 steps (quick: 64 px crops, zero padding, 200 steps).
            "draem": {"rec_width": 8, "rec_depth": 4, "seg_width": 8, "seg_depth": 5, "epochs": None, "steps": 250,
                      "batch_size": 8, "lr": 1e-3, "lr_milestones": (0.8,), "lr_gamma": 0.2, "input_size": None,
                      "train_crop": None, "score_filter": 11, "conv_padding": "reflect"},
            "sgsf": {"ext_width": 8, "ext_depth": 4, "seg_width": 8, "seg_depth": 5, "epochs": None, "steps": 250,
                     "batch_size": 8, "lr": 1e-3, "lr_milestones": (0.8,), "lr_gamma": 0.2, "input_size": None,
                     "train_crop": None, "conv_padding": "reflect"},
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
            # AnoSeg: Table 6 at full width, 256 x 256 (paper); our choices (the paper gives no optimiser or
            # schedule): Adam 2e-4 / betas (0.5, 0.999), 4000 steps of 16 images, detection GAN 2000 steps.
            "anoseg": {"steps": 4000, "batch_size": 16, "input_size": 256, "width": 1.0, "bottleneck": 8,
                       "lr": 2e-4, "detector_steps": 2000, "score_sigma": 4.0, "log_every": 50},
            # CutPaste's settings (Li et al. 2021, via secondary sources): ResNet-18 from scratch, 32 images
            # per class and step, SGD 0.03 / momentum 0.9 / cosine, 256 epochs x 256 steps; patch maps from
            # 32 px patches at stride 4. CutSwap (abstract only) gets the same protocol.
            "cutpaste": {"forger": "cutpaste", "width": 64, "blocks": (2, 2, 2, 2), "head": (512, 128),
                         "steps": 65536, "batch_size": 32, "optimizer": "sgd", "lr": 0.03, "momentum": 0.9,
                         "weight_decay": 3e-5, "patch_size": 32, "patch_stride": 4, "patch_sigma": 4.0},
            "cutswap": {"forger": "cutswap", "width": 64, "blocks": (2, 2, 2, 2), "head": (512, 128),
                        "steps": 65536, "batch_size": 32, "optimizer": "sgd", "lr": 0.03, "momentum": 0.9,
                        "weight_decay": 3e-5, "patch_size": 32, "patch_stride": 4, "patch_sigma": 4.0},
            # RIAD (Zavrtanik et al. 2021; plutoyuxie's re-implementation): U-Net 64, transposed convs,
            # K = {2, 4, 8, 16}, Adam 1e-4 / wd 1e-5, batch 4, 300 epochs, lr x0.1 at epoch 250.
            "riad": {"ks": (2, 4, 8, 16), "base_width": 64, "depth": 4, "up_mode": "transpose", "epochs": 300,
                     "batch_size": 4, "lr": 1e-4, "weight_decay": 1e-5, "lr_milestones": (249 / 300,),
                     "sigma": 7.0},
            # SSM (official code, MediaBrain-SJTU/SSM): U-Net 64 with mask blocks, k in {2, 4, 8}, batch 32,
            # Adam 1e-4 / wd 1e-5, lr x0.1 at epochs 15/30/45 (as fractions), T = 2, ratio 0.8, sigma 7.
            # The code's 50 epochs are for Retinal-OCT's 26k images (benchmarks/ssm_retinal_oct.py uses
            # them); on a few hundred images they would be ~400 steps, so we take RIAD's 300 epochs.
            "ssm": {"ks": (2, 4, 8), "base_width": 64, "depth": 4, "epochs": 300, "batch_size": 32, "lr": 1e-4,
                    "weight_decay": 1e-5, "lr_milestones": (0.28, 0.58, 0.88), "w_mask": 1.0, "refine_steps": 2,
                    "ratio": 0.8, "sigma": 7.0, "val_fraction": 0.1},
            # DRAEM (official code): widths 128 / 64, 700 epochs of 8 at 256 px, Adam 1e-4 x0.2 at 80 / 90 %,
            # score = max of the 21 x 21 mean-filtered map. SGSF (journal version): batch 16, Adam 1e-4 x0.1 at
            # 50 / 70 / 90 %, 256 px; its iteration count is not known to us, so it gets DRAEM's 700 epochs.
            "draem": {"epochs": 700, "batch_size": 8, "lr": 1e-4, "lr_milestones": (0.8, 0.9), "lr_gamma": 0.2,
                      "input_size": 256, "score_filter": 21},
            "sgsf": {"epochs": 700, "batch_size": 16, "lr": 1e-4, "lr_milestones": (0.5, 0.7, 0.9), "lr_gamma": 0.1,
                     "input_size": 256},
        },
    ),
}


def get_profile(name: str | None = None, default: str = "quick", **overrides: Any) -> Profile:
    """Return the active profile.

    Args:
        name: ``"quick"``, ``"standard"`` or ``"full"``; ``None`` reads ``ANOLEARN_PROFILE``.
        default: the profile when neither ``name`` nor ``ANOLEARN_PROFILE`` gives one (chapters:
            ``"quick"``; the command line passes ``"standard"``).
        **overrides: fields to replace, e.g. ``get_profile(image_size=64)`` in a test.

    Raises:
        ValueError: for an unknown profile name, listing the valid ones.
    """
    chosen = (name or os.environ.get(ENV_VAR) or default).strip().lower()
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
