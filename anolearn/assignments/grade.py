"""Grade submitted assignment notebooks with the same checks the students ran.

    python -m anolearn.assignments grade a1_aupro submissions/*.ipynb --csv grades.csv

For each submission the cell that defines the assignment's function is executed on its
own (not the whole notebook, so a slow or broken exploration cell does not matter), the
checks run, and one row per submission reports how many passed and which failed.

Executing a submission runs the student's code with your permissions: grade inside a
container or a throw-away account, as with any autograder.
"""
from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

from .feedback import NOT_STARTED, Feedback


@dataclass
class Grade:
    """One submission's result: checks passed out of total, and the names of the failed ones."""

    submission: str
    passed: int
    total: int
    failed: list[str]
    error: str = ""
    not_started: bool = False

    @property
    def score(self) -> float:
        return self.passed / self.total if self.total else 0.0


def extract_function(notebook: str | Path, name: str):
    """Execute the (last) code cell of ``notebook`` that defines ``name`` and return the function.

    Raises:
        ValueError: if no cell defines it, naming the notebook and the function.
    """
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and f"def {name}(" in c.source]
    if not cells:
        raise ValueError(f"{notebook}: no code cell defines `{name}(...)`")
    namespace: dict = {}
    exec(compile(cells[-1].source, f"{Path(notebook).name}:{name}", "exec"), namespace)  # noqa: S102
    return namespace[name]


def grade(assignment: str, submissions: list[str | Path]) -> list[Grade]:
    """Run the checks of ``assignment`` (a key of :data:`ASSIGNMENTS`) on every submission."""
    from . import ASSIGNMENTS

    if assignment not in ASSIGNMENTS:
        raise ValueError(f"unknown assignment {assignment!r}; choose one of {', '.join(sorted(ASSIGNMENTS))}")
    function_name, check = ASSIGNMENTS[assignment]
    grades = []
    for path in submissions:
        try:
            function = extract_function(path, function_name)
            feedback: Feedback = check(function, verbose=False, raise_on_fail=False)
        except Exception as err:  # noqa: BLE001 - an unreadable submission is a row, not a crash
            grades.append(Grade(str(path), 0, 0, [], error=f"{type(err).__name__}: {err}"))
            continue
        failed = feedback.failed()
        grades.append(Grade(str(path), feedback.n_passed, len(feedback.results), [r.name for r in failed],
                            not_started=bool(failed) and all(r.message == NOT_STARTED for r in failed)))
    return grades


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m anolearn.assignments", description="Grade assignment notebooks.")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="run an assignment's checks on submitted notebooks")
    g.add_argument("assignment", help="e.g. a1_aupro")
    g.add_argument("submissions", nargs="+", help="submitted .ipynb files")
    g.add_argument("--csv", help="also write the grades to this CSV file")
    args = parser.parse_args(argv)
    try:
        grades = grade(args.assignment, args.submissions)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    width = max(len(r.submission) for r in grades)
    for r in grades:
        if r.error:
            status = f"ERROR {r.error}"
        elif r.not_started:
            status = f"{r.passed:2d}/{r.total} not started (the stub is unchanged)"
        else:
            status = f"{r.passed:2d}/{r.total} " + ("all checks passed" if not r.failed else "failed: " + "; ".join(r.failed))
        print(f"{r.submission:<{width}}  {status}")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["submission", "passed", "total", "score", "failed", "error"])
            for r in grades:
                writer.writerow([r.submission, r.passed, r.total, f"{r.score:.3f}", "; ".join(r.failed), r.error])
        print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
