"""Dataset fingerprints: a digest, a row count and a schema digest; never the data."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .digests import canonical_json, sha256_bytes, sha256_file


@dataclass(frozen=True)
class DatasetFingerprint:
    name: str
    digest: str
    rows: int
    schema_digest: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "digest": self.digest,
            "rows": self.rows,
            "schemaDigest": self.schema_digest,
        }


def fingerprint_arrays(
    name: str, features: np.ndarray, labels: np.ndarray | None = None
) -> DatasetFingerprint:
    """Records held in memory: the digest covers dtype, shape and bytes of each array."""
    h = hashlib.sha256()
    schema: list[dict[str, Any]] = []
    for part, array in (("features", features), ("labels", labels)):
        if array is None:
            continue
        a = np.ascontiguousarray(array)
        meta = {"part": part, "dtype": a.dtype.str, "shape": list(a.shape)}
        h.update(canonical_json(meta))
        h.update(a.tobytes())
        schema.append({"part": part, "dtype": a.dtype.str, "shape": list(a.shape[1:])})
    return DatasetFingerprint(
        name, h.hexdigest(), int(features.shape[0]), sha256_bytes(canonical_json(schema))
    )


def _csv_shape(path: Path) -> tuple[int, list[str]]:
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        rows = sum(1 for _ in reader)
    return rows, header


def fingerprint_path(path: Path, name: str | None = None) -> DatasetFingerprint:
    """A file or a directory tree: the digest covers every file's path and SHA-256;
    rows and schema come from CSV headers and NumPy arrays where present."""
    root = Path(path)
    if not root.exists():
        raise ValueError(f"dataset {root} does not exist")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    if not files:
        raise ValueError(f"dataset {root} holds no files")
    tree = []
    rows = 0
    schema: list[Any] = []
    for f in files:
        rel = f.name if root.is_file() else f.relative_to(root).as_posix()
        tree.append({"path": rel, "sha256": sha256_file(f)})
        if f.suffix == ".csv":
            n, header = _csv_shape(f)
            rows += n
            schema.append({"path": rel, "columns": header})
        elif f.suffix == ".npy":
            a = np.load(f, mmap_mode="r", allow_pickle=False)
            rows += int(a.shape[0]) if a.ndim else 1
            schema.append({"path": rel, "dtype": a.dtype.str, "shape": list(a.shape[1:])})
    return DatasetFingerprint(
        name or root.stem,
        sha256_bytes(canonical_json(tree)),
        rows,
        sha256_bytes(canonical_json(schema)),
    )
