"""Assignments: student versions are current, checks fail on the stubs and pass on the solutions,
and each A1 check catches the mistake it was written for (with its specific message)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest

from anolearn.assignments import ASSIGNMENTS, AssignmentIncomplete
from anolearn.assignments.feedback import NOT_STARTED
from anolearn.assignments.grade import extract_function, grade

ROOT = Path(__file__).resolve().parents[1] / "assignments"


def _make_student():
    spec = importlib.util.spec_from_file_location("make_student", ROOT / "make_student.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _function_from(notebook: Path, name: str):
    """The function ``name`` defined in the notebook (as the grader extracts it) and its cell source."""
    nb = nbformat.read(notebook, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and f"def {name}(" in c.source]
    assert len(cells) == 1, f"{notebook.name}: expected one cell defining {name}, found {len(cells)}"
    return extract_function(notebook, name), cells[0].source


def test_student_versions_are_current():
    assert _make_student().main(["--check"]) == 0, "run: python assignments/make_student.py"


def test_every_registered_assignment_has_both_versions():
    for name in ASSIGNMENTS:
        assert (ROOT / "instructor" / f"{name}.ipynb").exists()
        assert (ROOT / "student" / f"{name}.ipynb").exists()
    assert {p.stem for p in (ROOT / "instructor").glob("*.ipynb")} == set(ASSIGNMENTS)


def test_student_versions_hold_no_solution():
    for path in (ROOT / "student").glob("*.ipynb"):
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_check_passes_on_solution(name):
    function_name, check = ASSIGNMENTS[name]
    solution, _ = _function_from(ROOT / "instructor" / f"{name}.ipynb", function_name)
    assert check(solution, verbose=False).passed


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_check_fails_on_stub_saying_not_started(name, capsys):
    function_name, check = ASSIGNMENTS[name]
    stub, _ = _function_from(ROOT / "student" / f"{name}.ipynb", function_name)
    with pytest.raises(AssignmentIncomplete):
        check(stub)
    assert NOT_STARTED in capsys.readouterr().out
    feedback = check(stub, verbose=False, raise_on_fail=False)
    assert not feedback.passed and all(r.message == NOT_STARTED for r in feedback.failed())


def test_strip_solutions_keeps_signature_and_docstring():
    make_student = _make_student()
    source = 'def f(x):\n    """Doc."""\n    y = 1\n    # BEGIN SOLUTION\n    return x + y\n    # END SOLUTION\n'
    out = make_student.strip_solutions(source)
    assert out.startswith('def f(x):\n    """Doc."""\n    y = 1\n    raise NotImplementedError')
    assert "return x + y" not in out
    top = "a = 1\n# BEGIN SOLUTION\nb = 2\n# END SOLUTION\nprint(a)\n"
    assert make_student.strip_solutions(top) == "a = 1\n# Your code here\nprint(a)\n"


# ------------------------------------------------------------------------------ A1 mistakes
def _a1_variant(old: str, new: str):
    _, source = _function_from(ROOT / "instructor" / "a1_aupro.ipynb", "aupro")
    assert old in source, old
    namespace: dict = {}
    exec(source.replace(old, new), namespace)
    return namespace["aupro"]


@pytest.mark.parametrize(
    ("old", "new", "failing_check", "message_part"),
    [
        ("1.0 / (sizes[region] * n_regions)", "1.0 / (~is_normal).sum()",
         "every region counts the same, whatever its size", "counts as much as"),
        ("structure=np.ones((3, 3))", "structure=None", "regions are 8-connected", "8-connected"),
        ("fpr_step = is_normal / is_normal.sum()",
         "fpr_step = is_normal / is_normal.reshape(masks.shape)[masks.reshape(len(masks), -1).any(1)].sum()",
         "defect-free images count in the FPR", "defect-free ones included"),
        ("if x[-1] < fpr_limit:", "if False:", "the integral stops exactly at fpr_limit", "interpolate"),
        ("/ fpr_limit)\n", ")\n", "a perfect map scores 1", "divide it by fpr_limit"),
    ],
)
def test_a1_checks_catch_their_mistake(old, new, failing_check, message_part):
    _, check = ASSIGNMENTS["a1_aupro"]
    feedback = check(_a1_variant(old, new), verbose=False, raise_on_fail=False)
    failed = {r.name: r.message for r in feedback.failed()}
    assert failing_check in failed, f"expected {failing_check!r} to fail, got {sorted(failed)}"
    assert message_part in failed[failing_check]


def test_a1_thresholds_instead_of_ties_are_caught():
    # A common shortcut: 50 evenly spaced thresholds instead of every distinct value.
    def coarse(masks, maps, fpr_limit=0.3):
        import numpy as np

        from anolearn.metrics import aupro

        edges = np.linspace(np.min(maps), np.max(maps), 50)
        return aupro(masks, np.digitize(maps, edges), fpr_limit)

    _, check = ASSIGNMENTS["a1_aupro"]
    feedback = check(coarse, verbose=False, raise_on_fail=False)
    assert not feedback.passed
    assert "matches the reference on random test sets" in {r.name for r in feedback.failed()}


def test_grade_reports_each_submission(tmp_path):
    broken = tmp_path / "broken.ipynb"
    broken.write_text("not a notebook")
    rows = grade("a1_aupro", [ROOT / "instructor" / "a1_aupro.ipynb", ROOT / "student" / "a1_aupro.ipynb", broken])
    solution, stub, bad = rows
    assert solution.passed == solution.total > 0 and not solution.failed
    assert stub.passed == 0 and stub.not_started
    assert bad.error and bad.total == 0
    with pytest.raises(ValueError, match="unknown assignment"):
        grade("a9_nothing", [])
