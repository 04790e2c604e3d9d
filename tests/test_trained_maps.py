"""Every trained method, trained briefly, finds a planted defect and leaves the border of a normal image dark.

``test_artefacts.py`` checks the pieces that caused map artefacts (transposed convolutions, centred
forgeries, zero padding, missing context at the border) on untrained networks. Here each trained
method goes through its public contract (``fit`` on normal images, ``predict`` on test images),
with the standard profile's settings (the ones that remove the artefacts) scaled down to a few
seconds of CPU training, and its maps are checked as a reader would look at them:

* **the defect is found**: on images with a planted dark disc, the map peaks on the disc;
* **normal images stay quiet**: no normal image's map reaches the height of a planted defect;
* **no frame**: on normal images the border band of the map is not raised above the interior by more
  than a small fraction of what a defect adds, and at most one normal map has its maximum in the
  band along the edge.

The normal images are a smooth random shading plus fine grain (seeded). Its statistics are the same
in every direction and at every place, so a mirrored border (the fixes' padding) looks like more of the
same texture and a correct method has no reason to mark the border. (On oriented or periodic textures,
mirroring makes patterns the network never saw, chevrons at the edge; a method may then still light the
border, which is a property of mirroring, not what is tested here.)

Two methods still fail a check; ``KNOWN_FAILURES`` marks them with what was measured.

The settings below differ from the standard profile only in sizes, steps and learning rates (listed
per method); ``test_standard_profile_keeps_the_artefact_fixes`` checks that the profile still has the
fixes these tests rely on.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from anolearn.config import get_profile
from anolearn.filters import gaussian_blur
from anolearn.methods import create_method

SEED = 0
N_TRAIN, N_TEST = 16, 4
BORDER = 2  # width in pixels of the band checked for a frame
PEAK_BAND = 4  # a normal map whose maximum lies this close to the edge "peaks at the border"


# ---------------------------------------------------------------------------------------- data
def normal_images(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """``(n, 3, size, size)`` in [0, 1]: a brownish surface with smooth random shading and fine grain."""
    shading = gaussian_blur(torch.randn(n, 1, size, size, generator=generator), 4.0)
    shading = shading / shading.flatten(1).std(1).view(n, 1, 1, 1)  # unit contrast per image
    grain = torch.randn(n, 3, size, size, generator=generator)
    colour = torch.tensor([0.55, 0.45, 0.35]).view(1, 3, 1, 1)
    return (colour + 0.08 * shading + 0.03 * grain).clamp(0, 1)


def defect_centres(size: int) -> list[tuple[int, int]]:
    """One disc per quadrant of the central region: off-centre (a centre prior misses them), away from the border."""
    near, far = 3 * size // 8, 5 * size // 8
    return [(near, near), (near, far), (far, near), (far, far)]


def plant_disc(image: torch.Tensor, centre: tuple[int, int], radius: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A dark disc (as a hole or a stain) painted on ``image (3, H, W)``; returns the image and its ``(H, W)`` mask."""
    h, w = image.shape[-2:]
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    mask = (y - centre[0]) ** 2 + (x - centre[1]) ** 2 <= radius**2
    out = image.clone()
    out[:, mask] = torch.tensor([0.10, 0.10, 0.15]).view(3, 1)
    return out, mask


def make_data(size: int, radius: int, seed: int = SEED) -> dict[str, torch.Tensor]:
    """Training images, normal test images, and test images with one planted disc each (and their masks)."""
    g = torch.Generator().manual_seed(seed)
    train = normal_images(N_TRAIN, size, g)
    normal = normal_images(N_TEST, size, g)
    planted = [plant_disc(image, c, radius) for image, c in zip(normal_images(N_TEST, size, g), defect_centres(size))]
    return {"train": train, "normal": normal, "defective": torch.stack([p[0] for p in planted]),
            "masks": torch.stack([p[1] for p in planted])}


# ---------------------------------------------------------------------------------------- checks
def peak_inside(maps: torch.Tensor, masks: torch.Tensor, tolerance: int) -> list[bool]:
    """For each map ``(H, W)``: does its maximum lie within ``tolerance`` pixels of the defect mask?"""
    grown = F.max_pool2d(masks.float()[:, None], 2 * tolerance + 1, 1, tolerance)[:, 0] > 0
    peaks = maps.flatten(1).argmax(1)
    return [bool(g.flatten()[p]) for g, p in zip(grown, peaks)]


def border_band(size: int, width: int = BORDER) -> torch.Tensor:
    """``(size, size)`` bool: the pixels less than ``width`` from the image's edge."""
    band = torch.ones(size, size, dtype=torch.bool)
    band[width:-width, width:-width] = False
    return band


# ---------------------------------------------------------------------------------------- methods
# Each case: the standard profile's settings with smaller networks, fewer steps, (some) a larger lr,
# the image size and disc radius, and how far from the disc (pixels) the map's peak may lie.
CASES = {
    "draem": dict(size=48, radius=6, tolerance=3, settings={
        "rec_width": 8, "rec_depth": 3, "seg_width": 8, "seg_depth": 3, "steps": 100, "lr": 2e-3,
        "score_filter": 5, "source": "textures"}),
    "sgsf": dict(size=48, radius=6, tolerance=3, settings={
        "ext_width": 8, "ext_depth": 3, "seg_width": 8, "seg_depth": 3, "steps": 100, "lr": 2e-3, "source": "textures",
        "retrieval_size": 64, "retrieval_grid": 2, "n_contrast": 2}),
    "riad": dict(size=64, radius=6, tolerance=3, settings={
        "base_width": 8, "depth": 3, "steps": 100, "train_crop": 32, "pad": 16, "sigma": 3.0}),
    "ssm": dict(size=64, radius=6, tolerance=3, settings={
        "base_width": 8, "depth": 3, "steps": 200, "train_crop": 32, "pad": 16, "sigma": 3.0}),
    "anoseg": dict(size=64, radius=6, tolerance=3, settings={
        "steps": 200, "input_size": 64, "bottleneck": 8, "lr": 1e-3, "detector_steps": 1}),
    "cutpaste": dict(size=96, radius=8, tolerance=4, settings={"steps": 10, "batch_size": 8}),
    "cutswap": dict(size=96, radius=8, tolerance=4, settings={"steps": 10, "batch_size": 8}),
}


def train_and_predict(name: str, seed: int = SEED, data_seed: int = SEED, **overrides) -> dict[str, torch.Tensor]:
    """Train ``name`` on the case's data; return the data and the maps of its normal and defective test images."""
    case = CASES[name]
    data = make_data(case["size"], case["radius"], data_seed)
    settings = {**get_profile("standard").schedule(name), **case["settings"], "seed": seed, **overrides}
    method = create_method(name, **settings).fit(data["train"], progress=False)
    with torch.no_grad():
        data["normal_maps"] = method.predict(data["normal"]).maps
        data["defect_maps"] = method.predict(data["defective"]).maps
    return data


# Where a method still fails a check, the case is marked with what was measured (seed 0, one thread).
KNOWN_FAILURES = {
    "anoseg": pytest.mark.xfail(strict=True, reason=(
        "edge still marked: on 3 of 4 normal images the map's maximum in the 4-pixel edge band exceeds the "
        "interior's by 0.12-0.40 of a defect's contrast (mostly the top rows). Tried without the coordinate "
        "channels, with a 16-pixel mirrored margin around the network's input, and without the adversarial loss "
        "(adversarial=False: the top rows averaged 0.25 against 0.004 inside, two threads): the edge stayed the "
        "highest part of normal maps. The defects themselves are found.")),
    "ssm": pytest.mark.xfail(strict=False, reason=(
        "normal maps rise towards the mirrored edge (edge band 1.4x the interior) and the highest normal "
        "value (0.228) exceeds the weakest defect's peak (0.217); RIAD passes the same checks. Close to the "
        "limit, so not strict.")),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=KNOWN_FAILURES[n]) if n in KNOWN_FAILURES else n
                                  for n in CASES])
def test_trained_map_finds_the_defect_and_draws_no_frame(name):
    case = CASES[name]
    data = train_and_predict(name)
    normal, defect, masks = data["normal_maps"], data["defect_maps"], data["masks"]

    # The defect is found: the map of each defective image peaks on (or right next to) the disc.
    assert all(peak_inside(defect, masks, case["tolerance"])), peak_inside(defect, masks, case["tolerance"])

    # Normal images stay below the defects: no normal map is as high as any disc's peak.
    defect_peaks = torch.stack([m[mask].max() for m, mask in zip(defect, masks)])  # (N,)
    assert normal.flatten(1).amax(1).max() < defect_peaks.min()

    # No frame: on normal images the border band is raised above the interior by less than a
    # fifth of what a defect adds to the interior.
    band = border_band(case["size"])
    interior = normal[:, ~band].mean()
    excess = (normal[:, band].mean() - interior) / (defect_peaks.mean() - interior)
    assert excess < 0.2, float(excess)

    # No border peaks: on at most one normal image does the edge band hold a maximum that stands out,
    # i.e. exceeds the interior's maximum by more than a tenth of what a defect adds. (Where a normal
    # map is flat, its argmax lands anywhere, near the edge one time in four: that is no frame.)
    near_edge = border_band(case["size"], PEAK_BAND)
    stands_out = (normal[:, near_edge].amax(1) - normal[:, ~near_edge].amax(1)) / (defect_peaks.mean() - interior)
    assert int((stands_out > 0.1).sum()) <= 1, [round(float(v), 3) for v in stands_out]


def test_standard_profile_keeps_the_artefact_fixes():
    profile = get_profile("standard")
    for name in ("draem", "sgsf"):  # whole images, mirrored padding inside the networks
        s = profile.schedule(name)
        assert s["conv_padding"] == "reflect" and s["train_crop"] is None, name
    for name in ("riad", "ssm"):  # crops in training, so mirrored context around the test image
        s = profile.schedule(name)
        assert s["train_crop"] is None or s["pad"] >= s["train_crop"] // 4, name
    anoseg = profile.schedule("anoseg")
    assert anoseg["up_mode"] == "resize" and anoseg["placement"] == "anywhere"
    for name in ("cutpaste", "cutswap"):  # trained on whole images, as they are scored
        assert profile.schedule(name)["train_crop"] is None, name
