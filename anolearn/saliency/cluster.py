"""k-means clustering of saliency maps, one clustering per image, batched in torch.

CutSwap (Qin et al. 2023) clusters the values of each LayerCAM map and keeps the cluster with
the highest centroid -- the pixels the network found most important -- as the place to take
patches from. Lloyd's k-means algorithm, for points ``x_n`` (values, or feature vectors) and
``k`` centroids ``mu_j``, alternates two steps until no label changes:

.. math::

    z_n = \\arg\\min_j \\lVert x_n - \\mu_j \\rVert^2, \\qquad
    \\mu_j = \\frac{1}{|\\{n : z_n = j\\}|} \\sum_{n : z_n = j} x_n .

Each step can only lower the *inertia* ``sum_n ||x_n - mu_{z_n}||^2``, so the loop ends, but
in a local minimum that depends on the start. Our starts are **deterministic** (no random
numbers, so a map is always clustered the same way). Points are projected on their main
direction of variation (for 1-D saliency values: the values themselves), and two starts are
run side by side:

* ``"quantile"``: the points at the quantiles ``(j + 1/2) / k`` of the projection -- good for
  balanced clusters;
* ``"range"``: ``k`` evenly spaced positions between the smallest and largest projection -- good
  for unbalanced ones, such as saliency maps, where most pixels are dull and a few bright (with
  quantiles, several centroids would start inside the dull majority and stay there).

``init="best"`` (default) keeps, per image, the result with the lower inertia.

Everything runs on all images at once: points ``(B, N, D)`` -> distances ``(B, N, k)``. An
image whose labels stopped changing keeps them while the others go on. Values (``D = 1``, the
CutSwap case) take a faster road to the same result: in 1-D every cluster is an interval of
the sorted values, so after one sort an iteration is a binary search and prefix sums
(a 256 x 256 map costs about as much as sorting it). A centroid that loses
all its points stays where it was (scikit-learn moves it to a far point instead).

The centroids are returned **sorted** along the first feature (the saliency value when the
features are ``[saliency, ...]``), and the labels renumbered to match: label ``k - 1`` is always
the most salient cluster. A cluster left empty (possible when a map has fewer than ``k``
distinct values, e.g. a binary mask) is sorted first, so label ``k - 1`` is never empty.
"""
from __future__ import annotations

import torch


def _as_points(x: torch.Tensor) -> torch.Tensor:
    """``(B, N)``, ``(B, N, D)`` or maps ``(B, 1, H, W)`` -> points ``(B, N, D)``."""
    if x.dim() == 2:
        return x[..., None]
    if x.dim() == 3:
        return x
    if x.dim() == 4 and x.shape[1] == 1:
        return x.flatten(1)[..., None]
    raise ValueError(f"Expected values (B, N), features (B, N, D) or maps (B, 1, H, W), got {tuple(x.shape)}.")


def _projection(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Coordinates ``(B, N)`` along each image's first principal direction, the mean ``(B, 1, D)``
    and the direction ``(B, 1, D)`` (for ``D = 1``: the values, 0 and 1)."""
    d = points.shape[-1]
    if d == 1:
        return points[..., 0], torch.zeros_like(points[:, :1]), torch.ones_like(points[:, :1])
    mean = points.mean(dim=1, keepdim=True)
    centred = points - mean
    _, vecs = torch.linalg.eigh(centred.transpose(1, 2) @ centred)  # (B, D, D) ascending eigenvalues
    axis = vecs[..., -1].unsqueeze(1)  # (B, 1, D)
    return (centred * axis).sum(-1), mean, axis


def quantile_init(points: torch.Tensor, k: int) -> torch.Tensor:
    """Deterministic start: ``(B, k, D)`` points at the quantiles ``(j + 1/2) / k`` along each
    image's first principal direction (for ``D = 1``: the value quantiles)."""
    b, n, d = points.shape
    proj, _, _ = _projection(points)
    order = proj.argsort(dim=1)  # (B, N)
    ranks = ((torch.arange(k, device=points.device, dtype=torch.float64) + 0.5) / k * n).long().clamp(max=n - 1)
    idx = order[:, ranks]  # (B, k)
    return points.gather(1, idx[..., None].expand(b, k, d))


def range_init(points: torch.Tensor, k: int) -> torch.Tensor:
    """Deterministic start: ``(B, k, D)`` evenly spaced at ``lo + (j + 1/2) / k * (hi - lo)`` along
    each image's first principal direction, ``[lo, hi]`` the range of the projection."""
    proj, mean, axis = _projection(points)
    lo, hi = proj.amin(dim=1, keepdim=True), proj.amax(dim=1, keepdim=True)  # (B, 1)
    frac = (torch.arange(k, device=points.device, dtype=points.dtype) + 0.5) / k
    t = lo + frac * (hi - lo)  # (B, k)
    return mean + t[..., None] * axis  # (B, k, D)

def _lloyd(work: torch.Tensor, cent: torch.Tensor, max_iter: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's iterations for points ``(B, N, D)`` from centroids ``(B, k, D)``."""
    b, n, _ = work.shape
    k = cent.shape[1]
    labels = torch.full((b, n), -1, device=work.device, dtype=torch.long)
    sq = (work ** 2).sum(-1, keepdim=True)  # (B, N, 1)
    for _ in range(max_iter):
        # ||x||^2 - 2 x.mu + ||mu||^2, without a (B, N, k, D) tensor
        dist = sq - 2 * work @ cent.transpose(1, 2) + (cent ** 2).sum(-1)[:, None, :]  # (B, N, k)
        new = dist.argmin(dim=2)  # (B, N)
        changed = (new != labels).any(dim=1)  # (B,)
        if not bool(changed.any()):
            break
        labels = torch.where(changed[:, None], new, labels)
        onehot = torch.nn.functional.one_hot(labels, k).to(work.dtype)  # (B, N, k)
        counts = onehot.sum(dim=1)  # (B, k)
        update = (onehot.transpose(1, 2) @ work) / counts.clamp_min(1)[..., None]  # (B, k, D)
        cent = torch.where((counts > 0)[..., None], update, cent)  # empty cluster: keep its centroid
    return labels, cent


def _lloyd_1d(values: torch.Tensor, cent: torch.Tensor, max_iter: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The same iterations for values ``(B, N)``, exploiting 1-D structure.

    In one dimension each cluster is an interval of the sorted values, bounded by the
    midpoints between consecutive centroids. After one sort, an iteration is a binary search
    for the ``k - 1`` boundaries and ``k`` interval means from prefix sums: ``O(k log N)``
    instead of ``O(N k)``. The result is the same as the general loop (a value exactly at a
    midpoint goes to the lower cluster, as ``argmin`` picks the first of two equal distances).
    """
    b, n = values.shape
    v, order = values.sort(dim=1)  # (B, N)
    # prefix sums in float64 (float32 would lose ~1e-3 over 65k values); MPS has no float64
    acc = torch.float32 if v.device.type == "mps" else torch.float64
    csum = torch.nn.functional.pad(v.to(acc).cumsum(dim=1), (1, 0))  # (B, N + 1)
    zero = torch.zeros(b, 1, device=v.device, dtype=torch.long)
    full = torch.full((b, 1), n, device=v.device, dtype=torch.long)
    cent = cent.sort(dim=1).values  # (B, k)
    edges = None
    for _ in range(max_iter):
        mid = (cent[:, :-1] + cent[:, 1:]) / 2  # (B, k - 1)
        cut = torch.searchsorted(v, mid.contiguous(), right=True)  # (B, k - 1) values <= mid go left
        new = torch.cat([zero, cut, full], dim=1)  # (B, k + 1) interval edges in sorted order
        if edges is not None and torch.equal(new, edges):
            break
        edges = new
        counts = edges[:, 1:] - edges[:, :-1]  # (B, k)
        sums = csum.gather(1, edges[:, 1:]) - csum.gather(1, edges[:, :-1])
        update = (sums / counts.clamp_min(1)).to(cent.dtype)
        cent = torch.where(counts > 0, update, cent).sort(dim=1).values
    pos = torch.arange(n, device=v.device)
    sorted_labels = (pos[None, :, None] >= edges[:, None, 1:-1]).sum(dim=2)  # (B, N) cluster of each sorted value
    labels = torch.empty_like(sorted_labels).scatter_(1, order, sorted_labels)
    return labels, cent


def kmeans(x: torch.Tensor, k: int = 3, max_iter: int = 100, init: str | torch.Tensor = "best",
           sort: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means per image, batched.

    Args:
        x: values ``(B, N)``, maps ``(B, 1, H, W)`` (clustered by value), or features ``(B, N, D)``.
        k: number of clusters (``1 <= k <= N``).
        max_iter: maximum number of assignment/update rounds.
        init: ``"best"`` (run the quantile and the range start, keep the lower inertia per image),
            ``"quantile"``, ``"range"``, or starting centroids ``(B, k, D)``.
        sort: sort the centroids along the first feature and renumber the labels so that
            label ``k - 1`` has the largest centroid.

    Returns:
        ``(labels, centroids)``: ``labels`` ``(B, N)`` long in ``[0, k)`` (``(B, H, W)`` for maps);
        ``centroids`` ``(B, k, D)`` float (``(B, k)`` for values or maps).

    Example:
        >>> v = torch.tensor([[0.0, 0.1, 0.5, 0.55, 0.9, 1.0]])
        >>> labels, centroids = kmeans(v, k=3)
        >>> labels.tolist(), [round(c, 3) for c in centroids[0].tolist()]
        ([[0, 0, 1, 1, 2, 2]], [0.05, 0.525, 0.95])
    """
    points = _as_points(x)
    b, n, d = points.shape
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1, got {max_iter}.")
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of points ({n}), got {k}.")
    work = points.double() if points.dtype == torch.float64 else points.float()
    if isinstance(init, str):
        starts = {"best": ("quantile", "range"), "quantile": ("quantile",), "range": ("range",)}.get(init)
        if starts is None:
            raise ValueError(f"init must be 'best', 'quantile', 'range' or a tensor, got {init!r}.")
        inits = [(quantile_init if name == "quantile" else range_init)(work, k) for name in starts]
    else:
        if init.shape != (b, k, d):
            raise ValueError(f"init must have shape {(b, k, d)}, got {tuple(init.shape)}.")
        inits = [init.to(work)]
    best = None
    for cent in inits:
        if d == 1:
            labels, cent = _lloyd_1d(work[..., 0], cent[..., 0].clone(), max_iter)
            cent = cent[..., None]
        else:
            labels, cent = _lloyd(work, cent.clone(), max_iter)
        score = inertia(work, labels, cent)  # (B,)
        if best is None:
            best = (labels, cent, score)
        else:
            better = score < best[2]
            best = (torch.where(better[:, None], labels, best[0]), torch.where(better[:, None, None], cent, best[1]),
                    torch.minimum(score, best[2]))
    labels, cent, _ = best
    if sort:
        # Empty clusters (duplicate starts on data with fewer than k distinct values) sort first,
        # so label k - 1 is always a non-empty cluster.
        counts = torch.nn.functional.one_hot(labels, k).sum(dim=1)  # (B, k)
        key = torch.where(counts > 0, cent[..., 0], torch.full_like(cent[..., 0], float("-inf")))
        order = key.argsort(dim=1, stable=True)  # (B, k) old index of the j-th smallest centroid
        cent = cent.gather(1, order[..., None].expand(b, k, d))
        rank = order.argsort(dim=1)  # (B, k) new label of each old label
        labels = rank.gather(1, labels)
    cent = cent.to(points.dtype)
    if x.dim() == 4:
        return labels.view(b, *x.shape[-2:]), cent[..., 0]
    return labels, (cent[..., 0] if x.dim() == 2 else cent)

def inertia(x: torch.Tensor, labels: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Sum of squared distances of the points to their centroid, per image: ``(B,)``."""
    points = _as_points(x)
    b, n, d = points.shape
    cent = centroids[..., None] if centroids.dim() == 2 else centroids  # (B, k, D)
    assigned = cent.gather(1, labels.reshape(b, n, 1).expand(b, n, d))
    return ((points - assigned) ** 2).sum(dim=(1, 2))


def top_cluster(maps: torch.Tensor, k: int = 3, max_iter: int = 100) -> torch.Tensor:
    """The pixels of each map's most salient k-means cluster.

    Args:
        maps: ``(B, 1, H, W)`` saliency in [0, 1].
        k: number of clusters.

    Returns:
        ``(B, 1, H, W)`` bool, True on the cluster with the highest centroid.
    """
    labels, _ = kmeans(maps, k, max_iter)
    return (labels == k - 1)[:, None]


__all__ = ["inertia", "kmeans", "quantile_init", "range_init", "top_cluster"]
