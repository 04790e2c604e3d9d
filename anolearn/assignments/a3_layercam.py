"""Checks for assignment A3 (Part III, saliency): implement LayerCAM.

The student writes ``layercam(activations, gradients, size) -> (B, 1, H, W)``: given a layer's
activations ``A`` and the gradients ``dy^c / dA`` of the target class score (both
``(B, C, h, w)``), the map ``ReLU(sum_k ReLU(dy^c / dA^k) * A^k)``, upsampled bilinearly to
``size`` (``align_corners=False``) and min-max normalised per image.

The reference is :func:`anolearn.saliency.layercam.class_activation_maps` itself, run on a
stand-in "network" whose hooked activations are the given ``A`` and whose class score is
``sum(G * A)``, so that its gradient is exactly the given ``G``. The checks probe one idea each:

* element-wise positive gradients (not Grad-CAM's channel mean, not the raw gradient);
* the ReLU on the weighted sum (negative evidence dropped before normalising);
* min-max normalisation per image (not over the batch, not by the maximum only), and an
  all-zero map for an image with no positive evidence (not NaN);
* bilinear upsampling with ``align_corners=False`` to any (non-square) size;
* images of a batch independent of each other, and the inputs left unchanged.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..saliency.common import minmax_normalize
from ..saliency.layercam import class_activation_maps
from .feedback import CheckFailed, Feedback, run_checks

TOLERANCE = 1e-5


class _GivenLayer(torch.nn.Module):
    """A stand-in backbone: one hooked layer whose activations are ``A`` and whose class-0 score
    is ``sum(G * A)`` per image, so ``d score / dA = G`` exactly."""

    def __init__(self, activations: torch.Tensor, gradients: torch.Tensor):
        super().__init__()
        self.a, self.g = activations, gradients
        self.layers = ("given",)
        self.name = "given"

    def classify(self, images: torch.Tensor):
        a = self.a + 0.0 * images.sum()  # (B, C, h, w), part of the graph
        score = (self.g * a).flatten(1).sum(1, keepdim=True)  # (B, 1): the only class
        return score, [a]


def reference_layercam(activations: torch.Tensor, gradients: torch.Tensor, size: tuple[int, int],
                       kind: str = "layercam") -> torch.Tensor:
    """``anolearn.saliency``'s LayerCAM (or Grad-CAM) for given activations and gradients."""
    b = activations.shape[0]
    images = torch.zeros(b, 3, *size)
    maps, _ = class_activation_maps(_GivenLayer(activations.float(), gradients.float()), images, target=0,
                                    kind=kind, size=tuple(size), batch_size=max(b, 1))
    return maps[0]


def random_inputs(b: int, c: int, h: int, w: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Activations and gradients of both signs, ``(B, C, h, w)`` each (EfficientNet's block
    outputs have no final ReLU, so negative activations are realistic)."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(b, c, h, w, generator=g) + 0.3
    grads = torch.randn(b, c, h, w, generator=g)
    return a, grads


def _call(student: Callable, a: torch.Tensor, g: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    out = student(a.clone(), g.clone(), tuple(size))
    want = (a.shape[0], 1, *size)
    if not isinstance(out, torch.Tensor):
        raise CheckFailed(f"layercam must return a torch.Tensor; it returned {type(out).__name__}.")
    if tuple(out.shape) != want:
        raise CheckFailed(f"With activations of shape {tuple(a.shape)} and size={tuple(size)}, layercam must return "
                          f"shape {want} (one map per image); yours has shape {tuple(out.shape)}.")
    if not out.is_floating_point():
        raise CheckFailed(f"layercam must return a float tensor; yours has dtype {out.dtype}.")
    return out.detach().float().cpu()


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.isfinite(a).all()) and float((a - b).abs().max()) <= TOLERANCE


def _variants(a: torch.Tensor, g: torch.Tensor, size: tuple[int, int]) -> list[tuple[torch.Tensor, str]]:
    """Known wrong versions of the map, each with the hint that names the mistake."""

    def finish(cam, relu=True, mode="bilinear", align=False, norm="image"):
        cam = F.relu(cam) if relu else cam
        if mode == "nearest":
            cam = F.interpolate(cam, size=size, mode="nearest")
        else:
            cam = F.interpolate(cam, size=size, mode=mode, align_corners=align)
        if norm == "image":
            return minmax_normalize(cam)
        if norm == "batch":
            lo, hi = cam.min(), cam.max()
            return (cam - lo) / (hi - lo)
        return cam / cam.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)  # "max": divide by the max only

    layer = (F.relu(g) * a).sum(1, keepdim=True)
    return [
        (reference_layercam(a, g, size, kind="gradcam"),
         ("Your map is Grad-CAM: one weight per channel (the gradient averaged over space). LayerCAM weights "
         "every location by its own gradient: w_ij^k = ReLU(dy/dA_ij^k), multiplied element-wise with A_ij^k.")),
        (finish((g * a).sum(1, keepdim=True)),
         ("You weight with the raw gradient: negative gradients (evidence against the class) must be set to 0 "
         "first, w = ReLU(gradients), before multiplying with the activations.")),
        (finish((g.abs() * a).sum(1, keepdim=True)),
         "You weight with |gradients|: LayerCAM keeps positive gradients only, w = ReLU(gradients)."),
        (finish(layer, relu=False),
         ("The weighted sum can be negative; apply ReLU to it (keep only positive evidence) before upsampling "
         "and normalising. Without it, min-max maps the most negative location to 0 and lifts everything else.")),
        (finish(layer, norm="batch"),
         ("You normalise over the whole batch: min-max normalise each image's map on its own, so that every "
         "map spans [0, 1] (use the min and max over dims (1, 2, 3) per image).")),
        (finish(layer, norm="max"),
         ("You divide by the maximum only: min-max normalisation also subtracts each map's minimum, "
         "(M - min M) / (max M - min M).")),
        (finish(layer, mode="nearest"),
         ("You upsample with nearest-neighbour: use bilinear interpolation, "
         "F.interpolate(cam, size=size, mode='bilinear', align_corners=False).")),
        (finish(layer, align=True),
         ("You upsample with align_corners=True: use align_corners=False, which treats pixels as squares "
         "(their centres at half-integer positions), as the reference and pytorch-grad-cam do.")),
        (finish(layer, mode="bicubic"),
         "You upsample bicubically: use bilinear interpolation (align_corners=False)."),
    ]


def _compare(student: Callable, a: torch.Tensor, g: torch.Tensor, size: tuple[int, int], what: str,
             hint: str = "") -> None:
    got = _call(student, a, g, size)
    want = reference_layercam(a, g, size)
    if _close(got, want):
        return
    if not bool(torch.isfinite(got).all()):
        diagnosis = ("Your map contains NaN or inf: a map with no positive evidence is flat (max = min); "
                     "min-max normalisation must turn it into zeros instead of dividing by 0.")
    else:
        diagnosis = next((h for v, h in _variants(a, g, size) if _close(got, v)), "")
        if not diagnosis:
            i = int((got - want).abs().flatten(1).amax(1).argmax())
            diagnosis = (f"The largest difference is in image {i}: "
                         f"{float((got[i] - want[i]).abs().max()):.4f}. " + hint)
    raise CheckFailed(f"On {what}, your map differs from anolearn.saliency.layercam "
                      f"(max difference {float((got - want).abs().nan_to_num(1.0).max()):.4f}).\n{diagnosis}".rstrip())


# ----------------------------------------------------------------------------- the inputs
def _negative_gradients():
    """Negative gradients where the activations are negative: their product is positive, so a
    raw-gradient weighting lights up locations that are evidence *against* the class."""
    a, g = random_inputs(2, 4, 6, 6, seed=11)
    a[:, :, :3] = -a[:, :, :3].abs()  # top half: negative activations ...
    g[:, :, :3] = -g[:, :, :3].abs()  # ... with negative gradients
    return a, g


def _negative_evidence():
    """Positive gradients and activations of both signs: the weighted sum is negative in places."""
    a, g = random_inputs(2, 3, 6, 6, seed=12)
    return a - 0.5, g.abs()


def _positive_everywhere():
    """A weighted sum that is positive everywhere (its minimum is well above 0)."""
    a, g = random_inputs(2, 3, 5, 5, seed=13)
    return a.abs() + 1.0, g.abs() + 0.5


def _different_scales():
    """Two images whose maps differ by a factor of 100 in magnitude."""
    a, g = random_inputs(2, 4, 6, 6, seed=14)
    a[1] *= 100.0
    return a, g


def _nothing_positive():
    """Image 1 has only negative gradients: its weighted map is 0 everywhere (flat)."""
    a, g = random_inputs(2, 4, 5, 5, seed=15)
    g[1] = -g[1].abs()
    return a, g


# ----------------------------------------------------------------------------- the checks
def layercam_checks(student: Callable) -> list[tuple[str, Callable[[], None]]]:
    """The named property checks for a student's ``layercam(activations, gradients, size)``."""

    def shape_and_range():
        a, g = random_inputs(3, 8, 7, 7, seed=0)
        got = _call(student, a, g, (28, 28))
        if not bool(torch.isfinite(got).all()):
            raise CheckFailed("On random activations and gradients (3 images), your map contains NaN or inf.")
        lo, hi = got.flatten(1).amin(1), got.flatten(1).amax(1)
        if float(lo.min()) < -TOLERANCE or float(hi.max()) > 1 + TOLERANCE:
            raise CheckFailed(f"Maps must lie in [0, 1]; on random inputs yours span [{float(lo.min()):.4f}, "
                              f"{float(hi.max()):.4f}]. Min-max normalise each image's map.")
        if not bool(((lo.abs() <= TOLERANCE) & ((hi - 1).abs() <= TOLERANCE)).all()):
            raise CheckFailed(f"Each map must span exactly [0, 1] after min-max normalisation; yours have minima "
                              f"{[round(float(v), 4) for v in lo]} and maxima {[round(float(v), 4) for v in hi]}.")

    def elementwise():
        a, g = random_inputs(2, 6, 6, 6, seed=1)
        _compare(student, a, g, (6, 6), "random activations and gradients (no upsampling: size = the layer's size)")

    def positive_gradients():
        a, g = _negative_gradients()
        _compare(student, a, g, (6, 6), "negative gradients at locations with negative activations",
                 "Only positive gradients count: w = ReLU(gradients).")

    def relu_on_map():
        a, g = _negative_evidence()
        _compare(student, a, g, (6, 6), "a layer whose weighted sum is negative at some locations",
                 "Apply ReLU to the weighted sum before normalising.")

    def minmax():
        a, g = _positive_everywhere()
        _compare(student, a, g, (5, 5), "a layer whose map is positive everywhere (minimum above 0)",
                 "Normalise with (M - min M) / (max M - min M) per image.")

    def per_image():
        a, g = _different_scales()
        _compare(student, a, g, (6, 6), "two images whose maps differ 100-fold in magnitude",
                 "Normalise each image's map on its own.")

    def flat_map():
        a, g = _nothing_positive()
        got = _call(student, a, g, (10, 10))
        if not bool(torch.isfinite(got[1]).all()) or float(got[1].abs().max()) > TOLERANCE:
            bad = "NaN" if not bool(torch.isfinite(got[1]).all()) else f"values up to {float(got[1].abs().max()):.4f}"
            raise CheckFailed(f"Image 1 of this batch has only negative gradients, so its map is 0 everywhere "
                              f"(flat: max = min); yours holds {bad}. A flat map has nothing salient: return "
                              "zeros there, e.g. divide by (max - min) only where it is above a small epsilon.")
        _compare(student, a, g, (10, 10), "a batch where image 1 has no positive evidence")

    def upsampling():
        a, g = random_inputs(2, 4, 4, 4, seed=2)
        _compare(student, a, g, (16, 16), "a 4 x 4 layer upsampled to 16 x 16",
                 "Upsample with F.interpolate(cam, size=size, mode='bilinear', align_corners=False).")

    def any_size():
        a, g = random_inputs(2, 3, 5, 7, seed=3)
        _compare(student, a, g, (23, 40), "a 5 x 7 layer upsampled to 23 x 40 (non-square, not a multiple)",
                 "Use size = (H, W) as given: rows first.")

    def batch_independent():
        a, g = random_inputs(3, 4, 6, 6, seed=4)
        together = _call(student, a, g, (12, 12))
        for i in range(3):
            alone = _call(student, a[i:i + 1], g[i:i + 1], (12, 12))
            if not _close(together[i:i + 1], alone):
                raise CheckFailed(
                    f"Image {i}'s map changes when it is computed in a batch of 3 rather than alone (max difference "
                    f"{float((together[i:i + 1] - alone).abs().max()):.4f}). Sum over channels (dim 1) only, and take the "
                    "min and max for normalisation per image, never over the batch dimension.")

    def inputs_unchanged():
        a, g = random_inputs(2, 4, 5, 5, seed=5)
        a_in, g_in = a.clone(), g.clone()
        student(a_in, g_in, (10, 10))
        for name, before, after in (("activations", a, a_in), ("gradients", g, g_in)):
            if not torch.equal(before, after):
                raise CheckFailed(f"Your function changed its input `{name}` in place (e.g. with relu_ or clamp_ or "
                                  "`x[x < 0] = 0`): the caller's tensor is modified. Use out-of-place operations "
                                  "(F.relu(g), g.clamp(min=0)).")

    def random_cases():
        for seed, (shape, size) in enumerate([((4, 16, 7, 7), (56, 56)), ((2, 24, 14, 10), (28, 20)),
                                              ((1, 40, 3, 3), (32, 32))]):
            a, g = random_inputs(*shape, seed=20 + seed)
            _compare(student, a, g, size, f"random layer {shape} upsampled to {size}")

    return [
        ("returns one (B, 1, H, W) map per image, spanning [0, 1]", shape_and_range),
        ("each location weighted by its own gradient", elementwise),
        ("only positive gradients count", positive_gradients),
        ("ReLU on the weighted sum", relu_on_map),
        ("min-max normalisation", minmax),
        ("each image normalised on its own", per_image),
        ("an image with no positive evidence gives zeros, not NaN", flat_map),
        ("bilinear upsampling (align_corners=False)", upsampling),
        ("any output size", any_size),
        ("images of a batch are independent", batch_independent),
        ("inputs left unchanged", inputs_unchanged),
        ("matches anolearn.saliency.layercam on random layers", random_cases),
    ]


def check_layercam(student: Callable, verbose: bool = True, raise_on_fail: bool = True) -> Feedback:
    """Check a student's ``layercam(activations, gradients, size)`` and print specific feedback."""
    return run_checks("Assignment A3 (LayerCAM)", layercam_checks(student), verbose=verbose,
                      raise_on_fail=raise_on_fail)
