"""The methods contract, evaluation, and the two reference baselines."""
import pytest
import torch

from anolearn.filters import gaussian_blur, mean_filter
from anolearn.methods import (METHODS, FeatureKNN, RawPixelBaseline, create_method, evaluate, load_method,
                              predict_dataset)


def _toy_data(n=6, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, size, size, generator=g) * 0.2 + 0.4
    train = (base + 0.02 * torch.randn(n, 3, size, size, generator=g)).clamp(0, 1)
    return train


class _TestSet(torch.utils.data.Dataset):
    """Two good and two defective images (a bright square) with exact masks."""

    has_masks = True

    def __init__(self, size=32):
        base = _toy_data(4, size, seed=1)
        self.items = []
        for i in range(4):
            image, mask = base[i].clone(), torch.zeros(1, size, size)
            if i >= 2:
                image[:, 8:16, 8:16] = 1.0
                mask[:, 8:16, 8:16] = 1
            self.items.append({"image": image, "mask": mask, "label": int(i >= 2), "defect": "good" if i < 2 else "square",
                               "path": f"{i}.png"})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_registry():
    assert {"raw_pixel", "feature_knn"} <= set(METHODS)
    with pytest.raises(ValueError, match="available"):
        create_method("nope")


@pytest.mark.parametrize("name,kwargs", [("raw_pixel", {}), ("feature_knn", {"layers": (2, 4)})])
def test_fit_predict_shapes_and_detection(name, kwargs):
    method = create_method(name, **kwargs).fit(_toy_data(), progress=False)
    test = _TestSet()
    out = method.predict(torch.stack([s["image"] for s in test.items]))
    assert out.scores.shape == (4,) and out.maps.shape == (4, 32, 32)
    metrics = evaluate(method, test, progress=False)
    assert metrics["image_auroc"] == 1.0  # a bright square on near-constant images is obvious
    assert metrics["pixel_auroc"] > 0.9


@pytest.mark.parametrize("name,kwargs", [("raw_pixel", {"sigma": 1.0}), ("feature_knn", {"layers": (2, 4), "k": 2})])
def test_save_load_round_trip(tmp_path, name, kwargs):
    method = create_method(name, **kwargs).fit(_toy_data(), progress=False)
    path = method.save(tmp_path / "run" / "model.pt")
    again = load_method(path)
    assert type(again) is type(method) and again.config() == method.config()
    x = _toy_data(3, seed=5)
    assert torch.allclose(method.predict(x).maps, again.predict(x).maps)
    # the file holds tensors and plain values only: loadable with weights_only=True
    torch.load(path, weights_only=True)
    assert not list(tmp_path.glob("run/*.tmp"))


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        load_method(bad)


def test_predict_before_fit_is_an_error():
    with pytest.raises(RuntimeError, match="fit"):
        RawPixelBaseline().predict(torch.rand(1, 3, 8, 8))


def test_raw_pixel_mean_image_is_exact():
    train = _toy_data(5)
    method = RawPixelBaseline(sigma=0).fit(train, progress=False)
    assert torch.allclose(method.mean_image, train.mean(0), atol=1e-6)
    out = method.predict(train[:1])
    assert torch.allclose(out.maps[0], ((train[0] - train.mean(0)) ** 2).mean(0), atol=1e-6)


def test_feature_knn_zero_distance_on_training_images():
    train = _toy_data(3)
    method = FeatureKNN(layers=(2, 4), sigma=0).fit(train, progress=False)
    # Every patch has itself in the bank: distance ~0 (up to float32 error of cdist's matmul form),
    # far below the distance of an unrelated image.
    own = method.predict(train[:1]).maps.abs().max()
    other = method.predict(torch.rand(1, 3, 32, 32)).maps.median()
    assert own < 0.02 * other


def test_predict_dataset_keeps_everything_for_figures():
    method = RawPixelBaseline().fit(_toy_data(), progress=False)
    p = predict_dataset(method, _TestSet(), progress=False)
    assert p["maps"].shape == (4, 32, 32) and p["masks"].shape == (4, 32, 32)
    assert p["defects"] == ["good", "good", "square", "square"]


def test_filters():
    x = torch.zeros(1, 21, 21)
    x[0, 10, 10] = 1
    blurred = gaussian_blur(x, 2.0)
    assert torch.isclose(blurred.sum(), torch.tensor(1.0), atol=1e-4) and blurred[0, 10, 10] == blurred.max()
    from scipy.ndimage import gaussian_filter

    ref = gaussian_filter(x[0].numpy().astype("float64"), 2.0, mode="reflect", truncate=4.0)
    # scipy's 'reflect' repeats the edge pixel (torch's 'replicate'-like 'symmetric'); the centre agrees
    assert abs(blurred[0, 10, 10].item() - ref[10, 10]) < 1e-5
    assert torch.isclose(mean_filter(x, 3)[0, 10, 10], torch.tensor(1 / 9))
    with pytest.raises(ValueError, match="odd"):
        mean_filter(x, 4)


def test_config_lists_every_constructor_setting_and_rebuilds_the_method():
    """``config()`` is read from the constructor's signature: every setting, with the value the
    method uses, and building a method from it gives the same settings back."""
    import inspect
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_method_outputs import CASES

    for name, settings in {name: settings for name, settings in CASES.values()}.items():
        method = create_method(name, **settings)
        config = method.config()
        assert list(config) == list(inspect.signature(type(method)).parameters), name
        assert create_method(name, **config).config() == config, name
