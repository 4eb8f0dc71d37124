"""The provenance manifest: how a model version was made, as canonical JSON with its own digest."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from .datasets import DatasetFingerprint
from .digests import canonical_json, sha256_bytes
from .provenance import code_commit, environment
from .weights import WeightsManifest, hash_model

SCHEMA_ID = "fabricml.provenance/v1"
SCHEMA_FILE = Path(__file__).parent / "schema" / "provenance-v1.json"
MAX_MANIFEST_BYTES = 1 << 20


class ManifestError(ValueError):
    """The manifest does not match its schema or its size limit."""


@cache
def schema() -> dict[str, Any]:
    return dict(json.loads(SCHEMA_FILE.read_text()))


@dataclass(frozen=True)
class ProvenanceManifest:
    document: dict[str, Any]
    raw: bytes = field(repr=False)

    @property
    def digest(self) -> str:
        return sha256_bytes(self.raw)

    @property
    def ref(self) -> str:
        return f"{self.document['model']['name']}@{self.document['model']['version']}"

    @property
    def weights(self) -> WeightsManifest:
        return WeightsManifest.from_json(self.document["weights"])

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> ProvenanceManifest:
        validate(document)
        raw = canonical_json(document)
        if len(raw) > MAX_MANIFEST_BYTES:
            raise ManifestError(f"manifest is {len(raw)} bytes; the limit is {MAX_MANIFEST_BYTES}")
        return cls(document, raw)

    @classmethod
    def from_bytes(cls, raw: bytes) -> ProvenanceManifest:
        try:
            document = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"manifest is not JSON: {exc}") from None
        manifest = cls.from_document(document)
        if manifest.raw != raw:
            raise ManifestError("manifest bytes are not canonical JSON (sorted keys, no whitespace)")
        return manifest

    def registration(self) -> dict[str, Any]:
        """The compact on-chain record: hashes and small metadata only."""
        d = self.document
        return {
            "name": d["model"]["name"],
            "version": d["model"]["version"],
            "manifestDigest": self.digest,
            "weights": {"digest": d["weights"]["digest"], "files": len(d["weights"]["files"])},
            "datasets": d["datasets"],
            "code": {k: d["code"][k] for k in ("repository", "commit", "dirty")},
            "parents": d["parents"],
            "round": d["round"],
            "trainingOrgs": d["trainingOrgs"],
            "storageUris": d["storage"],
            "metrics": d["metrics"],
        }


def validate(document: Any) -> None:
    try:
        jsonschema.validate(document, schema())
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise ManifestError(f"manifest field {where}: {exc.message}") from None
    WeightsManifest.from_json(document["weights"])  # the root digest must match the files


def build(
    model_dir: Path,
    name: str,
    version: str,
    training_orgs: list[str],
    datasets: list[DatasetFingerprint] | None = None,
    hyperparameters: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    parents: list[str] | None = None,
    round_ref: str = "",
    storage: list[str] | None = None,
    code_dir: Path | None = None,
    created_at: str | None = None,
) -> ProvenanceManifest:
    """Hash the model directory and record everything else about how it was made."""
    weights = hash_model(model_dir)
    document = {
        "schema": SCHEMA_ID,
        "model": {"name": name, "version": version},
        "weights": weights.to_json(),
        "storage": list(storage or []),
        "datasets": [d.to_json() for d in datasets or []],
        "code": code_commit(code_dir or Path.cwd()),
        "hyperparameters": dict(hyperparameters or {}),
        "environment": environment(),
        "metrics": dict(metrics or {}),
        "parents": list(parents or []),
        "round": round_ref,
        "trainingOrgs": list(training_orgs),
        "createdAt": created_at or datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    return ProvenanceManifest.from_document(document)
