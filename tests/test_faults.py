"""Bad input and accidents, tried as a new user would: every case ends in one ``error:`` line
(exit status 2) that names the file or setting and says what to do, before anything is
written, or it works where it should; nothing a user made is deleted, and no run is lost or
blocked. Tiny images, no training longer than a few steps."""
from __future__ import annotations

import csv
import errno
import importlib.util
import json
import os
import socket
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from anolearn.cli import benchmark as bench
from anolearn.cli import commands, main
from anolearn.cli.runs import append_rows, read_rows
from anolearn.data import ImageReadError, read_image
from anolearn.data.download import DownloadError, DownloadInfo, download
from anolearn.methods import create_method, load_method
from anolearn.methods.settings import SettingsError, check_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setenv("ANOLEARN_PROFILE", "quick")
    monkeypatch.delenv("ANOLEARN_DEVICE", raising=False)
    monkeypatch.delenv("ANOLEARN_DEBUG", raising=False)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(code, err, *phrases):
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for phrase in phrases:
        assert phrase in err, err


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def train_args(data, out, method="raw_pixel", *extra):
    return ["train", "--method", method, "--data", data, "--out", out, "--no-progress", *extra]


@pytest.fixture
def copy_of(mvtec_root, tmp_path):
    """A writable copy of the miniature MVTec tree, to break."""
    import shutil

    def make(name="broken"):
        return Path(shutil.copytree(mvtec_root, tmp_path / name))

    return make


def _load_script(name):
    spec = importlib.util.spec_from_file_location(f"_script_{name}", ROOT / "data_scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- data files
@pytest.mark.parametrize("damage", ["empty", "truncated", "not_an_image"])
def test_corrupt_training_image_is_named_before_anything_is_written(copy_of, tmp_path, capsys, damage):
    root = copy_of()
    bad = root / "bottle" / "train" / "good" / "001.png"
    data = bad.read_bytes()
    bad.write_bytes({"empty": b"", "truncated": data[:60], "not_an_image": b"<html>error</html>"}[damage])
    out = tmp_path / "run"
    code, _, err = run(capsys, *train_args(f"{root}:bottle", out))
    one_line_error(code, err, str(bad), "Replace or delete it")
    assert not out.exists()


def test_mask_of_the_wrong_size(copy_of, tmp_path, capsys):
    root = copy_of()
    mask = root / "bottle" / "ground_truth" / "contamination" / "000_mask.png"
    cv2.imwrite(str(mask), np.zeros((20, 20), np.uint8))
    # train --evaluate reads the test split before training: refused, nothing written
    code, _, err = run(capsys, *train_args(f"{root}:bottle", tmp_path / "a", "raw_pixel", "--evaluate"))
    one_line_error(code, err, str(mask), "20x20", "same size")
    assert not (tmp_path / "a").exists()
    # a trained run evaluated later: the same line, and no row appended
    assert run(capsys, *train_args(f"{root}:bottle", tmp_path / "b"))[0] == 0
    code, _, err = run(capsys, "evaluate", "--run", tmp_path / "b", "--no-progress")
    one_line_error(code, err, str(mask))
    assert not (tmp_path / "b" / "results.csv").exists()


def test_one_pixel_images_are_refused(tmp_path, capsys):
    from conftest import make_mvtec_tree

    root = make_mvtec_tree(tmp_path / "tiny", size=1)
    code, _, err = run(capsys, *train_args(f"{root}:bottle", tmp_path / "run"))
    one_line_error(code, err, "000.png is 1x1 px", "at least 16x16")
    assert not (tmp_path / "run").exists()


def test_minimum_image_side(tmp_path):
    for side, ok in ((15, False), (16, True)):
        path = tmp_path / f"{side}.png"
        cv2.imwrite(str(path), np.zeros((side, 40, 3), np.uint8))
        if ok:
            assert read_image(path, 32).shape == (3, 32, 32)
        else:
            with pytest.raises(ImageReadError, match="15.png is 40x15 px"):
                read_image(path, 32)


def test_test_split_with_only_good_images_reports_what_it_can(copy_of, tmp_path, capsys):
    import shutil

    root = copy_of()
    for defect in ("broken_large", "broken_small", "contamination"):
        shutil.rmtree(root / "bottle" / "test" / defect)
    code, out, err = run(capsys, *train_args(f"{root}:bottle", tmp_path / "run", "raw_pixel", "--evaluate"))
    assert code == 0, err
    assert "note: image_auroc cannot be computed: the test split has only good images" in out
    assert "pixel_auroc, pixel_ap, aupro cannot be computed" in out
    (row,) = rows(tmp_path / "run" / "results.csv")
    assert row["image_auroc"] == row["aupro"] == "nan" and "only good images" in row["notes"]
    assert float(row["infer_images_per_s"]) > 0


def test_test_split_with_only_defective_images_keeps_the_pixel_metrics(copy_of, tmp_path, capsys):
    import shutil

    root = copy_of()
    shutil.rmtree(root / "bottle" / "test" / "good")
    code, out, err = run(capsys, *train_args(f"{root}:bottle", tmp_path / "run", "raw_pixel", "--evaluate"))
    assert code == 0, err
    (row,) = rows(tmp_path / "run" / "results.csv")
    assert row["image_auroc"] == "nan" and 0 <= float(row["pixel_auroc"]) <= 1 and 0 <= float(row["aupro"]) <= 1
    assert "only defective images" in row["notes"] and "pixel_auroc" not in row["notes"]


# ----------------------------------------------------------------------------- options
def test_out_naming_a_file(mvtec_root, tmp_path, capsys):
    afile = tmp_path / "notes.txt"
    afile.write_text("mine")
    code, _, err = run(capsys, *train_args(f"{mvtec_root}:bottle", afile))
    one_line_error(code, err, f"--out {afile} is a file")
    code, _, err = run(capsys, "benchmark", "--methods", "raw_pixel", "--data", mvtec_root, "--out", afile,
                       "--no-progress")
    one_line_error(code, err, "is a file")
    code, _, err = run(capsys, "evaluate", "--run", afile)
    one_line_error(code, err, "is a file")
    assert afile.read_text() == "mine"


@pytest.mark.parametrize(("device", "phrase"), [("tpu", "not a device name"), ("cuda", "no CUDA GPU"),
                                                ("cuda:7", "CUDA"), ("meta", "runs on cpu, cuda")])
def test_bad_device(mvtec_root, tmp_path, capsys, device, phrase):
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device == "cuda" and gpus or device == "cuda:7" and gpus > 7:
        pytest.skip("this machine has that GPU")
    if device == "cuda:7" and gpus:
        phrase = f"this machine has {gpus} CUDA GPU(s)"
    code, _, err = run(capsys, *train_args(f"{mvtec_root}:bottle", tmp_path / "run", "raw_pixel",
                                           "--device", device))
    one_line_error(code, err, f"--device {device}", phrase)
    assert not (tmp_path / "run").exists()


def test_bad_device_in_the_environment(mvtec_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ANOLEARN_DEVICE", "tpu")
    code, _, err = run(capsys, *train_args(f"{mvtec_root}:bottle", tmp_path / "run"))
    one_line_error(code, err, "ANOLEARN_DEVICE tpu")


@pytest.mark.parametrize(("method", "setting", "phrase"), [
    ("riad", "steps=-1", "steps must be >= 1"),
    ("riad", "steps=0", "steps must be >= 1"),
    ("riad", "batch_size=0", "batch_size must be >= 1"),
    ("riad", "lr=-1", "lr must be > 0"),
    ("riad", "steps=abc", "steps must be an integer"),
    ("riad", "ks=4", "ks must be a tuple of integers"),
    ("riad", "amp=false", "amp must be True or False"),
    ("feature_knn", "k=0", "k must be >= 1"),
    ("draem", "score_filter=4", "score_filter must be an odd number"),
    ("raw_pixel", "sigmaa=1", "did you mean 'sigma'"),
])
def test_bad_setting_is_refused_before_anything_is_written(mvtec_root, tmp_path, capsys, method, setting, phrase):
    out = tmp_path / "run"
    code, _, err = run(capsys, *train_args(f"{mvtec_root}:bottle", out, method, "--set", setting))
    one_line_error(code, err, f"{method}: " if "did you" not in phrase else method, phrase)
    assert not out.exists()


def test_a_rejected_train_does_not_claim_its_out(mvtec_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(capsys, *train_args(f"{mvtec_root}:bottle", out, "raw_pixel", "--set", "sigma=-1"))[0] == 2
    code, stdout, err = run(capsys, *train_args(f"{mvtec_root}:bottle", out, "raw_pixel", "--set", "sigma=1"))
    assert code == 0 and "trained in" in stdout, err


def test_a_benchmark_checks_every_methods_settings_first(mvtec_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench, "REFERENCE_METHODS", ("raw_pixel",))
    code, _, err = run(capsys, "benchmark", "--methods", "riad", "--data", mvtec_root, "--out", tmp_path / "b",
                       "--set", "steps=0", "--no-progress")
    one_line_error(code, err, "riad: steps=0")
    assert not (tmp_path / "b").exists()


def test_unknown_profile_in_the_environment(mvtec_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ANOLEARN_PROFILE", "fast")
    code, _, err = run(capsys, *train_args(f"{mvtec_root}:bottle", tmp_path / "run"))
    one_line_error(code, err, "Unknown profile 'fast'")


# ----------------------------------------------------------------------------- settings, centrally
def test_create_method_checks_type_and_range():
    with pytest.raises(SettingsError, match=r"riad: steps='abc' has the wrong type: steps must be an integer"):
        create_method("riad", steps="abc")
    with pytest.raises(ValueError, match="feature_knn: k=0 is out of range"):  # a SettingsError is a ValueError
        create_method("feature_knn", k=0)
    with pytest.raises(SettingsError, match="each value of blocks must be >= 1"):
        create_method("cutpaste", blocks=(1, 0, 1, 1))


def test_check_settings_normalises_and_leaves_valid_values_alone():
    assert check_settings("riad", {"steps": 1e3, "ks": [2, 4], "epochs": None}) == {
        "steps": 1000, "ks": (2, 4), "epochs": None}
    assert check_settings("cutpaste", {"shrinkage": 0.3, "forger": "cutpaste"}) == {"shrinkage": 0.3,
                                                                                     "forger": "cutpaste"}
    with pytest.raises(SettingsError, match="steps=2.5 has the wrong type"):
        check_settings("riad", {"steps": 2.5})
    with pytest.raises(SettingsError, match="beta must be a tuple of 2 numbers"):
        check_settings("draem", {"beta": (0.2,)})
    with pytest.raises(SettingsError, match="beta must be in"):
        check_settings("draem", {"beta": (0.2, 2.0)})
    assert check_settings("anoseg", {"beta": 2.0}) == {"beta": 2.0}  # a loss weight there, not an opacity


def test_every_profile_schedule_passes_the_check():
    from anolearn.config import PROFILE_NAMES, get_profile

    for name in PROFILE_NAMES:
        for method, schedule in get_profile(name).schedules.items():
            check_settings(method, schedule)


# ----------------------------------------------------------------------------- checkpoints
@pytest.fixture
def trained(mvtec_root, tmp_path, capsys):
    """A finished raw_pixel run on bottle."""
    out = tmp_path / "run"
    assert run(capsys, *train_args(f"{mvtec_root}:bottle", out))[0] == 0
    return out


@pytest.mark.parametrize(("edit", "phrase"), [
    (lambda p: p["config"].update(extra=1), "does not accept the setting 'extra'"),
    (lambda p: p["state"].pop("mean_image"), "does not fit a raw_pixel model"),
    (lambda p: p.update(method="no_such_method"), "Unknown method 'no_such_method'"),
])
def test_hand_made_checkpoint(trained, capsys, edit, phrase):
    payload = torch.load(trained / "model.pt", weights_only=True)
    edit(payload)
    torch.save(payload, trained / "model.pt")
    with pytest.raises(ValueError, match="model.pt"):
        load_method(trained / "model.pt")
    code, _, err = run(capsys, "evaluate", "--run", trained, "--no-progress")
    one_line_error(code, err, phrase, "Delete", "train again")
    assert not (trained / "results.csv").exists()


def test_checkpoint_of_another_method_run_or_settings_is_refused(mvtec_root, trained, tmp_path, capsys):
    other = tmp_path / "other"
    assert run(capsys, *train_args(f"{mvtec_root}:bottle", other, "riad", "--set", "steps=1", "--set",
                                   "base_width=4", "--set", "depth=2", "--set", "train_crop=16"))[0] == 0
    original = (trained / "model.pt").read_bytes()
    (trained / "model.pt").write_bytes((other / "model.pt").read_bytes())
    code, _, err = run(capsys, "evaluate", "--run", trained, "--no-progress")
    one_line_error(code, err, "holds a riad model", "says this run trained raw_pixel")

    create_method("raw_pixel", sigma=1.0).fit(torch.rand(4, 3, 32, 32), progress=False).save(trained / "model.pt")
    code, _, err = run(capsys, "evaluate", "--run", trained, "--no-progress")
    one_line_error(code, err, "other settings", "sigma=1.0")

    screw = tmp_path / "screw"
    assert run(capsys, *train_args(f"{mvtec_root}:screw", screw))[0] == 0  # same method and settings
    (trained / "model.pt").write_bytes((screw / "model.pt").read_bytes())
    code, _, err = run(capsys, "evaluate", "--run", trained, "--no-progress")
    one_line_error(code, err, "not the file this run's training wrote")
    assert not (trained / "results.csv").exists()  # no wrong numbers appended

    (trained / "model.pt").write_bytes(original)
    assert run(capsys, "evaluate", "--run", trained, "--no-progress")[0] == 0


def test_disk_full_at_save(mvtec_root, tmp_path, capsys, monkeypatch):
    def full_disk(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 960 vs 854")

    monkeypatch.setattr(torch, "save", full_disk)
    monkeypatch.setattr(commands, "_free_bytes", lambda folder: 0 if (folder / "run.json").exists() else 10**9)
    out = tmp_path / "run"
    code, _, err = run(capsys, *train_args(f"{mvtec_root}:bottle", out))
    one_line_error(code, err, f"{out / 'model.pt'}", "the disk is full", "rerun the same command")
    assert sorted(p.name for p in out.iterdir()) == ["run.json"]  # no partial checkpoint, no temporary file
    monkeypatch.undo()
    monkeypatch.setenv("ANOLEARN_PROFILE", "quick")
    assert run(capsys, *train_args(f"{mvtec_root}:bottle", out))[0] == 0  # the same command, once there is space


def test_too_little_disk_space_is_found_before_training(mvtec_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(commands, "_free_bytes", lambda folder: 1000)
    code, _, err = run(capsys, *train_args(f"{mvtec_root}:bottle", tmp_path / "run", "riad"))
    one_line_error(code, err, "only 1.0 kB is free", "needs at least")
    assert not (tmp_path / "run").exists()


def test_an_unforeseen_error_is_one_line_too(mvtec_root, tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("integer division or modulo by zero")

    monkeypatch.setattr("anolearn.methods.raw_pixel.RawPixelBaseline.fit", broken)
    code, _, err = run(capsys, *train_args(f"{mvtec_root}:bottle", tmp_path / "run"))
    assert code == 1 and err.count("\n") == 1 and "unexpected ZeroDivisionError" in err and "ANOLEARN_DEBUG=1" in err
    monkeypatch.setenv("ANOLEARN_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(train_args(f"{mvtec_root}:bottle", str(tmp_path / "run")))


def test_relative_data_path_is_stored_absolute(mvtec_root, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(mvtec_root.parent)
    assert run(capsys, *train_args(f"{mvtec_root.name}:bottle", "run"))[0] == 0
    assert json.loads((mvtec_root.parent / "run" / "run.json").read_text())["data"] == str(mvtec_root.resolve())
    monkeypatch.chdir(tmp_path.parent)
    assert run(capsys, "evaluate", "--run", mvtec_root.parent / "run", "--no-progress")[0] == 0
    # a run folder written by an older anolearn, with the relative path as typed
    manifest = mvtec_root.parent / "run" / "run.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "data": mvtec_root.name}))
    code, _, err = run(capsys, "evaluate", "--run", mvtec_root.parent / "run", "--no-progress")
    one_line_error(code, err, "relative path", "--data")


# ----------------------------------------------------------------------------- results files and benchmarks
@pytest.fixture
def one_reference(monkeypatch):
    monkeypatch.setattr(bench, "REFERENCE_METHODS", ())


def test_torn_last_row_is_dropped_and_its_cell_rerun(mvtec_root, tmp_path, capsys, one_reference):
    argv = ["benchmark", "--methods", "raw_pixel", "--data", mvtec_root, "--out", tmp_path / "b", "--no-progress"]
    assert run(capsys, *argv)[0] == 0
    results = tmp_path / "b" / "results.csv"
    text = results.read_text()
    results.write_text(text[: len(text) - 60])  # killed in the middle of the last append (inside its settings)
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "warning: the last row of" in err and "1 already done" in out
    assert sorted((r["method"], r["category"]) for r in rows(results)) == [("raw_pixel", "bottle"),
                                                                            ("raw_pixel", "screw")]


def test_append_rows_is_whole_and_survives_a_torn_row_with_a_line_break(tmp_path):
    path = tmp_path / "r.csv"
    append_rows(path, [{"a": 1, "b": "x"}])
    with open(path, "ab") as f:
        f.write(b'2,"half a quoted\nfield')  # torn inside a quoted field holding a line break
    warnings = []
    assert read_rows(path, warn=warnings.append) == [{"a": "1", "b": "x"}] and len(warnings) == 1
    append_rows(path, [{"a": 3, "b": "y"}, {"a": 4, "b": "z", "c": "new column"}])
    assert rows(path) == [{"a": "1", "b": "x", "c": ""}, {"a": "3", "b": "y", "c": ""},
                          {"a": "4", "b": "z", "c": "new column"}]


def test_a_failed_cell_does_not_stop_the_grid(copy_of, tmp_path, capsys, one_reference):
    root = copy_of()
    bad = root / "screw" / "train" / "good" / "001.png"
    good_bytes = bad.read_bytes()
    bad.write_bytes(b"")
    out = tmp_path / "b"
    argv = ["benchmark", "--methods", "raw_pixel", "--data", root, "--out", out, "--no-progress"]
    code, stdout, err = run(capsys, *argv)
    one_line_error(code, err, "1 cell(s) failed", str(bad), "rerun the same command")
    by_cell = {r["category"]: r for r in rows(out / "results.csv")}
    assert by_cell["bottle"]["error"] == "" and float(by_cell["bottle"]["image_auroc"]) >= 0
    assert str(bad) in by_cell["screw"]["error"]
    report = (out / "results.md").read_text()
    assert "## Failed cells" in report and "raw_pixel on screw" in report

    # leave the broken category out, in the same folder
    code, stdout, err = run(capsys, "benchmark", "--methods", "raw_pixel", "--data", f"{root}:bottle", "--out", out,
                            "--no-progress")
    assert code == 0 and "left out: screw" in stdout, err
    assert "Failed cells" not in (out / "results.md").read_text()

    # fixed: the same command as the first retries the failed cell only
    bad.write_bytes(good_bytes)
    code, stdout, err = run(capsys, *argv)
    assert code == 0 and "1 already done, 1 failed before: retrying" in stdout, err
    table = bench.load_results(out / "results.csv")
    assert len(table) == 2 and not bench.failed_cells(table)


def test_a_shard_cannot_change_its_categories(mvtec_root, tmp_path, capsys, one_reference):
    common = ["benchmark", "--methods", "raw_pixel", "--out", tmp_path / "s0", "--shard", "0/2", "--no-progress"]
    assert run(capsys, *common, "--data", mvtec_root)[0] == 0
    code, _, err = run(capsys, *common, "--data", f"{mvtec_root}:bottle")
    one_line_error(code, err, "shard", "choose a new --out")


def test_merge_refuses_its_inputs_and_folders_it_did_not_write(mvtec_root, tmp_path, capsys, one_reference):
    for i in range(2):
        assert run(capsys, "benchmark", "--methods", "raw_pixel", "--data", mvtec_root, "--out", tmp_path / f"s{i}",
                   "--shard", f"{i}/2", "--no-progress")[0] == 0
    shards = [tmp_path / "s0", tmp_path / "s1"]
    before = {p: sorted(x.name for x in p.iterdir()) for p in shards}
    one_line_error(*run(capsys, "merge", shards[0], *shards)[::2], "is one of the shards")
    one_line_error(*run(capsys, "merge", f"{shards[1]}/", *shards)[::2], "is one of the shards")
    assert before == {p: sorted(x.name for x in p.iterdir()) for p in shards}
    assert run(capsys, "benchmark", "--methods", "raw_pixel", "--data", mvtec_root, "--out", shards[0], "--shard",
               "0/2", "--no-progress")[0] == 0  # still resumable

    dataset_files = sorted(p.name for p in mvtec_root.iterdir())
    one_line_error(*run(capsys, "merge", mvtec_root, *shards)[::2], "not written by merge")
    assert sorted(p.name for p in mvtec_root.iterdir()) == dataset_files

    assert run(capsys, "benchmark", "--methods", "raw_pixel", "--data", mvtec_root, "--out", tmp_path / "whole",
               "--no-progress")[0] == 0
    one_line_error(*run(capsys, "merge", tmp_path / "whole", *shards)[::2], "holds a benchmark run")

    assert run(capsys, "merge", tmp_path / "merged", *shards)[0] == 0
    code, out, _ = run(capsys, "merge", tmp_path / "merged", *shards)  # again: nothing new, nothing doubled
    assert code == 0 and "0 new rows" in out and len(rows(tmp_path / "merged" / "results.csv")) == 2


# ----------------------------------------------------------------------------- data scripts
@pytest.mark.parametrize("size", ["0", "1", "-5", "31"])
def test_make_synthetic_refuses_a_bad_size_and_creates_nothing(tmp_path, capsys, size):
    script = _load_script("make_synthetic")
    with pytest.raises(SystemExit) as exit_:
        script.main(["--root", str(tmp_path / "syn"), "--size", size, "--categories", "wood", "--quiet"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("error: --size") and ">= 32" in err and err.count("\n") == 1
    assert not (tmp_path / "syn").exists()


def test_make_synthetic_removes_stale_temporary_folders(tmp_path, capsys):
    from anolearn.data.synthetic import write_category

    stale = tmp_path / ".wood.tmp-killed" / "train" / "good"
    stale.mkdir(parents=True)
    (stale / "000.png").write_bytes(b"half")
    old = time.time() - 3600
    for p in (stale / "000.png", stale, stale.parent, stale.parent.parent):
        os.utime(p, (old, old))
    live = tmp_path / ".wood.tmp-another-writer"  # a process writing right now: left alone
    live.mkdir()
    write_category(tmp_path, "wood", size=32, n_train=1, n_test_good=1, n_test_defect=1, progress=False)
    assert not (tmp_path / ".wood.tmp-killed").exists() and live.exists()
    assert "left over from an interrupted run" in capsys.readouterr().out


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed on exit: nothing listens there


def test_a_file_placed_by_hand_is_never_deleted(tmp_path, monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / "data.zip").write_bytes(b"the reader's own copy")
    info = DownloadInfo(name="Test data", url=f"http://127.0.0.1:{_refused_port()}/data.zip", filename="data.zip",
                        sha256="0" * 64, size=None)
    with pytest.raises(DownloadError, match="did not verify is kept as .*data.zip.rejected"):
        download(info, downloads, progress=False, timeout=5)
    assert (downloads / "data.zip.rejected").read_bytes() == b"the reader's own copy"
    (downloads / "data.zip").write_bytes(b"a second try")
    with pytest.raises(DownloadError):
        download(info, downloads, progress=False, timeout=5)
    assert (downloads / "data.zip.rejected-2").read_bytes() == b"a second try"


# ----------------------------------------------------------------------------- the rest works as before
def test_evaluate_rows_have_the_documented_columns(trained, capsys):
    assert run(capsys, "evaluate", "--run", trained, "--no-progress")[0] == 0
    (row,) = rows(trained / "results.csv")
    assert tuple(row) == commands.RESULT_COLUMNS and row["notes"] == ""
    assert json.loads((trained / "train.json").read_text())["checkpoint_sha256"]


def test_disk_full_message_names_enospc(tmp_path):
    class Model:
        def save(self, path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

        def state_dict(self):
            return {}

    with pytest.raises(commands.CliError, match="the disk is full"):
        commands._save(Model(), tmp_path / "model.pt")


def test_a_diverged_model_is_one_line_at_evaluate(trained, capsys, monkeypatch):
    from anolearn.methods import Prediction, RawPixelBaseline

    def nan_scores(self, images):
        return Prediction(torch.full((len(images),), float("nan")), torch.zeros(len(images), *images.shape[-2:]))

    monkeypatch.setattr(RawPixelBaseline, "predict", nan_scores)
    code, _, err = run(capsys, "evaluate", "--run", trained, "--no-progress")
    one_line_error(code, err, "raw_pixel in", "gives unusable output", "NaN")
    assert not (trained / "results.csv").exists()


def test_a_write_that_fails_is_one_line(mvtec_root, tmp_path, capsys, monkeypatch):
    def no_space(path, payload):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(commands, "write_json", no_space)
    code, _, err = run(capsys, *train_args(f"{mvtec_root}:bottle", tmp_path / "run"))
    one_line_error(code, err, "train.json: No space left on device", "rerun the same command")


def test_merge_reads_a_running_shard_without_changing_it(mvtec_root, tmp_path, capsys, one_reference):
    assert run(capsys, "benchmark", "--methods", "raw_pixel", "--data", mvtec_root, "--out", tmp_path / "s0",
               "--no-progress")[0] == 0
    results = tmp_path / "s0" / "results.csv"
    torn = results.read_bytes() + b"raw_pixel,half a row"  # as seen while the shard is appending
    results.write_bytes(torn)
    code, out, err = run(capsys, "merge", tmp_path / "merged", tmp_path / "s0")
    assert code == 0 and "ignored it" in err and "2 new rows" in out, err
    assert results.read_bytes() == torn
