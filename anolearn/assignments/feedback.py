"""Run the property checks of an assignment and explain every failure.

A student's function is checked by a list of small, named properties. Each property is a
function that calls the student's code on one input chosen to expose one mistake, and
raises :class:`CheckFailed` with a message that says *what* was expected, *on which
input*, and which idea the input probes. The runner catches everything, so one broken
property never hides the others, and prints a report such as::

    Assignment A1 (AUPRO): 5 of 7 checks passed
      ok    returns a float in [0, 1]
      ok    a perfect map scores 1
      FAIL  every region counts the same, whatever its size
            On one large region found at once and one 4-pixel region found late, your
            aupro gives 0.912, the reference 0.571. ...

A check that has not been started (the stub still raises ``NotImplementedError``) is
reported as such rather than as a traceback.
"""
from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

NOT_STARTED = "Not implemented yet: replace the `raise NotImplementedError(...)` line with your code."


class CheckFailed(AssertionError):
    """Raised by a property check; its message is shown to the student as is."""


class AssignmentIncomplete(AssertionError):
    """Raised by :func:`run_checks` (``raise_on_fail=True``) when any check fails."""


@dataclass
class CheckResult:
    """Outcome of one property: its name, whether it held, and the feedback text."""

    name: str
    passed: bool
    message: str = ""


@dataclass
class Feedback:
    """All results of one assignment check; prints as a plain-text report."""

    title: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def n_passed(self) -> int:
        return sum(r.passed for r in self.results)

    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    def __str__(self) -> str:
        lines = [f"{self.title}: {self.n_passed} of {len(self.results)} checks passed"]
        if self.results and all(r.message == NOT_STARTED for r in self.results):
            return "\n".join(lines + [f"  {NOT_STARTED}"])
        for r in self.results:
            lines.append(f"  {'ok  ' if r.passed else 'FAIL'}  {r.name}")
            if r.message and not r.passed:
                lines.extend("        " + line for line in r.message.splitlines())
        if self.passed:
            lines.append("All checks passed. Well done.")
        return "\n".join(lines)


def _explain(err: BaseException) -> str:
    """Feedback text for an exception raised inside a check."""
    if isinstance(err, CheckFailed):
        return str(err)
    if isinstance(err, NotImplementedError):
        return NOT_STARTED
    # An unexpected error in the student's code: show where it happened, in their frames.
    tb = traceback.extract_tb(err.__traceback__)
    where = next((f for f in reversed(tb) if "anolearn" not in f.filename.replace("\\", "/").split("/")), None)
    place = f" (line {where.lineno}: `{where.line}`)" if where is not None and where.line else ""
    return f"Your function raised {type(err).__name__}: {err}{place}"


def run_checks(
    title: str,
    checks: list[tuple[str, Callable[[], None]]],
    verbose: bool = True,
    raise_on_fail: bool = True,
) -> Feedback:
    """Run named property checks and report on each.

    Args:
        title: heading of the report, e.g. ``"Assignment A1 (AUPRO)"``.
        checks: ``(name, check)`` pairs; ``check()`` returns on success and raises
            :class:`CheckFailed` (or any exception) on failure.
        verbose: print the report.
        raise_on_fail: raise :class:`AssignmentIncomplete` after printing if any check
            failed, so that "Run all" stops at the check cell (and a grader's nbmake run fails).

    Returns:
        The :class:`Feedback` (also when ``raise_on_fail`` is False).
    """
    feedback = Feedback(title)
    for name, check in checks:
        try:
            check()
            feedback.results.append(CheckResult(name, True))
        except Exception as err:  # noqa: BLE001 - every failure becomes feedback
            feedback.results.append(CheckResult(name, False, _explain(err)))
    if verbose:
        print(feedback)
    if raise_on_fail and not feedback.passed:
        failed = ", ".join(r.name for r in feedback.failed())
        raise AssignmentIncomplete(f"{len(feedback.failed())} check(s) failed: {failed}. See the report above.")
    return feedback
