"""AnoSeg's losses, and the feature-matching anomaly score of its Appendix A.

Song et al., "AnoSeg" (arXiv 2110.03396), Section 3 and Appendix A. The training batch holds
normal images ``x_Nor`` with all-ones reference maps ``A_Nor`` and forged images ``x_Ano``
whose reference map ``A_Ano`` is 0 on the forged pixels (the paper's convention: **1 =
normal**). The generator returns the reconstruction ``x_hat`` and the map ``A_hat``.

* **Segmentation loss** (pixel-wise L1)::

      L_Seg = E || A - A_hat ||_1

  With few anomalous pixels this loss collapses to an all-normal map in our short schedules;
  :func:`balanced_segmentation_loss` (our variant, the default of :class:`AnoSeg`) averages
  the L1 separately over normal and anomalous pixels.

* **Masked reconstruction loss**: reconstruct the *normal* pixels only, so the generator is
  never taught to reproduce a forged region (it should "see through" it)::

      L_Re = E || x * A - x_hat * A ||_1 / E || A ||_1

  The numerator sums over channels, the denominator counts each normal pixel once per
  channel (our reading; the paper leaves the channel count implicit), so ``L_Re`` is the
  mean absolute error over normal pixels and channels, whatever their number.

* **Conditional adversarial loss** on (image, map) pairs: real = ``(x, A)``, fake =
  ``(x_hat, A_hat)``::

      L_Adv = min_G max_D  E[log D(x, A)] + E[log(1 - D(x_hat, A_hat))]

  We train ``D`` with this objective and ``G`` with the usual *non-saturating* form,
  ``-E[log D(x_hat, A_hat)]`` (Goodfellow et al. 2014), which has stronger gradients early
  in training; the paper does not say which form it used.

* **Appendix A**, the detection GAN: feature matching (Salimans et al. 2016) on ``f``, the
  penultimate layer of the detection discriminator, and the test-time score::

      L_fea = E || f(x, A_Nor) - f(x_hat, A_hat) ||^2
      Score = alpha * MSE(f(x, A_Nor), f(x_hat, A_hat)) + beta * MSE(x, x_hat),  alpha = 1, beta = 0.1

The discriminator returns logits; ``binary_cross_entropy_with_logits`` is ``-log sigmoid``
computed stably (and allowed under mixed precision, where the plain BCE is not).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_same(a: torch.Tensor, b: torch.Tensor, names: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{names} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}.")


def segmentation_loss(A_hat: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """``L_Seg``: mean absolute difference between predicted and reference maps.

    Args:
        A_hat: ``(B, 1, H, W)`` predicted map in [0, 1], 1 = normal.
        A: ``(B, 1, H, W)`` reference map in {0, 1}, 1 = normal.

    Returns:
        Scalar tensor.
    """
    _check_same(A_hat, A, "A_hat and A")
    return (A - A_hat.float()).abs().mean()


def balanced_segmentation_loss(A_hat: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """``L_Seg`` with each class weighted equally: the mean of the L1 over normal pixels and
    the L1 over anomalous pixels (our variant, not the paper's).

    Why: with about 4 % anomalous pixels, the plain L1 is minimised by a map that says "normal"
    wherever the network is unsure (the L1 optimum of a constant is the *median*, here 1); the
    sigmoid then saturates and its gradient vanishes before the network has learned to see
    forgeries. Balancing the classes makes the uninformed optimum any constant, so there is
    nothing to collapse to. A batch without anomalous pixels gives the normal term only.

    Args and Returns: as :func:`segmentation_loss`.
    """
    _check_same(A_hat, A, "A_hat and A")
    error = (A - A_hat.float()).abs()
    normal, anomalous = A.float(), 1.0 - A.float()
    loss_normal = (error * normal).sum() / normal.sum().clamp_min(1.0)
    n_anomalous = anomalous.sum()
    loss_anomalous = (error * anomalous).sum() / n_anomalous.clamp_min(1.0)
    # without anomalous pixels the normal term alone (a tensor condition: no host sync)
    return torch.where(n_anomalous > 0, 0.5 * (loss_normal + loss_anomalous), loss_normal)


def masked_reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor, A: torch.Tensor,
                               eps: float = 1e-8) -> torch.Tensor:
    """``L_Re``: mean absolute reconstruction error over the normal pixels (``A = 1``) only.

    Args:
        x_hat: ``(B, C, H, W)`` reconstruction.
        x: ``(B, C, H, W)`` input image (the target).
        A: ``(B, 1, H, W)`` reference map, 1 = normal pixel (weights in [0, 1] also work).
        eps: guards a batch without any normal pixel.

    Returns:
        Scalar tensor; pixels with ``A = 0`` have no influence on it or its gradient.
    """
    _check_same(x_hat, x, "x_hat and x")
    if A.shape[0] != x.shape[0] or A.shape[1] != 1 or A.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"A must be (B, 1, H, W) matching x {tuple(x.shape)}, got {tuple(A.shape)}.")
    A = A.float()
    numerator = (x.float() * A - x_hat.float() * A).abs().sum()
    return numerator / (A.sum() * x.shape[1] + eps)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``D``'s side of ``L_Adv``: ``-log D(real) - log(1 - D(fake))``, averaged (logits ``(B,)``)."""
    real = F.binary_cross_entropy_with_logits(real_logits.float(), torch.ones_like(real_logits, dtype=torch.float))
    fake = F.binary_cross_entropy_with_logits(fake_logits.float(), torch.zeros_like(fake_logits, dtype=torch.float))
    return real + fake


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """``G``'s side of ``L_Adv`` (non-saturating): ``-log D(x_hat, A_hat)``, averaged."""
    return F.binary_cross_entropy_with_logits(fake_logits.float(), torch.ones_like(fake_logits, dtype=torch.float))


def feature_matching_loss(f_real: torch.Tensor, f_fake: torch.Tensor) -> torch.Tensor:
    """Appendix A's ``L_fea``: mean squared distance between discriminator features ``(B, F)``."""
    _check_same(f_real, f_fake, "f_real and f_fake")
    return (f_real.float() - f_fake.float()).pow(2).mean()


def detection_score(f_real: torch.Tensor, f_fake: torch.Tensor, x: torch.Tensor, x_hat: torch.Tensor,
                    alpha: float = 1.0, beta: float = 0.1) -> torch.Tensor:
    """Appendix A's image anomaly score, one value per image.

    Args:
        f_real: ``(B, F)`` features of the pair ``(x, A_Nor)`` (the test image with an all-ones map).
        f_fake: ``(B, F)`` features of ``(x_hat, A_hat)`` (reconstruction, AnoSeg's map).
        x, x_hat: ``(B, 3, H, W)`` test image and its reconstruction by ``G_AD``.
        alpha, beta: weights; the paper uses 1 and 0.1.

    Returns:
        ``(B,)`` scores, higher = more anomalous.
    """
    _check_same(f_real, f_fake, "f_real and f_fake")
    _check_same(x, x_hat, "x and x_hat")
    feature_term = (f_real.float() - f_fake.float()).pow(2).flatten(1).mean(1)
    pixel_term = (x.float() - x_hat.float()).pow(2).flatten(1).mean(1)
    return alpha * feature_term + beta * pixel_term
