"""Several-seed summaries (anolearn.metrics.seeds) and benchmarks/seed_study.py's log import and report."""
from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pandas as pd
import pytest

from anolearn.metrics.seeds import mean_and_se, seed_pairs, seed_summary

ROOT = Path(__file__).resolve().parents[1]


def runs(rows):
    return pd.DataFrame(rows, columns=["variant", "category", "seed", "image_auroc", "pixel_auroc", "aupro"])


def test_mean_and_se_matches_the_formula():
    mean, se = mean_and_se([1.0, 2.0, 4.0])
    assert mean == pytest.approx(7 / 3)
    sd = math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2)
    assert se == pytest.approx(sd / math.sqrt(3))
    assert math.isnan(mean_and_se([0.5])[1])
    with pytest.raises(ValueError):
        mean_and_se([])


def test_pairs_are_differences_per_seed_over_shared_cells():
    table = runs([
        # seed 0: a leads b by 0.1 on both categories; seed 1: by 0.3
        ("a", "x", 0, 0.9, 0.8, 0.7), ("b", "x", 0, 0.8, 0.8, 0.8),
        ("a", "y", 0, 0.7, 0.8, 0.7), ("b", "y", 0, 0.6, 0.8, 0.8),
        ("a", "x", 1, 0.9, 0.8, 0.7), ("b", "x", 1, 0.6, 0.8, 0.8),
        ("a", "y", 1, 0.9, 0.8, 0.7), ("b", "y", 1, 0.6, 0.8, 0.8),
        # seed 2: b has only one category -> the seed is left out of the pair (unequal category means)
        ("a", "x", 2, 0.1, 0.1, 0.1), ("a", "y", 2, 0.1, 0.1, 0.1), ("b", "x", 2, 0.9, 0.9, 0.9),
    ])
    pair = seed_pairs(table, [("a", "b")]).loc["a - b"]
    assert (pair.categories, pair.seeds) == (2, 2)
    mean, se = mean_and_se([0.1, 0.3])
    assert pair.image_auroc == f"{mean:+.3f} ± {se:.3f} (2/2)"
    assert pair.pixel_auroc.startswith("+0.000")
    assert pair.aupro.startswith("-0.100") and pair.aupro.endswith("(0/2)")
    assert pair.ahead == "1/3"
    summary = seed_summary(table)
    assert summary.loc["b", "seeds"] == 2 and summary.loc["a", "seeds"] == 3
    assert seed_pairs(table, [("a", "missing")]).empty


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("_seed_study", ROOT / "benchmarks" / "seed_study.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_log_lines_become_rows_and_a_report(study, tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("\n".join([
        "anoseg__brick__s0: image_auroc 0.800, pixel_auroc 0.700, aupro 0.600, 55 s",
        "draem__brick__s0: image_auroc 0.700, pixel_auroc 0.750, aupro 0.650, 118 s",
        "anoseg__brick__s1: image_auroc 0.900, pixel_auroc 0.700, aupro 0.600, 56 s",
        "draem__brick__s1: image_auroc 0.700, pixel_auroc 0.800, aupro 0.700, 120 s",
        "a warning line that is not a row",
    ]))
    assert study.import_log([str(log)], tmp_path / "out", "standard", "cpu") == 4
    text = study.report(tmp_path / "out", write=False, note="test")
    assert "| anoseg - draem | 1 | 2 | +0.150 ± 0.050 (1/1) | -0.075 ± 0.025 (0/1)" in text
    assert "standard profile" in text


def test_paired_difference_is_the_pair_tables_number():
    from anolearn.metrics.seeds import paired_difference
    table = runs([("a", "x", s, 0.6 + 0.1 * s, 0.5, 0.5) for s in range(3)]
                 + [("b", "x", s, 0.6, 0.5, 0.5) for s in range(3)])
    mean, se = paired_difference(table, "a", "b")
    assert mean == pytest.approx(0.1) and se == pytest.approx(mean_and_se([0.0, 0.1, 0.2])[1])
    with pytest.raises(ValueError, match="both"):
        paired_difference(table, "a", "c")
