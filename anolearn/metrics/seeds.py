"""Comparing methods over several training seeds: means with standard errors, and paired differences.

One training run is one draw: the same method and data with another seed can move image AUROC
by several points (the benchmark ``benchmarks/seed_study.py`` measures how much). So a claim
"method A beats method B" is checked on several seeds, each seed giving both methods the same
data, and reported as the mean of the per-seed difference with its standard error.

The input is a table of runs, one row per (variant, category, seed), with metric columns
(``benchmarks/results/seed_study.csv`` is one). For one seed ``s`` the score of a variant is
its mean over categories, ``m_s``; over ``n`` seeds we report

    mean = (1/n) sum_s m_s,    standard error = sqrt( sum_s (m_s - mean)^2 / (n - 1) ) / sqrt(n),

and for a pair (A, B) the same for the per-seed difference ``d_s = m_s(A) - m_s(B)``: pairing by
seed removes the part of the spread that both methods share (the same images, the same seed).
A standard error from 2 or 3 seeds is itself rough; read ``mean +- 2 s.e.`` as a range, not a test.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import pandas as pd

#: The metrics compared by default.
METRICS = ("image_auroc", "pixel_auroc", "aupro")


def mean_and_se(values: Iterable[float]) -> tuple[float, float]:
    """Mean and standard error (sample standard deviation / sqrt(n)); the error is NaN for one value.

    >>> mean_and_se([0.7, 0.8, 0.9])
    (0.8000000000000002, 0.05773502691896254)
    """
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        raise ValueError("mean_and_se needs at least one value")
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def _fmt(mean: float, se: float, signed: bool = False) -> str:
    text = f"{mean:+.3f}" if signed else f"{mean:.3f}"
    return text if math.isnan(se) else f"{text} ± {se:.3f}"


def _full_seeds(rows: pd.DataFrame) -> tuple[list[str], list[int]]:
    """The categories of the first seed, and the seeds that have all of them: so that every seed's
    category mean is over the same categories."""
    cats = sorted(set(rows[rows.seed == rows.seed.min()].category))
    seeds = sorted(int(s) for s, g in rows.groupby("seed") if set(g.category) >= set(cats))
    return cats, seeds


def seed_summary(runs: pd.DataFrame, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Per variant: the category mean of each metric, mean over seeds ± standard error over seeds.

    Args:
        runs: one row per (variant, category, seed) with columns ``variant``, ``category``,
            ``seed`` and ``metrics``.

    Returns:
        One row per variant (in order of appearance): ``categories``, ``seeds`` and one text
        column per metric, e.g. ``"0.773 ± 0.008"``.
    """
    lines = []
    for variant, sub in runs.groupby("variant", sort=False):
        cats, seeds = _full_seeds(sub)
        line = {"variant": variant, "categories": len(cats), "seeds": len(seeds)}
        for m in metrics:
            per_seed = [sub[(sub.seed == s) & sub.category.isin(cats)][m].mean() for s in seeds]
            line[m] = _fmt(*mean_and_se(per_seed))
        lines.append(line)
    return pd.DataFrame(lines).set_index("variant")


def _paired_cells(runs: pd.DataFrame, head: str, pred: str, metrics: Sequence[str]):
    """Wide table (category, seed) x (metric, variant) of the cells both variants finished, in
    the seeds that have every category of the first seed; None if there is none."""
    sub = runs[runs.variant.isin([head, pred])]
    done = sub.groupby(["category", "seed"]).variant.nunique()
    keep = set(done[done == 2].index)
    both = sub[[(c, s) in keep for c, s in zip(sub.category, sub.seed)]]
    if both.empty:
        return None
    cats, seeds = _full_seeds(both)
    both = both[both.seed.isin(seeds) & both.category.isin(cats)]
    return both.pivot_table(index=["category", "seed"], columns="variant", values=list(metrics))


def _difference(wide: pd.DataFrame, head: str, pred: str, metric: str) -> tuple[pd.Series, tuple[float, float]]:
    """Per cell ``head - pred`` on ``metric`` (indexed by category and seed), and the mean and standard
    error over seeds of its per-seed category mean."""
    diff = wide[(metric, head)] - wide[(metric, pred)]
    seeds = sorted(set(diff.index.get_level_values("seed")))
    return diff, mean_and_se(diff.xs(s, level="seed").mean() for s in seeds)


def paired_difference(runs: pd.DataFrame, head: str, pred: str, metric: str = "image_auroc") -> tuple[float, float]:
    """``head - pred`` on ``metric``: mean over seeds of the per-seed category-mean difference, and
    its standard error (see :func:`seed_pairs` for which cells count).

    Raises:
        ValueError: when no (category, seed) cell has both variants.
    """
    wide = _paired_cells(runs, head, pred, [metric])
    if wide is None:
        raise ValueError(f"no (category, seed) cell has both {head!r} and {pred!r}")
    return _difference(wide, head, pred, metric)[1]


def seed_pairs(runs: pd.DataFrame, pairs: Sequence[tuple[str, str]],
               metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Per pair (A, B): the per-seed difference of category means, A - B, mean ± standard error.

    Only the (category, seed) cells both variants finished count, and only seeds that have every
    category of the first seed. In brackets: in how many categories the seed-averaged difference
    is positive. ``ahead``: on how many metrics the mean difference is positive.

    Args:
        runs: as for :func:`seed_summary`.
        pairs: ``[("anoseg", "draem"), ...]``: (headline, predecessor).

    Returns:
        One row per pair that has cells, indexed ``"A - B"``; empty if none has.
    """
    lines = []
    for head, pred in pairs:
        wide = _paired_cells(runs, head, pred, metrics)
        if wide is None:
            continue
        cats = sorted(set(wide.index.get_level_values("category")))
        seeds = sorted(set(wide.index.get_level_values("seed")))
        line = {"pair": f"{head} - {pred}", "categories": len(cats), "seeds": len(seeds)}
        ahead = 0
        for m in metrics:
            diff, (mean, se) = _difference(wide, head, pred, m)
            per_cat = diff.groupby(level="category").mean()
            line[m] = f"{_fmt(mean, se, signed=True)} ({int((per_cat > 0).sum())}/{len(cats)})"
            ahead += mean > 0
        line["ahead"] = f"{ahead}/{len(metrics)}"
        lines.append(line)
    return pd.DataFrame(lines).set_index("pair") if lines else pd.DataFrame()
