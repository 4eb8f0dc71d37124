"""An organization's private training data: loaders for CSV, Parquet and NumPy files, a
loader interface for anything else, and the demo's splits of scikit-learn datasets.

Data never leaves the org: only its fingerprint (digest, rows, schema digest) does."""

from __future__ import annotations

import csv
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fabricml.registry.datasets import DatasetFingerprint, fingerprint_arrays

from .synthetic_images import synthetic_images


@dataclass(frozen=True)
class Dataset:
    """Float32 features (rows x features) and int64 class labels."""

    features: np.ndarray
    labels: np.ndarray
    name: str = "dataset"

    def __post_init__(self) -> None:
        if self.features.ndim != 2 or self.labels.ndim != 1 or len(self.features) != len(self.labels):
            raise ValueError(
                f"dataset {self.name}: features must be rows x columns and labels one per row, "
                f"got {self.features.shape} and {self.labels.shape}"
            )
        if len(self.labels) == 0:
            raise ValueError(f"dataset {self.name} has no rows")
        if not np.all(np.isfinite(self.features)):
            raise ValueError(f"dataset {self.name} has NaN or infinite features")

    def __len__(self) -> int:
        return len(self.labels)

    def fingerprint(self) -> DatasetFingerprint:
        return fingerprint_arrays(self.name, self.features, self.labels)

    def take(self, index: np.ndarray, name: str | None = None) -> Dataset:
        return Dataset(self.features[index], self.labels[index], name or self.name)

    def split(self, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
        """A reproducible (train, held-out) split."""
        order = np.random.default_rng(seed).permutation(len(self))
        cut = max(1, min(len(self) - 1, round(len(self) * (1 - fraction))))
        return self.take(order[:cut], f"{self.name}-train"), self.take(order[cut:], f"{self.name}-heldout")


Loader = Callable[[Path, str], Dataset]


def _arrays(name: str, features: np.ndarray, labels: np.ndarray) -> Dataset:
    return Dataset(np.asarray(features, dtype=np.float32), np.asarray(labels).astype(np.int64), name)


def load_csv(path: Path, label: str) -> Dataset:
    """A CSV file with a header; `label` names the class column, every other column is a feature."""
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header or label not in header:
            raise ValueError(f"{path}: label column {label!r} not found; columns are {header}")
        rows = [row for row in reader if row]
    col = header.index(label)
    try:
        table = np.array(rows, dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"{path}: every value must be numeric ({exc})") from None
    return _arrays(path.stem, np.delete(table, col, axis=1), table[:, col])


def load_parquet(path: Path, label: str) -> Dataset:
    import pyarrow.parquet as pq  # only for Parquet users

    table = pq.read_table(path)
    if label not in table.column_names:
        raise ValueError(f"{path}: label column {label!r} not found; columns are {table.column_names}")
    features = [
        np.asarray(table.column(c).to_numpy(), dtype=np.float64) for c in table.column_names if c != label
    ]
    return _arrays(path.stem, np.stack(features, axis=1), table.column(label).to_numpy())


def load_npz(path: Path, label: str) -> Dataset:
    """A .npz archive with a `features` (or `x`) array and a label array (`label`, or `y`)."""
    with np.load(path, allow_pickle=False) as z:
        x = z["features"] if "features" in z else z.get("x")
        y = z[label] if label in z else z.get("y")
        if x is None or y is None:
            raise ValueError(
                f"{path}: needs arrays 'features' (or 'x') and {label!r} (or 'y'); has {list(z)}"
            )
        return _arrays(path.stem, x, y)


LOADERS: dict[str, Loader] = {".csv": load_csv, ".parquet": load_parquet, ".npz": load_npz}


def load(path: Path, label: str = "label", loader: str | None = None) -> Dataset:
    """Load an org's data by file suffix, or with `loader` = "package.module:function", a
    callable taking (path, label) and returning a Dataset."""
    if loader:
        module, _, attr = loader.partition(":")
        fn: Loader = getattr(importlib.import_module(module), attr)
        return fn(path, label)
    if not path.exists():
        raise ValueError(f"dataset {path} does not exist")
    try:
        return LOADERS[path.suffix](path, label)
    except KeyError:
        raise ValueError(f"{path}: unknown data format {path.suffix!r}; allowed: {sorted(LOADERS)}") from None


# ---- the demo's data ------------------------------------------------------------------


IMAGES32_COUNT = 1600  # the demo splits off 25% to test: 3 participants get 400 images each
DEMO_DATASETS = ("breast_cancer", "digits", "images32")


def sklearn_dataset(name: str) -> Dataset:
    """The demo's datasets: breast_cancer (standardized tabular, 2 classes), digits (8x8
    images in [0, 1], 10 classes), both scikit-learn's, or images32 (1600 synthetic 3x32x32
    images, 10 classes, fabricml.federation.synthetic_images with seed 0: fixed, like digits)."""
    from sklearn import datasets

    if name == "images32":
        return _arrays(name, *synthetic_images(IMAGES32_COUNT, seed=0))
    if name == "breast_cancer":
        x, y = datasets.load_breast_cancer(return_X_y=True)
        x = (x - x.mean(axis=0)) / x.std(axis=0)
    elif name == "digits":
        x, y = datasets.load_digits(return_X_y=True)
        x = x / 16.0
    else:
        raise ValueError(f"unknown demo dataset {name!r}; allowed: {', '.join(DEMO_DATASETS)}")
    return _arrays(name, x, y)


def split_iid(data: Dataset, parts: int, seed: int) -> list[Dataset]:
    order = np.random.default_rng(seed).permutation(len(data))
    return [
        data.take(np.sort(ix), f"{data.name}-{i + 1}") for i, ix in enumerate(np.array_split(order, parts))
    ]


def split_dirichlet(data: Dataset, parts: int, alpha: float, seed: int, min_rows: int = 10) -> list[Dataset]:
    """Non-IID: each class's rows are shared out in Dirichlet(alpha) proportions; smaller
    alpha means more skew. Redrawn until every part has min_rows rows."""
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        shares: list[list[int]] = [[] for _ in range(parts)]
        for cls in np.unique(data.labels):
            rows = rng.permutation(np.flatnonzero(data.labels == cls))
            cuts = (np.cumsum(rng.dirichlet([alpha] * parts)) * len(rows)).astype(int)[:-1]
            for i, chunk in enumerate(np.split(rows, cuts)):
                shares[i].extend(chunk.tolist())
        if min(len(s) for s in shares) >= min_rows:
            return [data.take(np.sort(np.array(s)), f"{data.name}-{i + 1}") for i, s in enumerate(shares)]
    raise ValueError(f"no Dirichlet({alpha}) split gives {parts} parts of {min_rows}+ rows")


def save_npz(data: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, features=data.features, label=data.labels)
    return path
