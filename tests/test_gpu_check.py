"""benchmarks/gpu_check.py: refuses without CUDA, and its --smoke mode runs the whole check on the CPU."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from anolearn.cli.commands import method_settings
from anolearn.cli.spec import check_settings
from anolearn.methods import METHODS, create_method

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("_gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_refuses_without_cuda_in_one_line(gpu_check, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no CUDA GPU") and "--smoke" in err and err.count("\n") == 1


def test_the_shortened_full_profile_settings_build_every_method(gpu_check):
    plan = gpu_check.make_plan(smoke=False, steps=200, methods=None)
    assert plan.profile.name == "full" and plan.profile.image_size == 256 and set(plan.methods) == set(METHODS)
    for method in plan.methods:
        settings = check_settings(method, method_settings(method, plan.profile, plan.overrides(method), "washer"))
        config = create_method(method, **settings).config()  # the full-width networks, built on the CPU
        if "steps" in config:
            assert config["steps"] == 200 and not config.get("epochs")  # shortened: steps count, not epochs


def test_smoke_runs_every_method_end_to_end(gpu_check, tmp_path, monkeypatch):
    monkeypatch.setenv("ANOLEARN_DATA", str(tmp_path / "data"))
    results = gpu_check.RESULTS
    before = results.stat().st_mtime_ns if results.exists() else None
    assert gpu_check.main(["--smoke", "--out", str(tmp_path / "out")]) == 0
    report = (tmp_path / "out" / "gpu_check_smoke.md").read_text()
    assert report.startswith("# GPU check (smoke run on the CPU: measures nothing about a GPU)")
    for method in METHODS:
        for category in ("brick", "washer"):
            assert f"| {method} | {category} |" in report
    assert "## Settings changed from the profile" in report and "Cells not finished" not in report
    assert not any((tmp_path / "out" / "runs").iterdir())  # each cell's run folder is deleted once evaluated
    assert (results.stat().st_mtime_ns if results.exists() else None) == before  # never the committed file


def test_time_budget_leaves_cells_not_run(gpu_check, tmp_path, monkeypatch):
    # A budget spent before the first cell (writing the data counts): every cell is listed as not run.
    monkeypatch.setenv("ANOLEARN_DATA", str(tmp_path / "data"))
    code = gpu_check.main(["--smoke", "--out", str(tmp_path / "out"), "--methods", "raw_pixel,riad",
                           "--budget-min", "0.0001"])
    assert code == 1  # not every cell ran
    report = (tmp_path / "out" / "gpu_check_smoke.md").read_text()
    assert "(0 of 4 cells finished)" in report
    for cell in ("raw_pixel on brick", "riad on brick", "raw_pixel on washer", "riad on washer"):
        assert f"- {cell}: not run: time budget" in report


def test_unknown_category_is_refused_in_one_line(gpu_check, capsys):
    assert gpu_check.main(["--smoke", "--categories", "brick,nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown synthetic category nope") and err.count("\n") == 1
