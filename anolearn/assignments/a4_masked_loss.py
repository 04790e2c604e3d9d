"""Checks for assignment A4 (Part IV, segmentation): AnoSeg's masked reconstruction loss.

The student writes ``masked_reconstruction_loss(x_hat, x, A) -> scalar tensor``::

    L_Re = || x * A - x_hat * A ||_1 / (C * || A ||_1)

over the whole batch: the mean absolute reconstruction error over the *normal* pixels
(``A = 1``; AnoSeg's convention, 1 = normal) and the ``C`` channels, so that a forged region
(``A = 0``) neither counts nor receives a gradient. The reference is
:func:`anolearn.methods.anoseg_losses.masked_reconstruction_loss`. The checks probe:

* anomalous pixels have no influence, on the value and on the gradient;
* L1 (not squared) error;
* normalisation by the number of normal pixels (not all pixels), counted once per channel,
  over the whole batch (a ratio of sums, not a mean of per-image means);
* an all-anomalous batch gives 0 (not NaN);
* the result is a differentiable scalar tensor.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..methods.anoseg_losses import masked_reconstruction_loss as reference_loss
from .feedback import CheckFailed, Feedback, run_checks

TOLERANCE = 1e-5


def random_batch(b: int, c: int, h: int, w: int, seed: int, anomalous: float = 0.3):
    """``x_hat, x`` in [0, 1] ``(B, C, H, W)`` and a binary map ``A`` ``(B, 1, H, W)`` (1 = normal)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, c, h, w, generator=g)
    x_hat = torch.rand(b, c, h, w, generator=g)
    A = (torch.rand(b, 1, h, w, generator=g) >= anomalous).float()
    return x_hat, x, A


def _call(student: Callable, x_hat: torch.Tensor, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    out = student(x_hat, x, A)
    if not isinstance(out, torch.Tensor):
        raise CheckFailed(f"The loss must be a torch.Tensor (so that .backward() works); yours returned "
                          f"{type(out).__name__}. Keep to torch operations (no .item(), no NumPy).")
    if out.dim() != 0:
        raise CheckFailed(f"The loss must be one number for the whole batch, a 0-dimensional tensor; yours has "
                          f"shape {tuple(out.shape)}. Sum (or average) over every dimension, the batch included.")
    return out


def _value(student: Callable, x_hat, x, A) -> float:
    return float(_call(student, x_hat.clone(), x.clone(), A.clone()).detach())


def _variants(x_hat: torch.Tensor, x: torch.Tensor, A: torch.Tensor) -> list[tuple[float, str]]:
    """Values of known wrong versions of the loss, each with the hint that names the mistake."""
    c = x.shape[1]
    err = (x - x_hat).abs() * A  # (B, C, H, W), 0 on anomalous pixels
    n_normal = A.sum()
    per_image = err.flatten(1).sum(1) / (A.flatten(1).sum(1) * c).clamp_min(1e-8)
    return [
        (float(((x - x_hat) * A).pow(2).sum() / (n_normal * c)),
         "You square the error: L_Re is an L1 loss, the absolute difference |x A - x_hat A|."),
        (float(err.mean()),
         ("You average over all pixels: divide by the number of normal pixels (times the channels), "
         "so that the loss does not shrink when a forged region grows.")),
        (float(err.sum() / n_normal),
         ("You count each normal pixel once, but the numerator sums over the C channels: divide by "
         "C * sum(A) (A is (B, 1, H, W), one value per pixel), so that L_Re is a mean over normal pixels and channels.")),
        (float(per_image.mean()),
         ("You average per-image means: L_Re is one ratio over the whole batch, sum of the errors over "
         "sum(A) * C, so that every normal pixel of the batch weighs the same.")),
        (float((x - x_hat).abs().mean()),
         "You ignore A: multiply both images by A (or select the pixels where A = 1) before taking the error."),
        (float(((x - x_hat).abs() * (1 - A)).sum() / ((1 - A).sum() * c)),
         "You use the anomalous pixels: A = 1 marks the normal pixels (AnoSeg's convention), 0 the forged ones."),
    ]


def _compare(student: Callable, x_hat, x, A, what: str, hint: str = "") -> None:
    got = _value(student, x_hat, x, A)
    want = float(reference_loss(x_hat, x, A))
    if abs(got - want) <= TOLERANCE:
        return
    diagnosis = next((h for v, h in _variants(x_hat, x, A) if abs(got - v) <= TOLERANCE), hint)
    raise CheckFailed(f"On {what}, your loss is {got:.5f}, the reference {want:.5f}.\n{diagnosis}".rstrip())


# ----------------------------------------------------------------------------- the checks
def masked_loss_checks(student: Callable) -> list[tuple[str, Callable[[], None]]]:
    """The named property checks for a student's ``masked_reconstruction_loss(x_hat, x, A)``."""

    def scalar_tensor():
        x_hat, x, A = random_batch(2, 3, 8, 8, seed=0)
        out = _call(student, x_hat, x, A)
        if not bool(torch.isfinite(out)):
            raise CheckFailed(f"On a random batch your loss is {float(out)}; it must be a finite number.")

    def perfect():
        _, x, A = random_batch(2, 3, 8, 8, seed=1)
        got = _value(student, x, x, A)
        if abs(got) > TOLERANCE:
            raise CheckFailed(f"When x_hat equals x the loss must be 0; yours is {got:.5f}.")

    def anomalous_ignored():
        x_hat, x, A = random_batch(2, 3, 16, 16, seed=2)
        base = _value(student, x_hat, x, A)
        g = torch.Generator().manual_seed(3)
        hidden = (A == 0).expand_as(x)
        x_hat2 = torch.where(hidden, torch.rand(x.shape, generator=g) * 10.0, x_hat)
        x2 = torch.where(hidden, -5.0 * torch.ones_like(x), x)
        changed = _value(student, x_hat2, x2, A)
        if abs(changed - base) > TOLERANCE:
            raise CheckFailed(
                f"Changing x and x_hat only on the anomalous pixels (A = 0) of a random batch changed your loss "
                f"from {base:.5f} to {changed:.5f}. Forged pixels must have no influence: the generator should "
                "not learn to reproduce a forgery.\n" + next((h for v, h in _variants(x_hat, x, A)
                                                              if abs(base - v) <= TOLERANCE), ""))

    def no_gradient_on_anomalies():
        x_hat, x, A = random_batch(2, 3, 8, 8, seed=4)
        x_hat = x_hat.clone().requires_grad_(True)
        out = _call(student, x_hat, x.clone(), A.clone())
        if not out.requires_grad:
            raise CheckFailed("Your loss has no gradient with respect to x_hat (its requires_grad is False): keep to "
                              "differentiable torch operations, without .detach(), .item(), NumPy or torch.no_grad().")
        (grad,) = torch.autograd.grad(out, x_hat)
        hidden = (A == 0).expand_as(x)
        leak = float(grad[hidden].abs().max())
        if leak > 0:
            raise CheckFailed(f"The gradient of your loss reaches the anomalous pixels of x_hat (up to {leak:.2e}): "
                              "multiply by A, or select the normal pixels, before the error is taken.")
        if float(grad[~hidden].abs().max()) == 0:
            raise CheckFailed("The gradient of your loss is 0 on the normal pixels of x_hat too: the loss does not "
                              "depend on the reconstruction.")

    def l1_error():
        x = torch.full((1, 3, 8, 8), 0.2)
        A = torch.ones(1, 1, 8, 8)
        A[..., :2, :] = 0
        _compare(student, x + 0.5, x, A, "an error of 0.5 on every pixel (a quarter of them anomalous)",
                 "The mean absolute error over normal pixels and channels is 0.5 here.")

    def normal_pixels_only():
        g = torch.Generator().manual_seed(5)
        x = torch.rand(1, 3, 16, 16, generator=g)
        values = []
        for rows in (2, 12):
            A = torch.ones(1, 1, 16, 16)
            A[..., :rows, :] = 0  # a forged band of `rows` rows
            values.append(_value(student, x + 0.3, x, A))
        if abs(values[0] - values[1]) > TOLERANCE or abs(values[0] - 0.3) > TOLERANCE:
            raise CheckFailed(
                f"With the same error 0.3 on every pixel, the loss must be 0.3 whatever the size of the forged region; "
                f"yours is {values[0]:.5f} with 2 forged rows of 16 and {values[1]:.5f} with 12. Divide by the number "
                "of normal pixels (times the channels), not by all pixels.")

    def channels():
        x_hat, x, A = random_batch(2, 1, 8, 8, seed=6)
        one = _value(student, x_hat, x, A)
        three = _value(student, x_hat.repeat(1, 3, 1, 1), x.repeat(1, 3, 1, 1), A)
        if abs(one - three) > TOLERANCE:
            ratio = three / one if one else float("nan")
            raise CheckFailed(
                f"A grey image copied into 3 channels must give the same loss as the 1-channel image; yours gives "
                f"{one:.5f} and {three:.5f} (ratio {ratio:.2f}). A is (B, 1, H, W): it broadcasts over the channels "
                "in the numerator, so the denominator must count each normal pixel C times: C * sum(A).")

    def whole_batch():
        x = torch.zeros(2, 3, 8, 8)
        x_hat = x.clone()
        x_hat[0] = 1.0  # image 0: error 1 on its few normal pixels
        A = torch.ones(2, 1, 8, 8)
        A[0, :, :, :] = 0
        A[0, :, :2, :2] = 1  # image 0 has 4 normal pixels, image 1 has 64 (error 0)
        _compare(student, x_hat, x, A, "a batch where image 0 has 4 normal pixels (error 1) and image 1 has 64 (error 0)",
                 "Normalise over the whole batch: the sum of errors over C * sum(A), A summed over every image.")

    def all_anomalous():
        x_hat, x, _ = random_batch(2, 3, 8, 8, seed=7)
        A = torch.zeros(2, 1, 8, 8)
        got = _value(student, x_hat, x, A)
        if not abs(got) <= TOLERANCE:  # also catches NaN
            raise CheckFailed(f"On a batch where every pixel is anomalous (A = 0 everywhere) the loss must be 0 "
                              f"(nothing to reconstruct); yours is {got}. Guard the division, e.g. "
                              "add a small eps (1e-8) to the denominator or clamp it to at least 1.")

    def random_cases():
        for seed, (shape, p) in enumerate([((2, 3, 16, 16), 0.1), ((4, 3, 12, 20), 0.5), ((1, 1, 9, 9), 0.8)]):
            x_hat, x, A = random_batch(*shape, seed=10 + seed, anomalous=p)
            _compare(student, x_hat, x, A, f"a random batch {shape} with about {int(100 * p)} % anomalous pixels")

    return [
        ("returns a scalar tensor", scalar_tensor),
        ("a perfect reconstruction costs 0", perfect),
        ("anomalous pixels do not change the loss", anomalous_ignored),
        ("no gradient reaches the anomalous pixels", no_gradient_on_anomalies),
        ("an L1 (absolute) error", l1_error),
        ("normalised by the number of normal pixels", normal_pixels_only),
        ("each normal pixel counted once per channel", channels),
        ("one ratio over the whole batch", whole_batch),
        ("an all-anomalous batch gives 0, not NaN", all_anomalous),
        ("matches anolearn's masked_reconstruction_loss on random batches", random_cases),
    ]


def check_masked_loss(student: Callable, verbose: bool = True, raise_on_fail: bool = True) -> Feedback:
    """Check a student's ``masked_reconstruction_loss(x_hat, x, A)`` and print specific feedback."""
    return run_checks("Assignment A4 (masked reconstruction loss)", masked_loss_checks(student), verbose=verbose,
                      raise_on_fail=raise_on_fail)
