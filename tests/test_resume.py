"""An interrupted training resumes from its checkpoint and ends with the weights of an uninterrupted one.

For every trained method family (DRAEM and SGSF, RIAD and SSM, AnoSeg's two stages, CutPaste
and CutSwap) a training is killed right after its k-th checkpoint (a checkpoint after every
step, ``checkpoint_every=0``), then a new model of the same settings calls ``fit`` with the same
checkpoint file. On the CPU its weights, loss history and predictions must equal, bit for bit,
those of the same training run without interruption -- and of one run without checkpoints, so
writing them changes nothing either.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import anolearn.methods.riad as riad_module
from anolearn.cli import main
from anolearn.methods import create_method, load_method
from anolearn.methods.training import Training, TrainingCheckpointError, read_training_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
from test_method_outputs import ANOSEG, CUTPASTE, DRAEM, FAST_SWAP, RIAD, SGSF, SSM, eval_images  # noqa: E402
from tiny_data import SquareDefects, smooth_images  # noqa: E402

# case -> (method, settings, checkpoints written before the kill)
CASES = {
    "draem": ("draem", {**DRAEM, "steps": 5}, 2),
    "draem_epochs": ("draem", {**DRAEM, "epochs": 3, "train_crop": 16, "lr_milestones": (0.5,)}, 3),  # mid-epoch
    "sgsf": ("sgsf", {**SGSF, "steps": 4}, 2),
    "riad": ("riad", {**RIAD, "epochs": 3, "train_crop": 24, "lr_milestones": (0.5,)}, 3),
    "ssm": ("ssm", {**SSM, "steps": 4}, 1),
    "anoseg_segmenter": ("anoseg", {**ANOSEG, "image_score": "gan"}, 2),  # in the first stage
    "anoseg_between": ("anoseg", {**ANOSEG, "image_score": "gan"}, 3),  # the first stage just finished
    "anoseg_detector": ("anoseg", {**ANOSEG, "image_score": "gan", "detector_steps": 3}, 4),  # in the second
    "anoseg_pretrained": ("anoseg", {**ANOSEG, "encoder": "efficientnet_lite0"}, 1),  # frozen weights not saved
    "cutpaste": ("cutpaste", {**CUTPASTE, "steps": 5, "optimizer": "sgd", "lr": 0.01}, 2),
    "cutswap": ("cutswap", {**CUTPASTE, "steps": 4, "forger_options": FAST_SWAP}, 2),
}


class Killed(Exception):
    """Stands for the process being killed."""


def kill_after(monkeypatch, k: int) -> None:
    """Make the training stop right after writing its k-th checkpoint."""
    real, count = Training.save, [0]

    def save(self, *args, **kwargs):
        real(self, *args, **kwargs)
        count[0] += 1
        if count[0] == k:
            raise Killed

    monkeypatch.setattr(Training, "save", save)


def train_data(n: int = 8):
    return smooth_images(n, 32, seed=0)


def trained(name, settings, data, **fit):
    torch.manual_seed(0)
    return create_method(name, **settings).fit(data, progress=False, **fit)


def assert_same(a, b) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    assert getattr(a, "history", None) == getattr(b, "history", None)
    assert getattr(a, "detector_history", None) == getattr(b, "detector_history", None)
    pa, pb = a.predict(eval_images()), b.predict(eval_images())
    assert torch.equal(pa.scores, pb.scores) and torch.equal(pa.maps, pb.maps)


@pytest.mark.parametrize("case", list(CASES))
def test_a_resumed_training_ends_as_an_uninterrupted_one(case, tmp_path, monkeypatch):
    name, settings, k = CASES[case]
    reference = trained(name, settings, train_data())
    path = tmp_path / "training.pt"
    with monkeypatch.context() as patch:
        kill_after(patch, k)
        with pytest.raises(Killed):
            trained(name, settings, train_data(), checkpoint=path, checkpoint_every=0)
    saved = read_training_checkpoint(path)
    assert saved["method"] == name and saved["step"] >= 1
    resumed = trained(name, settings, train_data(), checkpoint=path, checkpoint_every=0)
    assert_same(resumed, reference)
    # the file now holds the finished training: the same call again restores it without a step
    again = trained(name, settings, train_data(), checkpoint=path, checkpoint_every=0)
    assert_same(again, reference)


def test_checkpoints_change_nothing_and_resume_twice(tmp_path, monkeypatch):
    settings = {**RIAD, "steps": 6}
    reference = trained("riad", settings, train_data())
    path = tmp_path / "training.pt"
    assert_same(trained("riad", settings, train_data(), checkpoint=tmp_path / "other.pt", checkpoint_every=0),
                reference)
    for k in (2, 2):  # killed twice, two steps after each start
        with monkeypatch.context() as patch:
            kill_after(patch, k)
            with pytest.raises(Killed):
                trained("riad", settings, train_data(), checkpoint=path, checkpoint_every=0)
    assert read_training_checkpoint(path)["step"] == 4
    assert_same(trained("riad", settings, train_data(), checkpoint=path), reference)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_streamed_dataset_resumes_mid_epoch(workers, tmp_path, monkeypatch):
    """Datasets too large for memory stream through a DataLoader; its batch order resumes too."""
    monkeypatch.setattr(riad_module, "PRELOAD_BYTES", 0)
    settings = {**RIAD, "steps": 7, "num_workers": workers, "batch_size": 3}  # 2 batches per epoch of 8
    data = SquareDefects(train_data())
    reference = trained("riad", settings, data)
    path = tmp_path / "training.pt"
    with monkeypatch.context() as patch:
        kill_after(patch, 3)
        with pytest.raises(Killed):
            trained("riad", settings, data, checkpoint=path, checkpoint_every=0)
    assert_same(trained("riad", settings, data, checkpoint=path, checkpoint_every=0), reference)


def test_a_checkpoint_of_another_training_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "training.pt"
    with monkeypatch.context() as patch:
        kill_after(patch, 1)
        with pytest.raises(Killed):
            trained("draem", DRAEM, train_data(), checkpoint=path, checkpoint_every=0)
    with pytest.raises(TrainingCheckpointError, match="another model.*lr"):
        trained("draem", {**DRAEM, "lr": 1e-2}, train_data(), checkpoint=path)
    with pytest.raises(TrainingCheckpointError, match="data"):
        trained("draem", DRAEM, train_data(6), checkpoint=path)
    with pytest.raises(TrainingCheckpointError, match="method"):
        trained("riad", RIAD, train_data(), checkpoint=path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingCheckpointError, match="training.pt is not a readable"):
        trained("draem", DRAEM, train_data(), checkpoint=path)


def test_the_command_line_resumes_an_interrupted_train(mvtec_root, tmp_path, monkeypatch, capsys):
    """``train`` killed mid-way; the same command resumes, says so, and writes the model an
    uninterrupted ``train`` writes."""
    from anolearn.cli.commands import train

    monkeypatch.setenv("ANOLEARN_PROFILE", "quick")
    settings = {"base_width": 4, "depth": 2, "ks": (2, 4), "steps": 5, "batch_size": 2}
    argv = ["train", "--method", "riad", "--data", f"{mvtec_root}:bottle", "--no-progress"]
    argv += [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
    assert main(argv + ["--out", str(tmp_path / "whole")]) == 0
    capsys.readouterr()

    out = tmp_path / "resumed"
    with monkeypatch.context() as patch:
        kill_after(patch, 2)
        with pytest.raises(Killed):
            train("riad", f"{mvtec_root}:bottle", str(out), overrides=settings, progress=False, checkpoint_every=0)
    assert (out / "training.pt").exists() and not (out / "model.pt").exists()
    assert main(argv + ["--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "resuming the interrupted training" in stdout and "resumed from its checkpoint at step 2 of 5" in stdout
    assert not (out / "training.pt").exists()
    whole, resumed = load_method(tmp_path / "whole" / "model.pt"), load_method(out / "model.pt")
    for key, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_a_method_written_to_the_older_contract_still_trains_from_the_command_line(mvtec_root, tmp_path,
                                                                                    monkeypatch):
    """A reader's own method whose ``fit(train, progress)`` takes no checkpoint trains as before."""
    from anolearn.cli.commands import train
    from anolearn.methods import METHODS, RawPixelBaseline, register

    class OldContract(RawPixelBaseline):
        def fit(self, train, progress=True):
            return super().fit(train, progress)

    monkeypatch.setenv("ANOLEARN_PROFILE", "quick")
    register("old_contract")(OldContract)
    try:
        info = train("old_contract", f"{mvtec_root}:bottle", str(tmp_path / "run"), progress=False)
    finally:
        del METHODS["old_contract"]
    assert info["resumed_from"] is None and (tmp_path / "run" / "model.pt").exists()
