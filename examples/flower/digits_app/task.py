"""The task itself, Flower-style: the model, each participant's rows, training and evaluation.
Nothing here knows about the ledger."""

from __future__ import annotations

from pathlib import Path

import torch

from fabricml.federation.data import Dataset, load
from fabricml.federation.training import LocalTraining, evaluate, load_parameters, parameters, train
from fabricml.models.cnn import SmallCNN
from fabricml.registry.datasets import fingerprint_arrays

__all__ = ["evaluate", "load_parameters", "parameters"]


def model() -> SmallCNN:
    """The digits CNN (8x8 images, 10 classes), as prepare.py registers it."""
    return SmallCNN(8, 10, channels=8)


def rows(data_dir: str, partition: int) -> Dataset:
    return load(Path(data_dir) / f"participant-{partition + 1}.npz")


def test_rows(data_dir: str) -> Dataset:
    return load(Path(data_dir) / "test.npz")


def fingerprint(data: Dataset, name: str) -> dict[str, str | int]:
    fp = fingerprint_arrays(name, data.features, data.labels)
    return {"digest": fp.digest, "rows": fp.rows, "schemaDigest": fp.schema_digest}


def fit(net: SmallCNN, data: Dataset, round_: int, epochs: int, batch_size: int, lr: float) -> float:
    """Local training; returns the mean loss."""
    torch.set_num_threads(1)
    torch.manual_seed(round_)
    return train(net, data, LocalTraining(epochs, batch_size, lr), round_, "cpu").loss
