"""The model registry on the real network: provenance, approval, lineage, verification."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fabricml.contracts.registry import ModelVersion, RegistrationRequest
from fabricml.gateway import EndorseError, EvaluateError, GatewayError, RefusalCode, is_refusal
from fabricml.gateway.profile import ConnectionProfile
from fabricml.network.network import Network
from fabricml.registry.artifacts import ArtifactError
from fabricml.registry.connect import member_stores
from fabricml.registry.datasets import fingerprint_arrays
from fabricml.registry.service import ModelRegistration, ModelVerificationError
from tests.registry.conftest import RegistryFactory, unique


def _name_version(ref: str) -> tuple[str, str]:
    name, version = ref.split("@")
    return name, version


def test_registration_records_provenance_with_the_callers_org_from_its_certificate(
    registry: RegistryFactory, model_dir: Path
) -> None:
    reg = registry("org1", "trainer")
    name = unique("credit-risk")
    features = np.arange(12, dtype=np.float32).reshape(4, 3)
    data = fingerprint_arrays("claims-2025", features, np.array([0, 1, 0, 1]))
    record = reg.register(
        model_dir, ModelRegistration(name, "1.0", ["Org1MSP"], [data], {"lr": 0.01}, {"accuracy": 0.93})
    )
    assert record.registered_by.msp_id == "Org1MSP" and record.registered_by.subject == "trainer"
    assert record.status == "registered" and record.approvals == ()
    assert [d.to_json() for d in record.datasets] == [data.to_json()] and data.rows == 4
    manifest = reg.manifest(f"{name}@1.0")
    assert manifest.digest == record.manifest_digest
    assert manifest.document["hyperparameters"] == {"lr": 0.01}
    assert manifest.document["environment"]["python"].startswith("3.")
    assert len(manifest.document["code"]["commit"]) == 40  # the repository's HEAD, read from git
    assert {f.name for f in manifest.weights.files} == {
        "model.safetensors",
        "config.json",
        "tokenizer/vocab.txt",
    }


def test_storage_uris_name_the_artifact_server_other_members_fetch_from(
    network: Network, registry: RegistryFactory, model_dir: Path
) -> None:
    what = ModelRegistration(unique("where"), "1", ["Org1MSP"])
    record = registry("org1", "trainer").register(model_dir, what)
    org1 = network.topology.org("org1")
    assert record.storage_uris == (f"https://127.0.0.1:{org1.artifacts_port}/v1/blobs/",)
    # A member resolves the manifest (and every weights file) by digest under that URL.
    profile = ConnectionProfile.load(network.layout.profile(network.topology.org("org2")))
    store = next(s for s in member_stores(profile, "trainer") if s.port == org1.artifacts_port)
    manifest = store.get(record.manifest_digest)
    assert json.loads(manifest)["model"]["name"] == record.name


def test_a_majority_of_org_admins_makes_a_version_deployable(
    registry: RegistryFactory, model_dir: Path
) -> None:
    ref = f"{unique()}@1"
    registry("org1").register(model_dir, ModelRegistration(*_name_version(ref), ["Org1MSP"]))
    after_one = registry("org1", "admin").approve(ref)
    assert after_one.status == "registered" and not registry("org3", "auditor").deployable(ref).deployable
    after_two = registry("org2", "admin").approve(ref)
    assert after_two.status == "approved"
    assert [a.msp_id for a in after_two.approvals] == ["Org1MSP", "Org2MSP"]
    assert all(len(a.tx_id) == 64 for a in after_two.approvals)
    d = registry("org3", "auditor").deployable(ref)
    assert (d.deployable, d.approvals, d.required, d.rule) == (True, 2, 2, "MAJORITY")


def _unchanged(registry: RegistryFactory, ref: str, before: ModelVersion) -> None:
    assert registry("org3", "auditor").get(ref) == before


def test_bad_approvals_are_refused_and_change_nothing(registry: RegistryFactory, model_dir: Path) -> None:
    ref = f"{unique()}@1"
    registry("org1").register(model_dir, ModelRegistration(*_name_version(ref), ["Org1MSP"]))
    registry("org1", "admin").approve(ref)
    before = registry("org3", "auditor").get(ref)
    with pytest.raises(EndorseError, match="needs an org admin"):
        registry("org2", "trainer").approve(ref)
    assert registry("org1", "admin").approve(ref) == before  # approving again is a no-op
    _unchanged(registry, ref, before)
    registry("org3", "admin").revoke(ref, "training data licence withdrawn")
    registry("org2", "admin").revoke(ref, "licence withdrawn, confirmed")  # a majority of members
    revoked = registry("org3", "auditor").get(ref)
    with pytest.raises(EndorseError, match="revoked and cannot be approved"):
        registry("org2", "admin").approve(ref)
    _unchanged(registry, ref, revoked)
    assert [v.msp_id for v in revoked.revocation_votes] == ["Org3MSP", "Org2MSP"]
    assert revoked.revocation is not None
    assert revoked.revocation.reason == "licence withdrawn, confirmed"
    assert revoked.revocation.msp_id == "Org2MSP"


def test_bad_registrations_are_refused_with_a_clear_error_and_store_nothing(
    registry: RegistryFactory, model_dir: Path
) -> None:
    reg = registry("org1")
    name = unique()
    reg.register(model_dir, ModelRegistration(name, "1", ["Org1MSP"]))
    good = reg.get(f"{name}@1")
    fields = ("name", "version", "manifestDigest", "weights", "datasets", "code", "parents", "round")
    request = {k: good.to_json()[k] for k in (*fields, "trainingOrgs", "storageUris", "metrics")}
    cases = {
        "already registered": request,
        "manifestDigest must be 64 lowercase hex": {**request, "version": "2", "manifestDigest": "abc"},
        "parent: model reference": {**request, "version": "3", "parents": ["no version"]},
        f"model {name}@0 is not registered": {**request, "version": "4", "parents": [f"{name}@0"]},
        "the limit is 4096": {
            **request,
            "version": "5",
            "code": {**request["code"], "repository": "r" * 5000},
        },
        "must include the caller's organization Org1MSP": {
            **request,
            "version": "6",
            "trainingOrgs": ["Org2MSP"],
        },
        "unknown field": {**request, "version": "7", "registeredBy": {"mspId": "Org2MSP"}},
    }
    codes = dict.fromkeys(cases, RefusalCode.INVALID) | {
        "already registered": RefusalCode.ALREADY_DONE,
        f"model {name}@0 is not registered": RefusalCode.NOT_FOUND,
        "must include the caller's organization Org1MSP": RefusalCode.FORBIDDEN,
    }
    for message, bad in cases.items():
        with pytest.raises(EndorseError) as err:
            reg.ledger.register(RegistrationRequest.from_json(bad))
        assert message in str(err.value), (message, str(err.value))
        assert is_refusal(err.value, codes[message]), (codes[message], str(err.value))
    page = reg.list_versions(name, 50, "")
    assert [m.version for m in page.models] == ["1"]
    assert reg.get(f"{name}@1") == good


def test_a_client_without_the_trainer_role_cannot_register(
    registry: RegistryFactory, model_dir: Path
) -> None:
    name = unique()
    with pytest.raises(EndorseError, match="role=trainer"):
        registry("org1", "user1").register(model_dir, ModelRegistration(name, "1", ["Org1MSP"]))
    with pytest.raises(EvaluateError, match="not registered"):
        registry("org1", "auditor").get(f"{name}@1")


def test_confidential_provenance_is_private_to_the_registering_org(
    registry: RegistryFactory, model_dir: Path
) -> None:
    ref = f"{unique()}@1"
    secret = {"dataset": "claims from the oncology ward", "contact": "dpo@hospital-a.example"}
    record = registry("org1").register(
        model_dir, ModelRegistration(*_name_version(ref), ["Org1MSP"], confidential=secret)
    )
    assert len(record.confidential_digest) == 64
    assert "oncology" not in json.dumps(registry("org2", "auditor").get(ref).to_json())
    assert registry("org1", "auditor").confidential(ref) == secret
    # Org2's peer holds only the hash of the private data, and Org2 was granted nothing.
    with pytest.raises(GatewayError) as err:
        registry("org2", "auditor").confidential(ref)
    assert is_refusal(err.value, RefusalCode.FORBIDDEN), str(err.value)


def test_lineage_walks_parents_rounds_and_datasets(registry: RegistryFactory, model_dir: Path) -> None:
    reg = registry("org1")
    name = unique("lineage")
    data = fingerprint_arrays("base-data", np.ones((3, 2)))
    reg.register(model_dir, ModelRegistration(name, "1", ["Org1MSP"], [data]))
    reg.register(model_dir, ModelRegistration(name, "2", ["Org1MSP"], parents=[f"{name}@1"]))
    reg.register(model_dir, ModelRegistration(name, "3", ["Org1MSP"], parents=[f"{name}@2"]))
    lineage = registry("org2", "auditor").lineage(f"{name}@3")
    assert [v.ref for v in lineage.versions] == [
        f"{name}@3",
        f"{name}@2",
        f"{name}@1",
    ]
    assert [(e.child, e.parent) for e in lineage.edges] == [
        (f"{name}@3", f"{name}@2"),
        (f"{name}@2", f"{name}@1"),
    ]
    assert lineage.rounds == {}  # round models: tests/registry/test_registry_governance.py
    assert lineage.datasets[f"{name}@1"][0].digest == data.digest


def test_list_pages_and_history_records_every_change(registry: RegistryFactory, model_dir: Path) -> None:
    reg = registry("org1")
    name = unique("paged")
    for v in ("1", "2", "3"):
        reg.register(model_dir, ModelRegistration(name, v, ["Org1MSP"]))
    first = registry("org2", "auditor").list_versions(name, 2, "")
    second = registry("org2", "auditor").list_versions(name, 2, first.bookmark)
    assert [m.version for m in first.models + second.models] == ["1", "2", "3"]
    registry("org1", "admin").approve(f"{name}@1")
    registry("org1", "admin").deprecate(f"{name}@1", "superseded by 3")
    history = registry("org3", "auditor").history(f"{name}@1")
    assert [h.record.status if h.record else "" for h in history] == [
        "registered",
        "registered",
        "deprecated",
    ]
    assert len({h.tx_id for h in history}) == 3


def test_verify_names_the_file_that_differs(
    registry: RegistryFactory, model_dir: Path, tmp_path: Path
) -> None:
    ref = f"{unique()}@1"
    registry("org1").register(model_dir, ModelRegistration(*_name_version(ref), ["Org1MSP"]))
    auditor = registry("org3", "auditor")  # fetches the manifest from org1's store over mutual TLS
    assert auditor.verify_dir(ref, model_dir) == []
    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    (copy / "tokenizer" / "vocab.txt").write_text("a\nb\nc\n")
    (copy / "extra.bin").write_bytes(b"x")
    problems = auditor.verify_dir(ref, copy)
    assert any(p.startswith("tokenizer/vocab.txt: sha256") for p in problems)
    assert "extra.bin: present here but not registered" in problems


def test_loading_refuses_unapproved_versions_and_tampered_bytes(
    network: Network, registry: RegistryFactory, model_dir: Path, tmp_path: Path
) -> None:
    ref = f"{unique()}@1"
    registry("org1").register(model_dir, ModelRegistration(*_name_version(ref), ["Org1MSP"]))
    with pytest.raises(ModelVerificationError, match="may not be deployed: status registered, 0 of 2"):
        registry("org2", "auditor").load(ref, tmp_path / "denied")
    registry("org1", "admin").approve(ref)
    registry("org2", "admin").approve(ref)
    loaded = registry("org2", "auditor").load(ref, tmp_path / "org2")  # over mutual TLS from org1
    assert (loaded / "model.safetensors").read_bytes() == (model_dir / "model.safetensors").read_bytes()

    # Someone with access to org1's disk alters the stored weights.
    org1_auditor = registry("org1", "auditor")
    digest = org1_auditor.manifest(ref).weights.files[0].digest
    blob = org1_auditor.store.path(digest)
    blob.write_bytes(b"tampered" + blob.read_bytes()[8:])
    with pytest.raises(ArtifactError, match="corrupt"):
        org1_auditor.load(ref, tmp_path / "org1")
    # org1's server will not serve the altered bytes to anyone...
    org3_auditor = registry("org3", "auditor")
    (from_org1,) = [c for c in org3_auditor.remotes if c.port == network.topology.org("org1").artifacts_port]
    with pytest.raises(ArtifactError, match="answered 404"):
        from_org1.get(digest)
    # ...while the verified copy org2 fetched still serves org3, checked against the ledger.
    loaded3 = org3_auditor.load(ref, tmp_path / "org3")
    assert (loaded3 / "model.safetensors").read_bytes() == (model_dir / "model.safetensors").read_bytes()
