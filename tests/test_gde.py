"""Gaussian density estimation against scikit-learn's covariance estimators (the oracle)."""
import numpy as np
import pytest
import torch
from sklearn.covariance import EmpiricalCovariance, LedoitWolf, ShrunkCovariance, ledoit_wolf_shrinkage

from anolearn.methods.gde import GaussianDensity, ledoit_wolf_shrinkage as our_shrinkage


def correlated(n, d, seed):
    """Gaussian rows with a random, badly conditioned covariance and a non-zero mean."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d)) * np.logspace(0, -2, d)  # columns of very different scales
    return rng.normal(size=(n, d)) @ mixing.T + rng.normal(size=d) * 3


@pytest.mark.parametrize("n, d", [(300, 8), (40, 64), (64, 64)])
def test_ledoit_wolf_matches_sklearn(n, d):
    x = correlated(n, d, seed=n + d)
    ours = GaussianDensity("ledoit_wolf").fit(torch.from_numpy(x))
    lw = LedoitWolf().fit(x)
    assert float(ours.shrinkage) == pytest.approx(lw.shrinkage_, rel=1e-5)
    assert float(our_shrinkage(torch.from_numpy(x))) == pytest.approx(ledoit_wolf_shrinkage(x), rel=1e-9)
    queries = correlated(50, d, seed=1) * 1.5
    expected = lw.mahalanobis(queries)  # squared distances
    got = ours.score(torch.from_numpy(queries), squared=True).double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(ours.score(torch.from_numpy(queries)).double().numpy(), np.sqrt(expected), rtol=1e-5)


def test_empirical_matches_sklearn():
    x = correlated(500, 10, seed=3)
    ours = GaussianDensity(shrinkage=None).fit(torch.from_numpy(x))
    ec = EmpiricalCovariance().fit(x)
    np.testing.assert_allclose(ours.mean.double().numpy(), ec.location_, rtol=1e-5, atol=1e-6)
    queries = correlated(30, 10, seed=4)
    np.testing.assert_allclose(ours.score(torch.from_numpy(queries), squared=True).double().numpy(),
                               ec.mahalanobis(queries), rtol=1e-5)


def test_fixed_shrinkage_matches_sklearn():
    x = correlated(80, 12, seed=5)
    ours = GaussianDensity(shrinkage=0.3).fit(torch.from_numpy(x))
    sc = ShrunkCovariance(shrinkage=0.3).fit(x)
    queries = correlated(20, 12, seed=6)
    np.testing.assert_allclose(ours.score(torch.from_numpy(queries), squared=True).double().numpy(),
                               sc.mahalanobis(queries), rtol=1e-5)


def test_singular_without_shrinkage_is_a_clear_error():
    x = torch.randn(5, 20)
    with pytest.raises(ValueError, match="singular"):
        GaussianDensity(shrinkage=None).fit(x)
    GaussianDensity().fit(x)  # Ledoit-Wolf handles N < D


def test_errors_and_state_round_trip():
    with pytest.raises(ValueError):
        GaussianDensity(shrinkage=2.0)
    gde = GaussianDensity()
    with pytest.raises(RuntimeError, match="fit"):
        gde.score(torch.randn(3, 4))
    gde.fit(torch.randn(50, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        gde.score(torch.randn(3, 5))
    other = GaussianDensity()
    for name, value in gde.state_dict().items():  # buffers are resized to the checkpoint's shape
        other._buffers[name] = torch.empty_like(value)
    other.load_state_dict(gde.state_dict())
    q = torch.randn(7, 4)
    assert torch.equal(other.score(q), gde.score(q))
