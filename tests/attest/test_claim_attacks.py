"""A dishonest member gains nothing from receipts and claims (issue 13, finding 7), on the real network."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import pytest

from fabricml.attest import merkle
from fabricml.attest.receipts import InferenceReceipt, ReceiptIssuer, payload_digest
from fabricml.gateway import GatewayError, RefusalCode, is_refusal
from fabricml.gateway.profile import ConnectionProfile
from fabricml.network.network import Network
from tests.attest.conftest import ServiceFactory, contract, http, open_claim, proof_of, rows


def refused(code: RefusalCode, call: Callable[..., object], *args: str) -> None:
    with pytest.raises(GatewayError) as err:
        call(*args)
    assert is_refusal(err.value, code), (code, str(err.value))


def test_a_claim_needs_two_orgs_its_opener_and_its_amount_and_a_receipt_counts_once(
    network: Network, approved_model: str, start_service: ServiceFactory
) -> None:
    model_name = approved_model.split("@")[0]
    digest = payload_digest({"inputs": rows(1, 0.33)})
    profile = ConnectionProfile.load(network.layout.profile(network.topology.org("org1")))
    with profile.peer().sync_channel() as channel:
        org1, org2 = contract(network, "org1", "admin", channel), contract(network, "org2", "admin", channel)
        # k=1 would let the opener's own service settle its own claim.
        refused(
            RefusalCode.INVALID, org1.submit_transaction, "OpenClaim", "solo", digest, model_name, "1", "5.00"
        )
        claim, inputs = open_claim(network, model_name, 2, "1250.00")
        local = claim.split(":", 1)[1]
        # Org2 takes the same id: it is Org2's own claim, Org1's is untouched.
        squat = json.loads(org2.submit_transaction("OpenClaim", local, "0" * 64, model_name, "3", "0.01"))
        assert squat["id"] == f"Org2MSP:{local}"
        before = json.loads(org1.evaluate_transaction("GetClaim", claim))
        assert before["amount"] == "1250.00" and before["inputDigest"] == digest

        s1 = start_service(approved_model, "org1")
        assert http("POST", f"{s1.url}/v1/claims/{claim}", {"inputs": inputs})[1]["claim"]["status"] == "open"
        s2 = start_service(approved_model, "org2")
        status, second = http("POST", f"{s2.url}/v1/claims/{claim}", {"inputs": inputs})
        assert status == 200 and second["claim"]["agreeingOrgs"] == ["Org1MSP", "Org2MSP"]

        # Another org's admin pays out first, with an amount of its choice; the opener
        # tries another amount than the one it opened the claim with.
        refused(RefusalCode.FORBIDDEN, org2.submit_transaction, "ExecutePayout", claim, "0.01")
        refused(RefusalCode.CONFLICT, org1.submit_transaction, "ExecutePayout", claim, "9999.00")
        paid = json.loads(org1.submit_transaction("ExecutePayout", claim, "1250.00"))
        assert paid["amount"] == "1250.00" and paid["executedBy"] == "Org1MSP"

        # Org2's service offers the receipt it answered the first claim with for a second one.
        again, _ = open_claim(network, model_name, 2, "5.00")
        bundle = proof_of(s2, second["receipt"]["sequence"])
        inference2 = contract(network, "org2", "inference", channel)
        refused(
            RefusalCode.CONFLICT,
            inference2.submit_transaction,
            "AttestClaim",
            again,
            json.dumps(bundle["receipt"]),
            str(bundle["batch"]),
            json.dumps(bundle["proof"]),
        )
        assert json.loads(org1.evaluate_transaction("ClaimAttestations", again)) == []


def test_a_receipt_verifies_only_inside_the_batch_of_its_model_and_sequence(
    network: Network, approved_model: str
) -> None:
    profile = ConnectionProfile.load(network.layout.profile(network.topology.org("org3")))
    ident, signer, _ = profile.identity("inference")
    with profile.peer().sync_channel() as channel:
        svc = contract(network, "org3", "inference", channel)
        state = json.loads(svc.evaluate_transaction("GetService", "Org3MSP", "inference"))
        first = state["lastReceipt"] + 1

        issuer = ReceiptIssuer(ident, "inference", signer)

        def receipt(model: str, sequence: int) -> InferenceReceipt:
            return issuer.issue(model, "a" * 64, "e" * 64, "f" * 64, sequence)

        # The attack from the review: org3's service anchors a batch of the approved model
        # whose one leaf is a receipt of an unapproved model, numbered 777 (out of range).
        forged = receipt(f"unapproved-{uuid.uuid4().hex[:6]}@1", 777)
        leaf = forged.leaf()
        request = {"sequence": state["lastSequence"] + 1, "model": approved_model, "root": leaf.hex(),
                   "count": 1, "firstReceipt": first, "lastReceipt": first}  # fmt: skip
        svc.submit_transaction("AnchorBatch", json.dumps(request))
        proof = json.dumps(merkle.prove([leaf], 0).to_json())
        auditor = contract(network, "org3", "auditor", channel)
        verify = auditor.evaluate_transaction
        for bad in (forged, receipt(approved_model, 777)):
            batch_of = str(request["sequence"])
            refused(
                RefusalCode.CONFLICT, verify, "VerifyInclusion", json.dumps(bad.document), batch_of, proof
            )

        # An honest receipt at its own place verifies; moved to another place it does not.
        honest = [receipt(approved_model, first + 1), receipt(approved_model, first + 2)]
        leaves = [r.leaf() for r in honest]
        batch = {**request, "sequence": request["sequence"] + 1, "root": merkle.root(leaves).hex(),
                 "count": 2, "firstReceipt": first + 1, "lastReceipt": first + 2}  # fmt: skip
        svc.submit_transaction("AnchorBatch", json.dumps(batch))
        for i, r in enumerate(honest):
            result = json.loads(verify("VerifyInclusion", json.dumps(r.document), str(batch["sequence"]),
                                       json.dumps(merkle.prove(leaves, i).to_json())))  # fmt: skip
            assert result["included"] is True
        swapped = json.loads(verify("VerifyInclusion", json.dumps(honest[1].document), str(batch["sequence"]),
                                    json.dumps(merkle.prove(leaves, 0).to_json())))  # fmt: skip
        assert swapped["included"] is False


def test_an_orgs_suspension_stops_only_its_own_service(
    network: Network, approved_model: str, start_service: ServiceFactory
) -> None:
    s1, s2 = start_service(approved_model, "org1"), start_service(approved_model, "org2")
    profile = ConnectionProfile.load(network.layout.profile(network.topology.org("org2")))
    with profile.peer().sync_channel() as channel:
        registry = contract(network, "org2", "admin", channel, "Registry")
        registry.submit_transaction("Suspend", approved_model, "our own audit is pending")
        try:
            deadline = time.monotonic() + 30
            while http("GET", f"{s2.url}/healthz")[0] != 503 and time.monotonic() < deadline:
                time.sleep(0.2)
            status, body = http("POST", f"{s2.url}/v1/predict", {"inputs": rows(1)})
            assert status == 503 and "suspended by Org2MSP" in body["detail"]
            assert http("POST", f"{s1.url}/v1/predict", {"inputs": rows(1)})[0] == 200  # org1 serves on
            deployable = json.loads(registry.evaluate_transaction("Deployable", approved_model))
            assert deployable["deployable"] is True and deployable["suspendedBy"] == ["Org2MSP"]
        finally:
            registry.submit_transaction("Resume", approved_model)
        deadline = time.monotonic() + 30
        while http("GET", f"{s2.url}/healthz")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert http("POST", f"{s2.url}/v1/predict", {"inputs": rows(1)})[0] == 200
