"""Focal loss against torchvision's sigmoid focal loss, cross-entropy and DRAEM's own formula."""
import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from anolearn.nn import focal_loss


def _data(seed=0, shape=(2, 1, 8, 8)):
    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(shape, generator=g)
    target = (torch.rand(shape[0], 1, *shape[2:], generator=g) < 0.3).float()
    return logits, target


@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0])
@pytest.mark.parametrize("alpha", [None, 0.25])
def test_one_logit_matches_torchvision(gamma, alpha):
    z, t = _data()
    ours = focal_loss(z, t, gamma=gamma, alpha=alpha, reduction="none")
    ref = sigmoid_focal_loss(z, t, alpha=-1 if alpha is None else alpha, gamma=gamma, reduction="none")[:, 0]
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


def test_two_logits_equal_the_sigmoid_of_their_difference():
    z, t = _data(1, (3, 2, 8, 8))
    ref = sigmoid_focal_loss(z[:, 1] - z[:, 0], t[:, 0], alpha=-1, gamma=2.0, reduction="mean")
    torch.testing.assert_close(focal_loss(z, t), ref, rtol=1e-5, atol=1e-6)


def test_gamma_zero_is_cross_entropy():
    z, t = _data(2, (2, 2, 6, 6))
    ce = F.cross_entropy(z, t[:, 0].long())
    torch.testing.assert_close(focal_loss(z, t, gamma=0.0), ce)


def test_matches_draem_code_formula():
    """DRAEM's loss.py: softmax probabilities, one-hot clamped to [1e-5, 1 - 1e-5], log(p_t + 1e-5)."""
    z, t = _data(3, (2, 2, 8, 8))
    z = z / 3  # the code's +1e-5 caps log(p_t) for p_t << 1e-4; moderate logits stay clear of that
    p = z.softmax(1).permute(0, 2, 3, 1).reshape(-1, 2)
    one_hot = F.one_hot(t.view(-1).long(), 2).float().clamp(1e-5, 1 - 1e-5)
    pt = (one_hot * p).sum(1) + 1e-5
    ref = (-(1 - pt) ** 2 * pt.log()).mean()
    torch.testing.assert_close(focal_loss(z, t), ref, rtol=1e-3, atol=1e-4)


def test_value_by_hand_and_easy_pixels_cost_little():
    z = torch.zeros(1, 2, 2, 2)  # p = 0.5: (1 - 0.5)^2 log 2
    assert focal_loss(z, torch.ones(1, 1, 2, 2)).item() == pytest.approx(0.25 * math.log(2), rel=1e-6)
    easy = torch.tensor([0.0, math.log(9)]).view(1, 2, 1, 1)  # p_t = 0.9
    ratio = focal_loss(easy, torch.ones(1, 1, 1, 1)) / F.cross_entropy(easy, torch.ones(1, 1, 1).long())
    assert ratio.item() == pytest.approx(0.01, rel=1e-5)


def test_reductions_and_errors():
    z, t = _data()
    assert focal_loss(z, t, reduction="none").shape == (2, 8, 8)
    assert focal_loss(z, t, reduction="sum").item() == pytest.approx(focal_loss(z, t).item() * 128, rel=1e-5)
    with pytest.raises(ValueError, match="reduction"):
        focal_loss(z, t, reduction="max")
    with pytest.raises(ValueError, match="logits"):
        focal_loss(torch.zeros(2, 3, 4, 4), t)
    with pytest.raises(ValueError, match="match"):
        focal_loss(z, torch.zeros(2, 1, 4, 4))
