"""ResNet-18 with GroupNorm on flat 3x32x32 rows, and the synthetic images it trains on:
its size, shapes, saving and loading, seeded initialization, and a dataset it can learn."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fabricml.demo.task import initial_model
from fabricml.federation.data import IMAGES32_COUNT, Dataset, sklearn_dataset
from fabricml.federation.synthetic_images import synthetic_images
from fabricml.federation.training import LocalTraining, evaluate, parameters, train
from fabricml.models.mlp import build, load, save
from fabricml.models.resnet import ResNet18

CONFIG = {"type": "resnet18", "side": 32, "channels": 3, "classes": 10}
# ResNet-18's 11,173,962 parameters for 10 classes (GroupNorm's affine weights count as
# BatchNorm's do); the state dict holds nothing else (no running statistics).
PARAMETERS = 11_173_962


def test_resnet18_has_the_standard_size_and_only_trained_parameters() -> None:
    model = build(CONFIG)
    assert isinstance(model, ResNet18)
    assert sum(p.numel() for p in model.parameters()) == PARAMETERS
    assert sum(v.numel() for v in model.state_dict().values()) == PARAMETERS
    assert not list(model.buffers())
    assert model.config() == CONFIG and model.inputs == 3 * 32 * 32
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 1 + 16 + 3  # stem, two per basic block, three projections
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.MaxPool2d)) for m in model.modules())


def test_forward_takes_flat_rows_and_gives_logits_per_row() -> None:
    torch.manual_seed(0)
    model = build(CONFIG).eval()
    with torch.inference_mode():
        out = model(torch.randn(5, 3 * 32 * 32))
    assert out.shape == (5, 10) and bool(torch.isfinite(out).all())
    with pytest.raises(RuntimeError):
        model(torch.randn(2, 3 * 32 * 31))  # not whole images


def test_save_and_load_give_back_the_same_model(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = build(CONFIG)
    directory = save(model, tmp_path / "m")
    assert json.loads((directory / "config.json").read_text()) == CONFIG
    again = load(directory)
    assert isinstance(again, ResNet18)
    for a, b in zip(parameters(model), parameters(again), strict=True):
        assert np.array_equal(a, b)
    x = torch.randn(3, 3 * 32 * 32)
    with torch.inference_mode():
        assert torch.equal(model.eval()(x), again(x))


def test_the_same_seed_gives_the_same_initial_weights_and_another_seed_others() -> None:
    images = sklearn_dataset("images32")
    first, second, other = (parameters(initial_model(images, s)) for s in (7, 7, 8))
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_bad_shapes_are_refused_with_what_is_allowed() -> None:
    with pytest.raises(ValueError, match="side >= 8"):
        ResNet18(side=4)
    with pytest.raises(ValueError, match="allowed: mlp, cnn, resnet18"):
        build({"type": "resnet50"})
    with pytest.raises(ValueError, match="allowed: breast_cancer, digits, images32"):
        sklearn_dataset("cifar10")
    with pytest.raises(ValueError, match="count >= 10"):
        synthetic_images(3, seed=0)


def test_synthetic_images_are_deterministic_balanced_and_seed_dependent() -> None:
    x, y = synthetic_images(200, seed=3)
    again, other = synthetic_images(200, seed=3), synthetic_images(200, seed=4)
    assert x.shape == (200, 3 * 32 * 32) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.array_equal(x, again[0]) and np.array_equal(y, again[1])
    assert not np.array_equal(x, other[0])
    assert np.bincount(y, minlength=10).tolist() == [20] * 10
    demo = sklearn_dataset("images32")
    assert len(demo) == IMAGES32_COUNT and demo.name == "images32"


def test_the_classes_are_learnable_from_the_images() -> None:
    """A linear probe on the images' 2-D spectra (the gratings' orientation and frequency)
    separates the classes far above chance: the labels are in the pixels, not noise."""
    x, y = synthetic_images(400, seed=0)
    images = x.reshape(-1, 3, 32, 32).sum(axis=1)
    spectra = np.abs(np.fft.rfft2(images)).reshape(len(y), -1)
    spectra = (spectra - spectra.mean(axis=0)) / (spectra.std(axis=0) + 1e-6)
    train_x, test_x, train_y, test_y = spectra[:300], spectra[300:], y[:300], y[300:]
    centres = np.stack([train_x[train_y == k].mean(axis=0) for k in range(10)])
    predicted = np.argmin(((test_x[:, None] - centres[None]) ** 2).sum(axis=2), axis=1)
    assert float((predicted == test_y).mean()) > 0.6  # chance: 0.1


def test_one_local_round_on_a_few_images_runs_through_the_agents_training() -> None:
    x, y = synthetic_images(20, seed=0)
    data = Dataset(x, y, "images32-tiny")
    torch.manual_seed(0)
    model = build(CONFIG)
    before = parameters(model)
    report = train(model, data, LocalTraining(epochs=1, batch_size=10, lr=0.01, seed=0), 1, "cpu")
    assert report.samples == 20 and np.isfinite(report.loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, parameters(model), strict=True))
    loss, accuracy = evaluate(model, data)
    assert np.isfinite(loss) and 0.0 <= accuracy <= 1.0
