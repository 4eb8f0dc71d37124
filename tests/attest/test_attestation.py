"""Attested inference on the real network: receipts, anchoring, verification, attacks."""

from __future__ import annotations

import base64
import copy
import json
import signal
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from fabricml.attest.receipts import InferenceReceipt, certificate_digest
from fabricml.gateway import EndorseError, Signer, sha256, sync
from fabricml.gateway.profile import ConnectionProfile
from fabricml.network.network import Network
from tests.attest.conftest import ServiceFactory, http, proof_of, rows
from tests.conftest import fabricml, network_options


def _verify(
    network: Network, bundle: dict[str, object], tmp_path: Path, *extra: str
) -> tuple[int, dict[str, object]]:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    result = fabricml(
        "attest",
        "verify",
        str(path),
        "--json",
        "--org",
        "org3",
        *network_options(network),
        *extra,
        check=False,
    )
    return result.returncode, json.loads(result.stdout)


def _checks(report: dict[str, object]) -> dict[str, bool]:
    return {c["check"]: c["ok"] for c in report["checks"]}  # type: ignore[attr-defined]


def _attestation(network: Network, org: str, identity: str, channel: sync.Channel) -> sync.Contract:
    profile = ConnectionProfile.load(network.layout.profile(network.topology.org(org)))
    ident, signer, hash_ = profile.identity(identity)
    return (
        sync.connect(channel, ident, signer, hash_)
        .get_network(network.topology.channel)
        .get_contract(network.topology.chaincode_name, "Attestation")
    )


def test_every_answer_carries_a_receipt_that_verifies_anywhere(
    network: Network, approved_model: str, start_service: ServiceFactory, tmp_path: Path
) -> None:
    service = start_service(approved_model, "org1", "--anchor-ms", "200")
    status, answer = http("POST", f"{service.url}/v1/predict", {"inputs": rows(3)})
    assert status == 200 and len(answer["outputs"]) == 3
    receipt = answer["receipt"]
    assert receipt["model"] == approved_model and receipt["service"] == {
        "mspId": "Org1MSP",
        "subject": "inference",
    }
    bundle = proof_of(service, receipt["sequence"])
    code, report = _verify(network, bundle, tmp_path)
    assert code == 0 and report["ok"], report
    assert set(_checks(report)) == {
        "certificate", "signature", "certificate chain", "service identity", "inclusion proof",
        "anchored on the ledger",
    }  # fmt: skip
    offline_code, offline = _verify(network, bundle, tmp_path, "--offline")
    assert offline_code == 0 and "anchored on the ledger" not in _checks(offline)


def test_tampered_receipts_and_foreign_keys_fail_verification(
    network: Network, approved_model: str, start_service: ServiceFactory, tmp_path: Path
) -> None:
    service = start_service(approved_model, "org1", "--anchor-ms", "200")
    _, answer = http("POST", f"{service.url}/v1/predict", {"inputs": rows(1)})
    bundle = proof_of(service, answer["receipt"]["sequence"])

    altered = copy.deepcopy(bundle)
    altered["receipt"]["outputDigest"] = "0" * 64
    code, report = _verify(network, altered, tmp_path)
    assert code == 1 and not _checks(report)["signature"] and not _checks(report)["inclusion proof"]

    # Re-signed by org2's inference key: the signature is sound but the chain is not org1's.
    profile2 = ConnectionProfile.load(network.layout.profile(network.topology.org("org2")))
    ident2, signer2, _ = profile2.identity("inference")
    code, report = _verify(network, _resigned(bundle, ident2.credentials, signer2), tmp_path)
    assert code == 1 and _checks(report)["signature"] and not _checks(report)["certificate chain"]

    # Signed by org1's ordinary client, not its inference identity.
    profile1 = ConnectionProfile.load(network.layout.profile(network.topology.org("org1")))
    ident1, signer1, _ = profile1.identity("user1")
    code, report = _verify(network, _resigned(bundle, ident1.credentials, signer1), tmp_path)
    assert code == 1 and _checks(report)["signature"] and not _checks(report)["service identity"]

    # The bundle swaps in another certificate than the one the receipt commits to.
    code, report = _verify(network, {**bundle, "certificate": ident2.credentials.decode()}, tmp_path)
    assert code == 1 and not _checks(report)["certificate"]


def _resigned(bundle: dict[str, Any], certificate: bytes, signer: Signer) -> dict[str, Any]:
    """The bundle's receipt, made to name `certificate` and signed with its key."""
    receipt = {**copy.deepcopy(bundle["receipt"])}
    receipt["certificateDigest"] = certificate_digest(x509.load_pem_x509_certificate(certificate))
    body = InferenceReceipt({k: v for k, v in receipt.items() if k != "signature"}).body()
    receipt["signature"] = base64.b64encode(signer(sha256(body))).decode()
    return {**bundle, "receipt": receipt, "certificate": certificate.decode()}


def test_a_proof_for_the_wrong_root_fails(
    network: Network, approved_model: str, start_service: ServiceFactory, tmp_path: Path
) -> None:
    service = start_service(approved_model, "org1", "--anchor-ms", "200")
    _, first = http("POST", f"{service.url}/v1/predict", {"inputs": rows(1, 0.1)})
    first_bundle = proof_of(service, first["receipt"]["sequence"])
    _, second = http("POST", f"{service.url}/v1/predict", {"inputs": rows(1, 0.9)})
    second_bundle = proof_of(service, second["receipt"]["sequence"])
    assert first_bundle["batch"] != second_bundle["batch"]
    mixed = {**first_bundle, "batch": second_bundle["batch"], "root": second_bundle["root"]}
    code, report = _verify(network, mixed, tmp_path)
    assert (
        code == 1 and not _checks(report)["inclusion proof"] and not _checks(report)["anchored on the ledger"]
    )


def test_the_ledger_refuses_replayed_skipped_and_unauthorised_batches(
    network: Network, approved_model: str
) -> None:
    profile = ConnectionProfile.load(network.layout.profile(network.topology.org("org3")))
    with profile.peer().sync_channel() as channel:
        svc = _attestation(network, "org3", "inference", channel)
        state = json.loads(svc.evaluate_transaction("GetService", "Org3MSP", "inference"))
        seq, last = state["lastSequence"], state["lastReceipt"]
        batch = {
            "model": approved_model,
            "root": "ab" * 32,
            "count": 2,
            "firstReceipt": last + 1,
            "lastReceipt": last + 2,
        }
        svc.submit_transaction("AnchorBatch", json.dumps({**batch, "sequence": seq + 1}))
        nxt = {**batch, "firstReceipt": last + 3, "lastReceipt": last + 4}
        for bad_seq in (seq + 1, seq + 3):  # a replay, then a gap
            with pytest.raises(EndorseError, match="out of order"):
                svc.submit_transaction("AnchorBatch", json.dumps({**nxt, "sequence": bad_seq}))
        with pytest.raises(EndorseError, match="receipt"):
            svc.submit_transaction(
                "AnchorBatch",
                json.dumps({**nxt, "sequence": seq + 2, "firstReceipt": last + 9, "lastReceipt": last + 10}),
            )
        user = _attestation(network, "org3", "user1", channel)
        with pytest.raises(EndorseError, match="role=inference"):
            user.submit_transaction("AnchorBatch", json.dumps({**nxt, "sequence": seq + 2}))
        after = json.loads(svc.evaluate_transaction("GetService", "Org3MSP", "inference"))
        assert (after["lastSequence"], after["lastReceipt"]) == (seq + 1, last + 2)


def test_malformed_and_oversized_requests_get_4xx_never_5xx(
    approved_model: str, start_service: ServiceFactory
) -> None:
    service = start_service(approved_model, "org1")
    cases = [
        (b'{"inputs": ', 422),
        (b'{"inputs": "x"}', 422),
        (b'{"inputs": []}', 422),
        (json.dumps({"inputs": [[1.0, 2.0]]}).encode(), 422),
        (json.dumps({"inputs": rows(1025)}).encode(), 413),
        (b"[" + b"1," * 700_000 + b"1]", 413),
    ]
    for raw, expected in cases:
        status, _ = http("POST", f"{service.url}/v1/predict", raw=raw)
        assert status == expected, (raw[:40], status)
    assert http("GET", f"{service.url}/v1/receipts/999999/proof")[0] == 404
    assert http("GET", f"{service.url}/healthz")[0] == 200


def test_an_unapproved_version_is_never_served(
    network: Network, start_service: ServiceFactory, tmp_path: Path
) -> None:
    from tests.attest.conftest import register_model

    ref = register_model(network, tmp_path, "pending-model", "1.0", 3, ("org1",))
    service = start_service(ref, "org1", wait=False)
    assert service.process.wait(timeout=120) != 0
    assert "may not be deployed" in service.log.read_text()


def test_a_revoked_version_stops_being_served_and_its_receipts_cannot_be_anchored(
    network: Network, start_service: ServiceFactory, tmp_path: Path
) -> None:
    from tests.attest.conftest import register_model

    ref = register_model(network, tmp_path, "to-revoke", "1.0", 4, ("org1", "org2"))
    service = start_service(ref, "org1", "--anchor-ms", "60000", "--anchor-every", "100000")
    assert http("POST", f"{service.url}/v1/predict", {"inputs": rows(1)})[0] == 200
    for org in ("org3", "org2"):  # a majority of the members votes to revoke
        fabricml(
            "model",
            "revoke",
            ref,
            "--reason",
            "bias found",
            "--org",
            org,
            *network_options(network),
        )
    import time

    deadline = time.monotonic() + 30
    while http("GET", f"{service.url}/healthz")[0] != 503 and time.monotonic() < deadline:
        time.sleep(0.2)
    status, body = http("POST", f"{service.url}/v1/predict", {"inputs": rows(1)})
    assert status == 503 and "revoked" in body["detail"]
    service.kill(signal.SIGTERM)  # shutting down tries to anchor the pending receipt...
    profile = ConnectionProfile.load(network.layout.profile(network.topology.org("org1")))
    with profile.peer().sync_channel() as channel:
        state = json.loads(
            _attestation(network, "org1", "auditor", channel).evaluate_transaction(
                "GetService", "Org1MSP", "inference"
            )
        )
        with pytest.raises(EndorseError, match="revoked, not approved for serving"):
            _attestation(network, "org1", "inference", channel).submit_transaction(
                "AnchorBatch",
                json.dumps(
                    {
                        "sequence": state["lastSequence"] + 1,
                        "model": ref,
                        "root": "cd" * 32,
                        "count": 1,
                        "firstReceipt": state["lastReceipt"] + 1,
                        "lastReceipt": state["lastReceipt"] + 1,
                    }
                ),
            )
