"""Generate the student version of every assignment from its instructor version.

    python assignments/make_student.py           # write assignments/student/*.ipynb
    python assignments/make_student.py --check   # exit 1 if a committed student version is stale

The instructor notebooks in ``assignments/instructor/`` are the source. Solutions are marked
in two ways, and only there:

* in a code cell, the lines from ``# BEGIN SOLUTION`` to ``# END SOLUTION`` (inclusive). Inside
  a function (indented markers) they become ``raise NotImplementedError(...)``, so the check
  cell reports "not implemented yet"; at top level they become a ``# Your code here`` comment,
  so "Run all" still reaches the end;
* a cell tagged ``solution`` (cell metadata ``tags``) with no markers: a markdown cell becomes
  "*Your answer here.*", a code cell becomes ``# Your code here``.

Student notebooks are written without outputs, with the same cell ids, so a diff between two
versions shows only what changed. tests/test_assignments.py runs ``--check``.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
INSTRUCTOR, STUDENT = HERE / "instructor", HERE / "student"
MARKED = re.compile(r"^([ \t]*)# BEGIN SOLUTION[^\n]*\n.*?^[ \t]*# END SOLUTION[^\n]*$", re.DOTALL | re.MULTILINE)
STUB = 'raise NotImplementedError("Your code here: see the steps above.")'


def strip_solutions(source: str) -> str:
    """Replace every marked solution region of a code cell's source by a stub."""

    def stub(match: re.Match) -> str:
        indent = match.group(1)
        return indent + (STUB if indent else "# Your code here")

    return MARKED.sub(stub, source)


def student_version(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of an instructor notebook with solutions replaced and outputs removed."""
    nb = nbformat.from_dict(nb)  # a deep copy: the instructor notebook is left as it is
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.cell_type == "code":
            if "# BEGIN SOLUTION" in cell.source:
                cell.source = strip_solutions(cell.source)
            elif "solution" in tags:
                cell.source = "# Your code here"
            cell.outputs, cell.execution_count = [], None
        elif "solution" in tags:
            cell.source = "*Your answer here.*"
        if "solution" in tags:
            cell.metadata["tags"] = [t for t in tags if t != "solution"] + ["student"]
            if not cell.metadata["tags"]:
                del cell.metadata["tags"]
    return nb


def render(path: Path) -> str:
    """The student notebook for one instructor notebook, as the text that is committed."""
    nb = nbformat.read(path, as_version=4)
    return nbformat.writes(student_version(nb)) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale or missing student versions")
    args = parser.parse_args(argv)
    sources = sorted(INSTRUCTOR.glob("*.ipynb"))
    if not sources:
        print(f"no instructor notebooks in {INSTRUCTOR}", file=sys.stderr)
        return 1
    stale = []
    for src in sources:
        dst = STUDENT / src.name
        text = render(src)
        if args.check:
            if not dst.exists() or dst.read_text() != text:
                stale.append(dst)
        else:
            STUDENT.mkdir(exist_ok=True)
            dst.write_text(text)
            print(f"wrote {dst.relative_to(HERE.parent)}")
    orphans = sorted(set(p.name for p in STUDENT.glob("*.ipynb")) - set(p.name for p in sources))
    for name in orphans:
        print(f"assignments/student/{name} has no instructor version: delete it", file=sys.stderr)
    if stale:
        for dst in stale:
            print(f"{dst.relative_to(HERE.parent)} is out of date", file=sys.stderr)
        print("Regenerate with: python assignments/make_student.py", file=sys.stderr)
    return 1 if stale or orphans else 0


if __name__ == "__main__":
    sys.exit(main())
