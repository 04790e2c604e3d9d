import pytest
import torch

from anolearn import describe_device, get_device, get_profile, make_generator, seed_everything
from anolearn.config import PROFILES


def test_default_profile_is_quick(monkeypatch):
    monkeypatch.delenv("ANOLEARN_PROFILE", raising=False)
    assert get_profile().name == "quick"


def test_env_switch_selects_full(monkeypatch):
    monkeypatch.setenv("ANOLEARN_PROFILE", "full")
    p = get_profile()
    assert p.name == "full" and p.image_size == 256
    # the full profile meets the dataset sizes the book promises
    assert p.n_train >= 200 and p.n_test_good + p.n_test_defect >= 100 and p.n_test_good >= 30


def test_unknown_profile_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("ANOLEARN_PROFILE", "fast")
    with pytest.raises(ValueError, match="quick, standard, full"):
        get_profile()


def test_overrides_and_schedule_copy():
    p = get_profile("quick", image_size=64)
    assert p.image_size == 64 and PROFILES["quick"].image_size != 64
    s = p.schedule("feature_knn")
    s["k"] = 99
    assert p.schedule("feature_knn")["k"] != 99  # a copy, the profile is not mutated
    assert p.schedule("no_such_method") == {}


def test_device_cpu_and_description(monkeypatch):
    monkeypatch.setenv("ANOLEARN_DEVICE", "cpu")
    assert get_device().type == "cpu"
    assert describe_device(torch.device("cpu")).startswith("cpu")


def test_device_unavailable_is_an_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        get_device("cuda")


def test_seed_everything_makes_reruns_identical():
    seed_everything(3)
    a = torch.randn(5), torch.nn.Linear(4, 2).weight.detach().clone()
    seed_everything(3)
    b = torch.randn(5), torch.nn.Linear(4, 2).weight.detach().clone()
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    g1, g2 = make_generator(7), make_generator(7)
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))


def test_dataset_switch(monkeypatch):
    monkeypatch.delenv("ANOLEARN_DATASET", raising=False)
    assert get_profile().dataset == "synthetic"
    monkeypatch.setenv("ANOLEARN_DATASET", "mvtec_ad")
    assert get_profile("full").dataset == "mvtec_ad"
