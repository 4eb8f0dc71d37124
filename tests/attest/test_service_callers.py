"""Who may make an org's inference service act (review finding R11), on the real network:
mutual TLS; claims only for the org's own admin, receipts' proofs for members, predict open."""

from __future__ import annotations

import json
import ssl
import urllib.error
import uuid
from pathlib import Path

from fabricml.attest.service_tls import client_context, identity_files
from fabricml.network.network import Network
from tests.attest.conftest import ServiceFactory, http, proof_of, rows
from tests.conftest import fabricml


def _as(network: Network, service_org: str, org: str | None, identity: str = "admin") -> ssl.SSLContext:
    """TLS towards service_org's service as org's identity (None: no certificate at all)."""
    target = network.topology.org(service_org)
    caller = identity_files(network, network.topology.org(org), identity) if org else None
    return client_context(network, target, caller)


def _where(network: Network) -> tuple[str, ...]:
    return "--topology", str(network.topology.source), "--state-dir", str(network.layout.root)


def _claim_answers(network: Network, claim_id: str) -> list[object]:
    out = fabricml("attest", "claim", "show", claim_id, "--org", "org1", "--json", *_where(network)).stdout
    return list(json.loads(out)["attestations"])


def test_only_the_orgs_admin_makes_its_service_attest_a_claim_and_members_read_proofs(
    network: Network, approved_model: str, start_service: ServiceFactory, tmp_path: Path
) -> None:
    inputs = rows(1, 0.42)
    (tmp_path / "claim.json").write_text(json.dumps({"inputs": inputs}))
    opened = fabricml("attest", "claim", "open", f"callers-{uuid.uuid4().hex[:8]}", "--inputs",
                      str(tmp_path / "claim.json"), "--model", approved_model.split("@")[0], "-k", "2",
                      "--amount", "10.00", "--org", "org1", "--json", *_where(network)).stdout  # fmt: skip
    claim_id = str(json.loads(opened)["id"])
    service = start_service(approved_model, "org1")
    claim = f"{service.url}/v1/claims/{claim_id}"
    refused = {
        "no certificate": http("POST", claim, {"inputs": inputs}, context=_as(network, "org1", None))[0],
        "org1 auditor": http(
            "POST", claim, {"inputs": inputs}, context=_as(network, "org1", "org1", "auditor")
        )[0],
        "org1 inference": http(
            "POST", claim, {"inputs": inputs}, context=_as(network, "org1", "org1", "inference")
        )[0],
        "org2 admin": http("POST", claim, {"inputs": inputs}, context=_as(network, "org1", "org2"))[0],
    }
    assert refused == {"no certificate": 401, "org1 auditor": 403, "org1 inference": 403, "org2 admin": 403}
    assert _claim_answers(network, claim_id) == []  # nothing reached the ledger
    # Predict stays open; its receipt's proof is for members only.
    status, answer = http(
        "POST", f"{service.url}/v1/predict", {"inputs": rows(1)}, context=_as(network, "org1", None)
    )
    assert status == 200, answer
    sequence = answer["receipt"]["sequence"]
    proof_of(service, sequence)  # anchored (read as org1's admin)
    proof = f"{service.url}/v1/receipts/{sequence}/proof"
    assert http("GET", proof, context=_as(network, "org1", None))[0] == 401
    assert http("GET", proof, context=_as(network, "org1", "org2", "auditor"))[0] == 200
    # The org's own admin is answered, and its service's vote is on the ledger.
    status, body = http("POST", claim, {"inputs": inputs})
    assert status == 200, body
    assert len(_claim_answers(network, claim_id)) == 1


def test_a_connection_without_any_certificate_still_gets_predictions(
    network: Network, approved_model: str, start_service: ServiceFactory
) -> None:
    service = start_service(approved_model, "org2")
    try:
        status, _ = http(
            "POST", f"{service.url}/v1/predict", {"inputs": rows(2)}, context=_as(network, "org2", None)
        )
    except urllib.error.URLError as exc:  # a TLS failure would be one
        raise AssertionError(f"predict refused a caller without a certificate: {exc}") from exc
    assert status == 200
