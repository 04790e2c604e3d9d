"""Assignments: student versions are current, checks fail on the stubs and pass on the solutions,
and each check catches the typical mistake it was written for (with its specific message)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest
import torch

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


# ------------------------------------------------------------------------------ A2-A5 mistakes
def _variant(name: str, old: str, new: str):
    """The instructor solution of assignment ``name`` with ``old`` replaced by ``new`` (a typical mistake)."""
    function_name, _ = ASSIGNMENTS[name]
    _, source = _function_from(ROOT / "instructor" / f"{name}.ipynb", function_name)
    assert old in source, old
    namespace: dict = {}
    exec(source.replace(old, new, 1), namespace)  # noqa: S102 - the instructor solution, edited
    return namespace[function_name]


def _assert_caught(name: str, student, failing_check: str, message_part: str):
    _, check = ASSIGNMENTS[name]
    feedback = check(student, verbose=False, raise_on_fail=False)
    failed = {r.name: r.message for r in feedback.failed()}
    assert failing_check in failed, f"expected {failing_check!r} to fail, got {sorted(failed)}"
    assert message_part in failed[failing_check], failed[failing_check]


@pytest.mark.parametrize(
    ("old", "new", "failing_check", "message_part"),
    [
        ("return t * t * t * (t * (t * 6 - 15) + 10)", "return t", "corners blended with the quintic fade",
         "linear interpolation"),
        ("return t * t * t * (t * (t * 6 - 15) + 10)", "return t * t * (3 - 2 * t)",
         "corners blended with the quintic fade", "cubic fade"),
        ("gc[..., 0] * (fy - di) + gc[..., 1] * (fx - dj)", "gc[..., 0] * (di - fy) + gc[..., 1] * (dj - fx)",
         "matches anolearn.forge.perlin on given gradients", "p - corner"),
        ("math.sqrt(2.0) * (left", "(left", "matches anolearn.forge.perlin on given gradients",
         "multiply by sqrt(2)"),
        ("gc[..., 0] * (fy - di) + gc[..., 1] * (fx - dj)", "gc[..., 1] * (fy - di) + gc[..., 0] * (fx - dj)",
         "matches anolearn.forge.perlin on given gradients", "gradients[..., 0] is the y"),
        ("gc[..., 1] * (fx - dj)", "gc[..., 1] * fx", "continuous across cell borders", "a cell border"),
        ("* (R - 1) / H", "/ (H // (R - 1))", "any image size, not only multiples of the cell size",
         "H // (R - 1)"),
        ("torch.arange(H, dtype=torch.float64) * (R - 1) / H", "torch.linspace(0, R - 1, H, dtype=torch.float64)",
         "zero on every lattice point", "torch.linspace(0, R - 1, H)"),
    ],
)
def test_a2_checks_catch_their_mistake(old, new, failing_check, message_part):
    _assert_caught("a2_perlin", _variant("a2_perlin", old, new), failing_check, message_part)


@pytest.mark.parametrize(
    ("old", "new", "failing_check", "message_part"),
    [
        ("weights = F.relu(gradients)", "weights = gradients.mean(dim=(2, 3), keepdim=True)",
         "each location weighted by its own gradient", "Grad-CAM"),
        ("weights = F.relu(gradients)", "weights = gradients", "only positive gradients count",
         "negative gradients"),
        ("cam = F.relu((weights * activations).sum(dim=1, keepdim=True))",
         "cam = (weights * activations).sum(dim=1, keepdim=True)", "ReLU on the weighted sum", "apply ReLU"),
        ("lo = cam.amin(dim=(1, 2, 3), keepdim=True)", "lo = cam.min()", "min-max normalisation", "per image"),
        ("hi = cam.amax(dim=(1, 2, 3), keepdim=True)", "hi = cam.max()", "each image normalised on its own",
         "whole batch"),
        ("torch.where(span > 1e-12, (cam - lo) / span.clamp_min(1e-12), torch.zeros_like(cam))", "cam / hi",
         "min-max normalisation", "maximum only"),
        ("torch.where(span > 1e-12, (cam - lo) / span.clamp_min(1e-12), torch.zeros_like(cam))", "(cam - lo) / span",
         "an image with no positive evidence gives zeros, not NaN", "NaN"),
        ('mode="bilinear", align_corners=False', 'mode="nearest"', "bilinear upsampling (align_corners=False)",
         "nearest-neighbour"),
        ("align_corners=False", "align_corners=True", "bilinear upsampling (align_corners=False)",
         "align_corners=False"),
        ("weights = F.relu(gradients)", "weights = gradients.clamp_(min=0)", "inputs left unchanged", "in place"),
    ],
)
def test_a3_checks_catch_their_mistake(old, new, failing_check, message_part):
    _assert_caught("a3_layercam", _variant("a3_layercam", old, new), failing_check, message_part)


_A4_BODY = "    error = (x * A - x_hat * A).abs().sum()"


@pytest.mark.parametrize(
    ("old", "new", "failing_check", "message_part"),
    [
        ("(x * A - x_hat * A).abs().sum()", "(x * A - x_hat * A).pow(2).sum()", "an L1 (absolute) error",
         "square"),
        ("return error / (n_normal + 1e-8)", "return error / x.numel()", "normalised by the number of normal pixels",
         "not by all pixels"),
        ("n_normal = A.sum() * C", "n_normal = A.sum()", "each normal pixel counted once per channel",
         "C * sum(A)"),
        ("return error / (n_normal + 1e-8)", "return error / n_normal", "an all-anomalous batch gives 0, not NaN",
         "Guard the division"),
        ("error = (x * A - x_hat * A).abs().sum()", "error = (x - x_hat).abs().sum()",
         "anomalous pixels do not change the loss", "no influence"),
        ("error = (x * A - x_hat * A).abs().sum()", "error = (x - x_hat).abs().sum()",
         "no gradient reaches the anomalous pixels", "reaches the anomalous pixels"),
        (_A4_BODY, ("    return torch.stack([(x[i] - x_hat[i]).abs()[A[i].expand_as(x[i]) > 0].mean() "
                   "for i in range(len(x))]).mean()\n    error = 0"),
         "one ratio over the whole batch", "per-image means"),
        (_A4_BODY, "    return ((x * A - x_hat * A).abs().sum() / (A.sum() * C + 1e-8)).item()\n    error = 0",
         "returns a scalar tensor", "torch.Tensor"),
    ],
)
def test_a4_checks_catch_their_mistake(old, new, failing_check, message_part):
    _assert_caught("a4_masked_loss", _variant("a4_masked_loss", old, new), failing_check, message_part)


@pytest.mark.parametrize(
    ("old", "new", "failing_check", "message_part"),
    [
        ("math.ceil(H / k), math.ceil(W / k)", "H // k, W // k", "image sizes that k does not divide",
         "ceil(H / k)"),
        ("torch.randperm(cells, generator=generator)", "torch.randperm(cells)", "the same seed gives the same masks",
         "generator=generator"),
        ("group[order] = torch.arange(cells) * n // cells", "group = torch.randint(0, n, (cells,), generator=generator)",
         "masks hide equal numbers of cells (within one)", "random permutation"),
        ("group.repeat_interleave(k, 0).repeat_interleave(k, 1)", "group.repeat(k, k)",
         "hidden parts are whole k x k cells", "whole"),
        ("masks = pixels[None] != torch.arange(n)", "masks = pixels[None] == torch.arange(n)",
         "every pixel hidden in exactly one mask", "inverted"),
        ("group[order] = torch.arange(cells) * n // cells",
         "group = (torch.arange(cells) + torch.randint(0, n, (1,), generator=generator)) % n",
         "different seeds give different masks", "grouping itself must be random"),
        ("return masks.float()[:, None]", "return masks[:, None]", "returns n float masks (n, 1, H, W) of 0 and 1",
         ".float()"),
    ],
)
def test_a5_checks_catch_their_mistake(old, new, failing_check, message_part):
    _assert_caught("a5_grid_masks", _variant("a5_grid_masks", old, new), failing_check, message_part)


def test_a5_checks_leave_the_global_random_state_alone():
    _, check = ASSIGNMENTS["a5_grid_masks"]
    solution, _ = _function_from(ROOT / "instructor" / "a5_grid_masks.ipynb", "grid_masks")
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    assert check(solution, verbose=False).passed
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_grade_on_both_versions(name):
    solution, stub = grade(name, [ROOT / "instructor" / f"{name}.ipynb", ROOT / "student" / f"{name}.ipynb"])
    assert solution.passed == solution.total > 0 and not solution.failed and not solution.error
    assert stub.passed == 0 and stub.not_started and not stub.error
