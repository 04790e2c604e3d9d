"""Batched k-means against scikit-learn's KMeans on the same data."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans

from anolearn.saliency import inertia, kmeans, quantile_init, range_init, top_cluster


def _sorted_sklearn(km: KMeans, key: int = 0):
    order = np.argsort(km.cluster_centers_[:, key])
    rank = np.argsort(order)
    return rank[km.labels_], km.cluster_centers_[order]


@pytest.mark.parametrize("start", ["quantile", "range"])
@pytest.mark.parametrize("k", [2, 3, 5])
def test_values_match_sklearn_lloyd_from_same_start(k, start):
    gen = torch.Generator().manual_seed(k)
    maps = torch.rand(3, 1, 24, 24, generator=gen, dtype=torch.float64) ** 2  # skewed, like saliency
    labels, centroids = kmeans(maps, k, init=start)
    assert labels.shape == (3, 24, 24) and centroids.shape == (3, k)
    init = (quantile_init if start == "quantile" else range_init)(maps.flatten(1)[..., None], k)
    for i in range(3):
        km = KMeans(k, init=init[i].numpy(), n_init=1, algorithm="lloyd", tol=0.0, max_iter=300)
        km.fit(maps[i].reshape(-1, 1).numpy())
        ref_labels, ref_centres = _sorted_sklearn(km)
        assert np.array_equal(labels[i].flatten().numpy(), ref_labels)
        np.testing.assert_allclose(centroids[i].numpy(), ref_centres[:, 0], atol=1e-12)


def test_values_reach_sklearn_kmeanspp_optimum():
    # Three well-separated groups: any good k-means finds the same partition.
    rng = np.random.default_rng(0)
    rows = [np.concatenate([rng.normal(m, 0.03, n) for m, n in ((0.1, 300), (0.5, 150), (0.9, 50))]) for _ in range(4)]
    values = torch.tensor(np.stack(rows), dtype=torch.float32)
    labels, centroids = kmeans(values, 3)
    for i, row in enumerate(rows):
        km = KMeans(3, n_init=10, random_state=0).fit(row[:, None])
        ref_labels, ref_centres = _sorted_sklearn(km)
        assert np.array_equal(labels[i].numpy(), ref_labels)
        np.testing.assert_allclose(centroids[i].numpy(), ref_centres[:, 0], atol=1e-5)
    # On unstructured values our deterministic start is as good as k-means++ with 10 restarts.
    noisy = torch.rand(4, 2000, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    lab, cen = kmeans(noisy, 4)
    ours = inertia(noisy, lab, cen)
    for i in range(4):
        ref = KMeans(4, n_init=10, random_state=0).fit(noisy[i, :, None].numpy()).inertia_
        assert float(ours[i]) <= ref * 1.01


@pytest.mark.parametrize("start", ["quantile", "range"])
def test_features_match_sklearn_from_same_start(start):
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 300, 3, generator=gen, dtype=torch.float64)
    feats[:, :100] += torch.tensor([4.0, 0.0, 0.0], dtype=torch.float64)
    feats[:, 100:180] -= torch.tensor([0.0, 4.0, 1.0], dtype=torch.float64)
    labels, centroids = kmeans(feats, 3, init=start)
    assert labels.shape == (2, 300) and centroids.shape == (2, 3, 3)
    init = (quantile_init if start == "quantile" else range_init)(feats, 3)
    for i in range(2):
        km = KMeans(3, init=init[i].numpy(), n_init=1, algorithm="lloyd", tol=0.0).fit(feats[i].numpy())
        ref_labels, ref_centres = _sorted_sklearn(km)
        assert np.array_equal(labels[i].numpy(), ref_labels)
        np.testing.assert_allclose(centroids[i].numpy(), ref_centres, atol=1e-10)


def test_best_start_keeps_the_lower_inertia():
    gen = torch.Generator().manual_seed(5)
    maps = torch.rand(6, 1, 16, 16, generator=gen, dtype=torch.float64) ** 4
    maps[:3, :, :4, :4] = 1.0  # a small bright spot: unbalanced clusters
    runs = {start: kmeans(maps, 3, init=start) for start in ("quantile", "range", "best")}
    scores = {start: inertia(maps, *run) for start, run in runs.items()}
    torch.testing.assert_close(scores["best"], torch.minimum(scores["quantile"], scores["range"]))


def test_sorted_labels_top_cluster_and_flat_map():
    v = torch.tensor([[0.9, 0.0, 0.5, 1.0, 0.1, 0.55]])
    labels, centroids = kmeans(v, 3)
    assert labels.tolist() == [[2, 0, 1, 2, 0, 1]]
    assert bool((centroids[:, 1:] >= centroids[:, :-1]).all())
    maps = torch.zeros(2, 1, 8, 8)
    maps[0, 0, 2:4, 2:4] = 1.0
    top = top_cluster(maps, k=3)
    assert top.shape == (2, 1, 8, 8) and torch.equal(top[0, 0], maps[0, 0] > 0)
    assert bool(top[1].all())  # a flat map: every pixel is equally salient, the top cluster is everything
    binary = kmeans(maps[:1], 3)[0]  # two distinct values, three clusters: the empty one sorts first
    assert torch.equal(binary[0] == 2, maps[0, 0] > 0) and not bool((binary == 0).any())
    with pytest.raises(ValueError, match="k must be"):
        kmeans(torch.rand(1, 4), 5)
