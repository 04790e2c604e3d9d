"""Gaussian density estimation (GDE): how CutPaste turns embeddings into anomaly scores.

Li et al. (CutPaste, CVPR 2021) do not score a test image with the classifier that was
trained to spot forgeries. They fit a **single multivariate Gaussian** to the embeddings
``f(x_1), ..., f(x_N)`` of the normal training images and score a test embedding by its
Mahalanobis distance to that Gaussian:

    mu    = 1/N sum_n f(x_n)                                        (D,)
    S     = 1/N sum_n (f(x_n) - mu)(f(x_n) - mu)^T                  (D, D)  empirical covariance
    Sigma = (1 - alpha) S + alpha * (tr(S) / D) * I                 shrinkage towards a scaled identity
    d(x)  = sqrt( (f(x) - mu)^T Sigma^{-1} (f(x) - mu) )

A normal image lies near the bulk of the normal embeddings (small ``d``); an image whose
embedding moved along a direction in which normal embeddings hardly vary gets a large ``d``,
even if the move is small in Euclidean terms. That is what the inverse covariance buys.

**Why shrinkage.** With ``N`` training images and ``D``-dimensional embeddings, ``S`` has rank at
most ``N - 1``: for ``N <= D`` (60 images, 128-512 dimensions in this book) it is singular and
cannot be inverted, and for ``N`` a few times ``D`` its smallest eigenvalues are still badly
underestimated, which inflates the distance along exactly the noisiest directions. Pulling
``S`` towards ``(tr(S)/D) I`` fixes both. Ledoit and Wolf (J. Multivariate Analysis 88, 2004)
give a closed-form ``alpha`` that minimises the expected squared error of ``Sigma``; CutPaste uses
scikit-learn's ``LedoitWolf``, and so do we, written out below. With ``X`` the centred
embeddings (rows ``x_n``), ``m = tr(S)/D``:

    delta = || S - m I ||_F^2 / D                                   how far S is from the target
    beta  = min(delta, (1/N^2) sum_n || x_n x_n^T - S ||_F^2 / D)   how noisy S is
    alpha = beta / delta

(``1/N^2 sum_n ||x_n x_n^T - S||_F^2 = (1/N) (1/N sum_n ||x_n||^4) - ||S||_F^2 / N``.) This
matches ``sklearn.covariance.ledoit_wolf_shrinkage`` (tested against it).

:class:`GaussianDensity` is a small ``nn.Module`` whose fitted state (``mean``, ``precision``
``= Sigma^{-1}``, ``shrinkage``) lives in buffers, so it moves with ``.to(device)`` and is saved
and loaded with the method that owns it. The fit runs in float64 (float32 on Apple's MPS,
which has no float64) and stores float32.

Example:
    >>> gde = GaussianDensity().fit(torch.randn(200, 16))
    >>> gde.score(torch.randn(5, 16)).shape
    torch.Size([5])
"""
from __future__ import annotations

import torch
from torch import nn


def ledoit_wolf_shrinkage(x: torch.Tensor) -> torch.Tensor:
    """The Ledoit-Wolf shrinkage ``alpha`` in [0, 1] for the rows of ``x``.

    Args:
        x: ``(N, D)`` float, observations in rows (centred inside).

    Returns:
        0-d tensor, ``alpha`` (scikit-learn's ``ledoit_wolf_shrinkage(x)``, ``assume_centered=False``).
    """
    n, d = x.shape
    x = x - x.mean(0, keepdim=True)
    s = x.T @ x / n  # (D, D) empirical covariance
    m = torch.diagonal(s).sum() / d
    delta = ((s - m * torch.eye(d, dtype=x.dtype, device=x.device)) ** 2).sum() / d
    # 1/N^2 sum_n ||x_n x_n^T - S||_F^2 = (1/N)(1/N sum_n ||x_n||^4) - ||S||_F^2 / N
    beta = ((x.pow(2).sum(1) ** 2).mean() - (s**2).sum()) / (n * d)
    beta = torch.minimum(beta, delta)
    return torch.where(delta > 0, beta / delta.clamp_min(torch.finfo(x.dtype).tiny), torch.zeros_like(delta))


def shrunk_covariance(x: torch.Tensor,
                      shrinkage: float | str | None = "ledoit_wolf") -> tuple[torch.Tensor, torch.Tensor]:
    """Mean-centred covariance of the rows of ``x``, shrunk towards ``(tr(S)/D) I``.

    Args:
        x: ``(N, D)`` float.
        shrinkage: ``"ledoit_wolf"`` (closed-form ``alpha``), a number in [0, 1] (fixed ``alpha``),
            or ``None``/``0`` for the plain empirical covariance (maximum likelihood, divides by ``N``).

    Returns:
        ``(Sigma (D, D), alpha 0-d)`` in the dtype of ``x``.
    """
    n, d = x.shape
    xc = x - x.mean(0, keepdim=True)
    s = xc.T @ xc / n  # (D, D)
    if shrinkage is None:
        alpha = torch.zeros((), dtype=x.dtype, device=x.device)
    elif shrinkage == "ledoit_wolf":
        alpha = ledoit_wolf_shrinkage(x)
    elif isinstance(shrinkage, (int, float)) and 0 <= shrinkage <= 1:
        alpha = torch.tensor(float(shrinkage), dtype=x.dtype, device=x.device)
    else:
        raise ValueError(f"shrinkage must be 'ledoit_wolf', None or a number in [0, 1], got {shrinkage!r}.")
    m = torch.diagonal(s).sum() / d
    sigma = (1 - alpha) * s + alpha * m * torch.eye(d, dtype=x.dtype, device=x.device)
    return sigma, alpha


class GaussianDensity(nn.Module):
    """One Gaussian fitted to normal embeddings; scores are Mahalanobis distances.

    Args:
        shrinkage: ``"ledoit_wolf"`` (default, as CutPaste), a fixed number in [0, 1], or ``None``
            for the empirical covariance (needs more samples than dimensions).

    Buffers (after :meth:`fit`): ``mean (D,)``, ``precision (D, D)`` = ``Sigma^{-1}``, ``shrinkage``
    (0-d, the ``alpha`` used).
    """

    def __init__(self, shrinkage: float | str | None = "ledoit_wolf"):
        super().__init__()
        if not (shrinkage is None or shrinkage == "ledoit_wolf"
                or (isinstance(shrinkage, (int, float)) and 0 <= shrinkage <= 1)):
            raise ValueError(f"shrinkage must be 'ledoit_wolf', None or a number in [0, 1], got {shrinkage!r}.")
        self.shrinkage_mode = shrinkage
        self.register_buffer("mean", torch.zeros(0))
        self.register_buffer("precision", torch.zeros(0, 0))
        self.register_buffer("shrinkage", torch.zeros(()))

    @property
    def fitted(self) -> bool:
        return self.mean.numel() > 0

    @torch.no_grad()
    def fit(self, features: torch.Tensor) -> "GaussianDensity":
        """Fit ``mean`` and ``precision`` to ``features (N, D)`` (normal embeddings, N >= 2)."""
        if features.dim() != 2 or features.shape[0] < 2:
            raise ValueError(f"features must have shape (N, D) with N >= 2, got {tuple(features.shape)}.")
        if not torch.isfinite(features).all():
            raise ValueError("features contain NaN or inf; check the encoder (diverged training?).")
        work = torch.float32 if features.device.type == "mps" else torch.float64
        x = features.to(work)
        sigma, alpha = shrunk_covariance(x, self.shrinkage_mode)
        try:
            chol = torch.linalg.cholesky(sigma)
        except RuntimeError as err:  # singular: fewer samples than dimensions and no shrinkage
            raise ValueError(
                f"The covariance of {x.shape[0]} samples in {x.shape[1]} dimensions is singular; "
                "use shrinkage='ledoit_wolf' or a fixed shrinkage > 0."
            ) from err
        precision = torch.cholesky_inverse(chol)  # (D, D)
        self.mean = x.mean(0).float()
        self.precision = precision.float()
        self.shrinkage = alpha.float()
        return self

    def score(self, features: torch.Tensor, squared: bool = False) -> torch.Tensor:
        """Mahalanobis distance of each row of ``features (N, D)`` -> ``(N,)``.

        ``squared=True`` returns ``d^2``, which is what scikit-learn's ``.mahalanobis`` returns.
        """
        if not self.fitted:
            raise RuntimeError("Call fit() on normal embeddings before score().")
        if features.dim() != 2 or features.shape[1] != self.mean.shape[0]:
            raise ValueError(f"features must have shape (N, {self.mean.shape[0]}), got {tuple(features.shape)}.")
        diff = features.float() - self.mean  # (N, D)
        d2 = ((diff @ self.precision) * diff).sum(1).clamp_min(0)  # (N,)
        return d2 if squared else d2.sqrt()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.score(features)

    def extra_repr(self) -> str:
        dim = self.mean.shape[0] if self.fitted else "unfitted"
        return f"shrinkage={self.shrinkage_mode!r}, dim={dim}"


__all__ = ["GaussianDensity", "ledoit_wolf_shrinkage", "shrunk_covariance"]
