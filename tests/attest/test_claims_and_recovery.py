"""k-of-n decisions across organizations' services, and receipts surviving kill -9."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from fabricml.gateway.profile import ConnectionProfile
from fabricml.network.network import Network
from tests.attest.conftest import ServiceFactory, contract, http, open_claim, proof_of, register_model, rows
from tests.conftest import fabricml


def _cli(network: Network, *args: str, check: bool = True) -> tuple[int, str, str]:
    where = ["--topology", str(network.topology.source), "--state-dir", str(network.layout.root)]
    result = fabricml(*args, *where, check=check)
    # The console wraps long messages at any space: compare them as one line.
    return result.returncode, result.stdout, " ".join(result.stderr.split())


def test_a_claim_is_paid_only_when_k_orgs_services_attest_the_same_decision(
    network: Network, approved_model: str, start_service: ServiceFactory, tmp_path: Path
) -> None:
    model_name = approved_model.split("@")[0]
    claim_id, inputs = open_claim(network, model_name, 2)
    assert claim_id.startswith("Org1MSP:")
    s1 = start_service(approved_model, "org1")
    code, _, err = _cli(network, "attest", "claim", "payout", claim_id, "--amount", "1250.00", check=False)
    assert code == 1 and "open" in err
    status, first = http("POST", f"{s1.url}/v1/claims/{claim_id}", {"inputs": inputs})
    assert status == 200 and first["claim"]["status"] == "open"
    s2 = start_service(approved_model, "org2")
    status, second = http("POST", f"{s2.url}/v1/claims/{claim_id}", {"inputs": inputs})
    assert status == 200 and second["claim"]["status"] == "accepted"
    assert second["claim"]["agreeingOrgs"] == ["Org1MSP", "Org2MSP"]
    assert http("POST", f"{s1.url}/v1/claims/{claim_id}", {"inputs": inputs})[0] == 409  # no second vote
    _, out, _ = _cli(network, "attest", "claim", "payout", claim_id, "--amount", "1250.00", "--json")
    assert json.loads(out)["amount"] == "1250.00"
    code, _, err = _cli(network, "attest", "claim", "payout", claim_id, "--amount", "1250.00", check=False)
    assert code == 1 and "already paid" in err


def test_disagreeing_services_leave_the_claim_open_and_unpaid(
    network: Network, approved_model: str, start_service: ServiceFactory, tmp_path: Path
) -> None:
    model_name = approved_model.split("@")[0]
    # A second approved version with other weights stands in for a manipulated oracle.
    other = register_model(network, tmp_path, model_name, "1.1", 99, ("org1", "org2"))
    claim_id, inputs = open_claim(network, model_name, 2, "10.00")
    honest, odd = start_service(approved_model, "org1"), start_service(other, "org3")
    first = http("POST", f"{honest.url}/v1/claims/{claim_id}", {"inputs": inputs})[1]
    second = http("POST", f"{odd.url}/v1/claims/{claim_id}", {"inputs": inputs})[1]
    assert first["receipt"]["outputDigest"] != second["receipt"]["outputDigest"]
    assert second["claim"]["status"] == "open"
    code, _, err = _cli(network, "attest", "claim", "payout", claim_id, "--amount", "10.00", check=False)
    assert code == 1 and "have not yet attested the same decision" in err
    # A claim input that differs from the service's answer is refused outright.
    wrong = http("POST", f"{honest.url}/v1/claims/{claim_id}", {"inputs": rows(1, 0.9)})
    assert wrong[0] == 409


def _service_state(network: Network) -> dict[str, int]:
    profile = ConnectionProfile.load(network.layout.profile(network.topology.org("org2")))
    with profile.peer().sync_channel() as channel:
        auditor = contract(network, "org2", "auditor", channel)
        return dict(json.loads(auditor.evaluate_transaction("GetService", "Org2MSP", "inference")))


def test_receipts_pending_at_kill_9_are_anchored_exactly_once_after_restart(
    network: Network, approved_model: str, start_service: ServiceFactory, tmp_path: Path
) -> None:
    data = tmp_path / "org2-receipts"
    slow = ("--anchor-ms", "600000", "--anchor-every", "1000000")  # nothing anchors before the kill
    service = start_service(approved_model, "org2", *slow, data_dir=data)
    before = _service_state(network)
    sequences = [
        http("POST", f"{service.url}/v1/predict", {"inputs": rows(1, i / 10)})[1]["receipt"]["sequence"]
        for i in range(5)
    ]
    service.kill(signal.SIGKILL)
    assert _service_state(network) == before  # nothing reached the ledger

    restarted = start_service(approved_model, "org2", data_dir=data)
    bundles = [proof_of(restarted, s) for s in sequences]
    after = _service_state(network)
    assert after["lastSequence"] == before["lastSequence"] + 1
    assert after["lastReceipt"] == sequences[-1]
    assert {b["txId"] for b in bundles} == {bundles[0]["txId"]}  # one batch, one transaction

    # Crash right after the anchoring transaction, before the local record was written.
    restarted.kill(signal.SIGKILL)
    lines = (data / "batches.log").read_text().splitlines()
    (data / "batches.log").write_text("\n".join(lines[:-1]) + ("\n" if lines[:-1] else ""))
    again = start_service(approved_model, "org2", data_dir=data)
    assert _service_state(network) == after  # adopted from the ledger, not anchored twice
    assert proof_of(again, sequences[0])["txId"] == bundles[0]["txId"]
    status, answer = http("POST", f"{again.url}/v1/predict", {"inputs": rows(1)})
    assert status == 200 and answer["receipt"]["sequence"] == sequences[-1] + 1
