"""The registry's off-chain pieces: weights digests, manifests, dataset fingerprints, the store."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import model_signing
import numpy as np
import pytest

from fabricml.registry.artifacts import ArtifactError, ArtifactStore
from fabricml.registry.datasets import fingerprint_arrays, fingerprint_path
from fabricml.registry.digests import canonical_json
from fabricml.registry.manifest import ManifestError, ProvenanceManifest, build
from fabricml.registry.provenance import code_commit
from fabricml.registry.weights import hash_model


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    d = tmp_path / "model"
    (d / "sub").mkdir(parents=True)
    (d / "w.bin").write_bytes(os.urandom(1000))
    (d / "sub" / "config.json").write_text("{}")
    (d / "B.txt").write_text("capital letters sort first")
    return d


def test_weights_digests_agree_with_openssf_model_signing(model_dir: Path) -> None:
    ours = hash_model(model_dir)
    theirs = {
        r.identifier: r.digest.digest_hex
        for r in model_signing.hashing.hash(model_dir).resource_descriptors()
    }
    assert {f.name: f.digest for f in ours.files} == theirs
    assert [f.name for f in ours.files] == ["B.txt", "sub/config.json", "w.bin"]


def test_weights_refuse_symlinks_and_empty_folders(tmp_path: Path, model_dir: Path) -> None:
    (model_dir / "link").symlink_to(model_dir / "w.bin")
    with pytest.raises(ValueError, match="symbolic link"):
        hash_model(model_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no files"):
        hash_model(tmp_path / "empty")


def _manifest(model_dir: Path) -> ProvenanceManifest:
    return build(model_dir, "credit-risk", "1.0", ["Org1MSP"], created_at="2026-01-01T00:00:00+00:00")


def test_a_manifest_round_trips_through_canonical_bytes(model_dir: Path) -> None:
    m = _manifest(model_dir)
    again = ProvenanceManifest.from_bytes(m.raw)
    assert again.digest == m.digest and again.ref == "credit-risk@1.0"
    pretty = json.dumps(m.document, indent=2).encode()
    with pytest.raises(ManifestError, match="not canonical"):
        ProvenanceManifest.from_bytes(pretty)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["model"].update(version="has space"), "model/version"),
        (lambda d: d.update(surprise=1), "Additional properties"),
        (lambda d: d["weights"].update(digest="0" * 64), "weights.digest does not match its files"),
        (lambda d: d["datasets"].append({"name": "x", "digest": "x", "rows": 1, "schemaDigest": "0" * 64}),
         "datasets/0/digest"),
        (lambda d: d.update(storage=["http://elsewhere/model"]), "storage/0"),
        (lambda d: d.update(storage=["file:///home/me/.fabricml/artifacts"]), "storage/0"),
        (lambda d: d["metrics"].update(accuracy="high"), "metrics/accuracy"),
    ],
)  # fmt: skip
def test_an_invalid_manifest_names_the_field(model_dir: Path, change: object, message: str) -> None:
    document = json.loads(_manifest(model_dir).raw)
    assert callable(change)
    change(document)
    with pytest.raises((ManifestError, ValueError)) as err:
        ProvenanceManifest.from_document(document)
    assert message in str(err.value)


def test_an_oversized_manifest_is_refused(model_dir: Path) -> None:
    document = json.loads(_manifest(model_dir).raw)
    document["hyperparameters"] = {"notes": "x" * (1 << 20)}
    with pytest.raises(ManifestError, match="the limit is"):
        ProvenanceManifest.from_document(document)


def test_canonical_json_is_stable_and_refuses_nan() -> None:
    assert canonical_json({"b": 1, "a": [1.5, "é"]}) == '{"a":[1.5,"é"],"b":1}'.encode()
    with pytest.raises(ValueError):
        canonical_json({"loss": float("nan")})


def test_dataset_fingerprints_change_with_the_data_but_the_schema_digest_does_not() -> None:
    x = np.arange(20, dtype=np.float64).reshape(10, 2)
    y = np.zeros(10, dtype=np.int64)
    a, b = fingerprint_arrays("d", x, y), fingerprint_arrays("d", x.copy(), y.copy())
    assert a == b and a.rows == 10
    x2 = x.copy()
    x2[3, 1] += 1
    c = fingerprint_arrays("d", x2, y)
    assert c.digest != a.digest and c.schema_digest == a.schema_digest


def test_file_tree_fingerprints_count_csv_and_numpy_rows(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "part1.csv").write_text("a,b\n1,2\n3,4\n")
    np.save(tmp_path / "d" / "part2.npy", np.ones((5, 3)))
    fp = fingerprint_path(tmp_path / "d")
    assert fp.rows == 7 and fp.name == "d"
    (tmp_path / "d" / "part1.csv").write_text("a,b\n1,2\n3,5\n")
    assert fingerprint_path(tmp_path / "d").digest != fp.digest


def test_the_store_returns_only_bytes_that_match_their_digest(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    digest = store.put_bytes(b"weights")
    assert store.get(digest) == b"weights" and store.verify(digest)
    store.path(digest).write_bytes(b"tampered")
    assert not store.verify(digest)
    with pytest.raises(ArtifactError, match="corrupt"):
        store.get(digest)
    with pytest.raises(ValueError, match="64 lowercase hex"):
        store.path("../../etc/passwd")
    with pytest.raises(ArtifactError, match="not in the artifact store"):
        store.get("0" * 64)


def _repo_with_origin(path: Path, origin: str | None) -> Path:
    path.mkdir()
    git = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    (path / "train.py").write_text("print('train')\n")
    subprocess.run([*git, "add", "train.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "train"], check=True)
    if origin is not None:
        subprocess.run([*git, "remote", "add", "origin", origin], check=True)
    return path


@pytest.mark.parametrize(
    "origin", ["https://github.com/acme/credit-model.git", "git@github.com:acme/credit-model.git"]
)
def test_a_repository_url_is_recorded(tmp_path: Path, origin: str) -> None:
    code = code_commit(_repo_with_origin(tmp_path / "repo", origin))
    assert code["repository"] == origin and len(code["commit"]) == 40
    assert "repositoryNote" not in code


@pytest.mark.parametrize(("origin", "why"), [("/srv/checkouts/model", "local path"), (None, "no origin")])
def test_a_local_origin_is_not_recorded_and_the_manifest_says_why(
    tmp_path: Path, origin: str | None, why: str
) -> None:
    code = code_commit(_repo_with_origin(tmp_path / "repo", origin))
    assert code["repository"] == "" and len(code["commit"]) == 40
    assert why in code["repositoryNote"]
