"""Reading the committed benchmark results (anolearn.results), as the chapters do."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from anolearn.results import (ResultsNotFound, describe_results, find, load_results, markdown_tables,
                              missing_message, show_results)

REPO = Path(__file__).resolve().parents[1]
COMMITTED = ["anoseg_synthetic", "cutswap_synthetic", "draem_sgsf_synthetic", "forge_throughput", "masking_methods",
             "synthetic_suite"]


@pytest.mark.parametrize("name", COMMITTED)
@pytest.mark.parametrize("where", [".", "book", "elsewhere"])
def test_every_committed_result_loads_from_the_book_the_root_or_elsewhere(name, where, tmp_path, monkeypatch):
    monkeypatch.chdir({".": REPO, "book": REPO / "book", "elsewhere": tmp_path}[where])
    table = load_results(name, required=True)
    assert len(table) > 0 and Path(table.attrs["path"]).resolve().is_relative_to(REPO / "benchmarks" / "results")
    assert any(note.startswith("command") for note in table.attrs["notes"])  # how it was measured


def test_csv_results_read_as_the_chapters_read_them():
    table = load_results("anoseg_synthetic")
    assert table.equals(pd.read_csv(REPO / "benchmarks/results/anoseg_synthetic.csv", comment="#"))
    suite = load_results("synthetic_suite")
    assert {"methods", "categories"} <= set(suite.attrs["plan"])  # its benchmark.json


def test_a_missing_result_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert load_results("no_such_benchmark") is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "is not here (e.g. on Colab)" in out  # the Makefile greps for this
    assert "`python benchmarks/no_such_benchmark.py`" in out
    with pytest.raises(ResultsNotFound, match="e.g. on Colab"):
        load_results("no_such_benchmark", required=True)
    assert "run_synthetic_suite.sh" in missing_message("synthetic_suite")


def test_a_local_copy_comes_first_and_its_header_is_the_description(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "benchmarks" / "results"
    folder.mkdir(parents=True)
    (folder / "mine.csv").write_text("# command: python benchmarks/mine.py\n# machine: here\nmethod,auroc\na,0.5\nb,0.75\n")
    monkeypatch.chdir(tmp_path)
    assert find("mine") == folder / "mine.csv"
    table = load_results("mine")
    assert table.to_dict("list") == {"method": ["a", "b"], "auroc": [0.5, 0.75]}
    describe_results(table, only=("machine",))
    assert capsys.readouterr().out == "machine: here\n"


def test_markdown_tables_keep_their_captions_and_numbers(capsys):
    text = """# Report

- command: `python x.py`

**cpu, 1 thread**

| forger | images/s | ratio |
|---|---:|---|
| a | 10 | 2.0x |
| b | 5 |  |

- a: twice b

**cpu, 2 threads**

| forger | images/s | ratio |
|---|---:|---|
| a | 18 | 1.8x |
"""
    tables = markdown_tables(text)
    assert list(tables["table"]) == ["cpu, 1 thread", "cpu, 1 thread", "cpu, 2 threads"]
    assert list(tables["images/s"]) == [10, 5, 18] and list(tables["ratio"]) == ["2.0x", "", "1.8x"]
    table = load_results("forge_throughput")
    show_results(table, drop=["device"])
    out = capsys.readouterr().out
    assert "command: python benchmarks/forge_throughput.py" in out and "torch thread(s)" in out


def test_show_seed_comparison_reads_the_committed_seed_study(capsys):
    from anolearn.results import show_seed_comparison
    table = show_seed_comparison("seed_study", [("anoseg", "draem")])
    assert list(table.index) == ["anoseg - draem"]
    assert table.loc["anoseg - draem", "seeds"] >= 2
    assert "device" in capsys.readouterr().out
