"""The committed benchmark results, for the chapters: find them, read them, say how they were measured.

Each script in ``benchmarks/`` writes its results to ``benchmarks/results/<name>``, in one of
three forms:

* ``<name>.csv`` -- one row per run, with ``# `` lines on top saying how it was measured
  (command, profile, machine); a Markdown report ``<name>.md`` may sit beside it;
* ``<name>.md`` alone -- a report whose tables are the results (``forge_throughput.md``);
* ``<name>/`` -- a folder written by ``python -m anolearn benchmark`` (``results.csv``,
  ``benchmark.json``: what was run, ``README.md``: how).

A chapter reads any of them in one line and describes it in another::

    from anolearn.results import describe_results, load_results

    bench = load_results("anoseg_synthetic")   # a DataFrame (None where the file is not here)
    describe_results(bench)                    # command, profile, machine, load

The files are looked for under the current folder, its parent (the book's chapters run in
``book/``) and the checkout the package was imported from. On Colab, or wherever only the
notebooks were copied, they are not there: :func:`load_results` then prints one line saying so
and naming the command that makes the file, and returns None, so the chapter runs on without
those tables (``required=True`` raises instead, for a chapter that is only about them). The
numbers are those of the last benchmark run, written with the code of that time; a chapter that
trains a model itself shows its own numbers beside them.
"""
from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

#: Where the benchmark scripts write, relative to the repository's root.
RESULTS = Path("benchmarks") / "results"

#: The command that makes each results file, where it is not ``python benchmarks/<name>.py``.
COMMANDS = {
    "anoseg_synthetic": "python benchmarks/anoseg_synthetic.py --ablations",
    "cutswap_synthetic": "python benchmarks/cutswap_synthetic.py --steps 250,1000",
    "synthetic_suite": "bash benchmarks/run_synthetic_suite.sh",
    "standard_suite": "PROFILE=standard DATA=synthetic:brick,wood,capsule,hexnut bash benchmarks/run_synthetic_suite.sh",
}


class ResultsNotFound(FileNotFoundError):
    """A results file that is not in this copy of the repository (or not in any copy at hand)."""


def roots() -> list[Path]:
    """The folders searched for ``benchmarks/results``: the current one, its parent, and the
    checkout this package was imported from."""
    here = Path.cwd()
    return list(dict.fromkeys([here, here.parent, Path(__file__).resolve().parents[1]]))


def find(name: str) -> Path | None:
    """The results of ``name``: ``<name>/`` (a benchmark folder), else ``<name>.csv``, else
    ``<name>.md``, under the first of :func:`roots` that holds one; None if none does."""
    for root in roots():
        base = root / RESULTS
        for path in (base / name / "results.csv", base / f"{name}.csv", base / f"{name}.md"):
            if path.is_file():
                return path.parent if path.name == "results.csv" else path
    return None


def missing_message(name: str) -> str:
    command = COMMANDS.get(name, f"python benchmarks/{name}.py")
    return (f"benchmarks/results/{name} is not here (e.g. on Colab); run `{command}` in a checkout of the "
            f"repository to make it.")


def load_results(name: str, required: bool = False) -> pd.DataFrame | None:
    """The committed results ``benchmarks/results/<name>`` as a DataFrame.

    Args:
        name: the results' name, e.g. ``"anoseg_synthetic"``, ``"masking_methods"``,
            ``"forge_throughput"`` or ``"synthetic_suite"`` (a folder).
        required: raise :class:`ResultsNotFound` when the file is not here, instead of printing
            a line that says so and returning None.

    Returns:
        One row per result. A Markdown-only report gives its tables one below the other, with a
        ``table`` column holding each table's caption (e.g. ``"cpu, 1 torch thread(s)"``). The
        DataFrame's ``attrs`` hold ``path`` (the file read), ``notes`` (how it was measured: a list
        of lines, see :func:`describe_results`) and, for a benchmark folder, ``plan`` (its ``benchmark.json``).
    """
    path = find(name)
    if path is None:
        if required:
            raise ResultsNotFound(missing_message(name))
        print(missing_message(name))
        return None
    plan = None
    if path.is_dir():  # a benchmark folder
        table = pd.read_csv(path / "results.csv")
        # How it was measured: the folder's README, else the opening lines of its results.md
        notes = _bullets(path / "README.md") or _bullets(path / "results.md")
        if (path / "benchmark.json").is_file():
            plan = json.loads((path / "benchmark.json").read_text())
    elif path.suffix == ".csv":
        lines = path.read_text().splitlines()
        notes = [line[2:] for line in lines if line.startswith("# ")]
        table = pd.read_csv(io.StringIO("\n".join(line for line in lines if not line.startswith("#"))))
        if not notes:  # how it was measured is written in the report beside it
            notes = _bullets(path.with_suffix(".md"))
    else:
        text = path.read_text()
        table = markdown_tables(text.split("\n## ", 1)[0])  # the tables the script wrote, not later sections
        notes = _header(text)
    table.attrs.update(name=name, path=str(path), notes=notes, plan=plan)
    return table


def describe_results(table: pd.DataFrame, only: Sequence[str] = ()) -> None:
    """Print how ``table`` (from :func:`load_results`) was measured, one line per note (``only``: the
    notes that start with one of these words, e.g. ``("command", "machine")``)."""
    for note in table.attrs.get("notes", []):
        if not only or note.startswith(tuple(only)):
            print(note.replace("`", ""))


def show_results(table: pd.DataFrame, drop: Sequence[str] = (), digits: int = 3) -> None:
    """:func:`describe_results` ``table``, then display it (each captioned table of a report apart),
    without the columns ``drop`` and with numbers rounded to ``digits``."""
    describe_results(table)
    parts = table.groupby("table", sort=False) if "table" in table.columns else [(None, table)]
    for caption, part in parts:
        if caption is not None:
            print(caption)
        part = part.drop(columns=[c for c in ("table", *drop) if c in part.columns])
        _display(part.reset_index(drop=True) if caption is not None else part, digits)


def show_seed_comparison(name: str, pairs: Sequence[tuple[str, str]]) -> pd.DataFrame | None:
    """Read a several-seed results file (``benchmarks/seed_study.py``) and show one comparison.

    Prints how it was measured, then displays the per-variant means ± standard errors over seeds
    of the variants in ``pairs`` and the paired differences (:mod:`anolearn.metrics.seeds`).

    Args:
        name: the results' name, e.g. ``"seed_study"`` or ``"sgsf_ablation_seeds"``.
        pairs: ``[("anoseg", "draem")]``: (headline, predecessor) pairs.

    Returns:
        The pair table (one row per pair, text cells ``"+0.053 ± 0.012 (5/7)"``), or None where
        the file is not here (after printing a line that says so).
    """
    from .metrics.seeds import seed_pairs, seed_summary

    runs = load_results(name)
    if runs is None:
        return None
    describe_results(runs, only=("note", "rows", "device"))
    variants = list(dict.fromkeys(v for pair in pairs for v in pair))
    _display(seed_summary(runs[runs.variant.isin(variants)]), 3)
    table = seed_pairs(runs, pairs)
    _display(table, 3)
    return table


def markdown_tables(text: str) -> pd.DataFrame:
    """The tables of a Markdown text as one DataFrame, one below the other, with a ``table`` column
    holding the line above each table (its caption, without ``**``). Cells that read as numbers
    become numbers; others stay text."""
    frames, caption, rows = [], None, []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
            continue
        if rows:  # a table just ended: its first row is the header, its second the alignment row
            header, body = rows[0], [r for r in rows[1:] if not set("".join(r)) <= set("-: ")]
            frame = pd.DataFrame(body, columns=header)
            frames.append(frame.apply(_numbers).assign(table=caption))
            rows = []
        if line.strip():
            caption = line.strip().strip("*").strip()
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------- helpers
def _numbers(column: pd.Series) -> pd.Series:
    converted = pd.to_numeric(column, errors="coerce")
    return converted if converted.notna().sum() == (column != "").sum() else column


def _bullets(path: Path) -> list[str]:
    """The ``- `` lines of a report's first part (before its first table or section)."""
    if not path.is_file():
        return []
    notes = []
    for line in path.read_text().splitlines():
        if line.startswith(("|", "## ", "**")):
            break
        if line.startswith("- "):
            notes.append(line[2:])
    return notes


def _header(text: str) -> list[str]:
    """A Markdown-only report's opening lines (after its title, before its first table or caption)."""
    notes = []
    for line in text.splitlines()[1:]:
        if line.startswith(("|", "## ", "**")):
            break
        if line.strip():
            notes.append(line.strip().removeprefix("- "))
    return notes


def _display(frame: pd.DataFrame, digits: int) -> None:
    try:
        from IPython.display import display
    except ImportError:  # outside Jupyter
        print(frame.round(digits).to_string())
    else:
        display(frame.round(digits))


__all__ = ["COMMANDS", "RESULTS", "ResultsNotFound", "describe_results", "find", "load_results", "markdown_tables",
           "missing_message", "roots", "show_results"]
