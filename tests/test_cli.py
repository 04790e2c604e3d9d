"""The command line end to end on a miniature MVTec-layout dataset: train, evaluate, resume,
shard + merge, and a one-line error for each bad input."""
from __future__ import annotations

import csv

import pytest

from anolearn.cli import main
from anolearn.cli import benchmark as bench


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setenv("ANOLEARN_PROFILE", "quick")


def test_train_evaluate_and_resume(mvtec_root, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run(capsys, "train", "--method", "raw_pixel", "--data", f"{mvtec_root}:bottle",
                          "--out", str(out), "--evaluate", "--no-progress")
    assert code == 0 and "trained in" in stdout and "image_auroc" in stdout
    (row,) = rows(out / "results.csv")
    assert row["method"] == "raw_pixel" and row["category"] == "bottle"
    assert 0.0 <= float(row["image_auroc"]) <= 1.0 and 0.0 <= float(row["aupro"]) <= 1.0
    assert float(row["infer_images_per_s"]) > 0 and float(row["peak_memory_mb"]) > 0

    mtime = (out / "model.pt").stat().st_mtime_ns
    code, stdout, _ = run(capsys, "train", "--method", "raw_pixel", "--data", f"{mvtec_root}:bottle",
                          "--out", str(out), "--no-progress")
    assert code == 0 and "resumed" in stdout
    assert (out / "model.pt").stat().st_mtime_ns == mtime  # not trained again

    code, _, _ = run(capsys, "evaluate", "--run", str(out), "--no-progress")
    assert code == 0 and len(rows(out / "results.csv")) == 2  # appended, not overwritten


def test_a_category_folder_itself_is_accepted(mvtec_root, tmp_path, capsys):
    code, _, err = run(capsys, "train", "--method", "raw_pixel", "--data", str(mvtec_root / "screw"),
                       "--out", str(tmp_path / "r"), "--no-progress")
    assert code == 0, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--method", "nope", "--data", "{root}:bottle"], "unknown method nope; available:"),
        (["train", "--method", "raw_pixel", "--data", "{root}:bottel"], "unknown category bottel; available: bottle"),
        (["train", "--method", "raw_pixel", "--data", "{root}"], "name a category, e.g."),
        (["train", "--method", "raw_pixel", "--data", "{tmp}:x"], "holds no category in MVTec AD layout"),
        (["train", "--method", "raw_pixel", "--data", "{tmp}/missing:x"], "is not a folder"),
        (["train", "--method", "raw_pixel", "--data", "{root}:bottle", "--set", "sigma"], "expected KEY=VALUE"),
        (["train", "--method", "raw_pixel", "--data", "{root}:bottle", "--set", "nonsense=1"], "does not accept"),
        (["benchmark", "--methods", "raw_pixel", "--data", "{root}", "--shard", "3/2"], "expected I/N"),
    ],
)
def test_bad_input_gives_one_line(mvtec_root, tmp_path, capsys, argv, message):
    argv = [a.format(root=mvtec_root, tmp=tmp_path) for a in argv] + ["--out", str(tmp_path / "out"), "--no-progress"]
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err


def test_folder_of_another_run_is_refused(mvtec_root, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert run(capsys, "train", "--method", "raw_pixel", "--data", f"{mvtec_root}:bottle", "--out", out,
               "--no-progress")[0] == 0
    code, _, err = run(capsys, "train", "--method", "raw_pixel", "--data", f"{mvtec_root}:screw", "--out", out,
                       "--no-progress")
    assert code == 2 and "holds another run" in err and "category" in err
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("mine")
    code, _, err = run(capsys, "train", "--method", "raw_pixel", "--data", f"{mvtec_root}:bottle",
                       "--out", str(tmp_path / "junk"), "--no-progress")
    assert code == 2 and "not empty" in err


def test_corrupt_checkpoint_is_reported(mvtec_root, tmp_path, capsys):
    out = tmp_path / "run"
    run(capsys, "train", "--method", "raw_pixel", "--data", f"{mvtec_root}:bottle", "--out", str(out), "--no-progress")
    (out / "model.pt").write_bytes(b"not a checkpoint")
    code, _, err = run(capsys, "evaluate", "--run", str(out), "--no-progress")
    assert code == 2 and "not a readable anolearn checkpoint" in err and "train again" in err
    code, _, err = run(capsys, "evaluate", "--run", str(tmp_path / "nowhere"), "--no-progress")
    assert code == 2 and "not a run folder" in err


def test_benchmark_shards_merge_and_resume(mvtec_root, tmp_path, capsys, monkeypatch):
    # The real reference rows (raw_pixel, feature_knn) would make this test slow; one is enough here.
    monkeypatch.setattr(bench, "REFERENCE_METHODS", ("raw_pixel",))
    common = ["--methods", "raw_pixel", "--data", str(mvtec_root), "--no-progress"]
    for i in range(2):
        code, _, err = run(capsys, "benchmark", *common, "--out", str(tmp_path / f"s{i}"), "--shard", f"{i}/2")
        assert code == 0, err
    shard_cells = [{(r["method"], r["category"]) for r in rows(tmp_path / f"s{i}" / "results.csv")} for i in range(2)]
    assert shard_cells[0].isdisjoint(shard_cells[1])
    assert shard_cells[0] | shard_cells[1] == {("raw_pixel", "bottle"), ("raw_pixel", "screw")}

    code, _, err = run(capsys, "merge", str(tmp_path / "all"), str(tmp_path / "s0"), str(tmp_path / "s1"))
    assert code == 0, err
    merged = rows(tmp_path / "all" / "results.csv")
    assert {(r["method"], r["category"]) for r in merged} == shard_cells[0] | shard_cells[1]
    assert (tmp_path / "all" / "results.md").read_text().count("| raw_pixel |") == 5  # mean + 4 metrics
    assert (tmp_path / "all" / "plots" / "aupro.png").exists()

    # Resume: a rerun of the same command trains nothing and appends nothing.
    calls = []
    monkeypatch.setattr(bench, "train", lambda *a, **k: calls.append(a))
    code, stdout, _ = run(capsys, "benchmark", *common, "--out", str(tmp_path / "s0"), "--shard", "0/2")
    assert code == 0 and not calls and "1 already done" in stdout
    assert len(rows(tmp_path / "s0" / "results.csv")) == 1

    code, _, err = run(capsys, "benchmark", *common, "--out", str(tmp_path / "s0"), "--shard", "1/2")
    assert code == 2 and "holds another benchmark" in err


def test_grid_always_has_the_reference_rows():
    cells = bench.grid(["draem"], ["a", "b"])
    assert [m for m, _ in cells[::2]] == ["raw_pixel", "feature_knn", "draem"]


def test_rerun_with_more_methods_extends_the_grid(mvtec_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench, "REFERENCE_METHODS", ())
    out = ["--data", str(mvtec_root), "--no-progress", "--out", str(tmp_path / "b")]
    code, _, err = run(capsys, "benchmark", "--methods", "raw_pixel", *out)
    assert code == 0, err
    trained = []
    real_train = bench.train
    monkeypatch.setattr(bench, "train", lambda *a, **k: trained.append(a) or real_train(*a, **k))
    code, stdout, err = run(capsys, "benchmark", "--methods", "raw_pixel,feature_knn", *out)
    assert code == 0, err
    assert "extending" in stdout and "2 already done" in stdout
    assert len(trained) == 2  # only the feature_knn cells
    cells = {(r["method"], r["category"]) for r in rows(tmp_path / "b" / "results.csv")}
    assert cells == {(m, c) for m in ("raw_pixel", "feature_knn") for c in ("bottle", "screw")}
    # Dropping a method is another benchmark, not a resume.
    code, _, err = run(capsys, "benchmark", "--methods", "feature_knn", *out)
    assert code == 2 and "holds another benchmark" in err


def test_profile_seed_reaches_the_methods():
    from anolearn.cli.commands import method_settings
    from anolearn.config import get_profile
    from anolearn.seed import run_seed

    # each (method, category) run gets its own seed, derived from the profile's (tests/test_seed.py)
    assert method_settings("cutpaste", get_profile(seed=3), category="a")["seed"] == run_seed(3, "cutpaste", "a")
    assert method_settings("cutpaste", get_profile(seed=3), {"seed": 7}, category="a")["seed"] == 7
