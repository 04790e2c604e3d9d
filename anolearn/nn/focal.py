"""Focal loss: cross-entropy that stops paying for pixels the network already gets right.

Lin, Goyal, Girshick, He and Dollar, "Focal Loss for Dense Object Detection", ICCV 2017.
A segmentation network trained on forged anomalies sees a few percent of anomalous pixels
and a sea of easy normal ones; plain cross-entropy is dominated by the easy majority. With
``p_t`` the predicted probability of the *true* class of a pixel, the focal loss is

    FL(p_t) = - alpha_t (1 - p_t)^gamma log(p_t),

so a pixel classified with ``p_t = 0.9`` costs ``(0.1)^2 = 1 %`` of its cross-entropy at
``gamma = 2``. ``gamma = 0`` is cross-entropy. DRAEM and SGSF both use ``gamma = 2`` and no
class weights (``alpha = None``).

Two input forms, the same loss:

* ``logits (B, 2, H, W)``: two-class logits as DRAEM's discriminative network outputs them;
  ``p_1 = softmax(logits)[:, 1]`` is the anomaly probability;
* ``logits (B, 1, H, W)``: one logit, ``p_1 = sigmoid(logit)`` (``softmax`` of ``(0, z)``).

Relation to DRAEM's code (``loss.py``, ``FocalLoss``): it takes softmax *probabilities*,
clamps the one-hot target to ``[1e-5, 1 - 1e-5]`` and adds ``1e-5`` inside the logarithm.
We take logits and use ``log_softmax`` instead (no smoothing), which is exact and stable under
float16 autocast; the two agree to about ``1e-5`` (the tests check both forms against
``torchvision.ops.sigmoid_focal_loss`` and a direct formula).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

REDUCTIONS = ("mean", "sum", "none")


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, alpha: float | None = None,
               reduction: str = "mean") -> torch.Tensor:
    """Binary focal loss per pixel.

    Args:
        logits: ``(B, 2, H, W)`` two-class logits (class 1 = anomalous) or ``(B, 1, H, W)`` one logit.
            Any trailing shape works as long as dimension 1 holds the classes.
        target: ``(B, 1, H, W)`` or ``(B, H, W)`` float/long in {0, 1}, 1 = anomalous pixel.
        gamma: focusing exponent (2 in DRAEM and SGSF; 0 = cross-entropy).
        alpha: weight of class 1 (``1 - alpha`` for class 0), as Lin et al.; None = no weights.
        reduction: ``"mean"`` over all pixels, ``"sum"`` or ``"none"`` (``(B, H, W)``).

    Returns:
        A scalar (``"mean"``/``"sum"``) or the per-pixel loss ``(B, H, W)``, float32.

    Example::

        >>> z = torch.zeros(1, 2, 4, 4)                    # p = 0.5 everywhere
        >>> round(float(focal_loss(z, torch.ones(1, 1, 4, 4))), 4)  # 0.25 * log 2
        0.1733
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}.")
    if logits.dim() < 2 or logits.shape[1] not in (1, 2):
        raise ValueError(f"focal_loss needs logits (B, 2, ...) or (B, 1, ...), got {tuple(logits.shape)}.")
    t = target.float()
    if t.dim() == logits.dim():
        t = t[:, 0]
    z = logits.float()
    if z.shape[1] == 2:
        log_p = F.log_softmax(z, dim=1)  # (B, 2, ...)
        log_p0, log_p1 = log_p[:, 0], log_p[:, 1]
    else:
        log_p1, log_p0 = F.logsigmoid(z[:, 0]), F.logsigmoid(-z[:, 0])
    if t.shape != log_p1.shape:
        raise ValueError(f"target {tuple(target.shape)} does not match logits {tuple(logits.shape)}.")
    log_pt = t * log_p1 + (1 - t) * log_p0  # log p of the true class
    pt = log_pt.exp()
    loss = -((1 - pt).clamp_min(0) ** gamma) * log_pt
    if alpha is not None:
        loss = loss * (alpha * t + (1 - alpha) * (1 - t))
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


__all__ = ["focal_loss"]
