"""The three-organization Raft consortium, driven with Fabric's own peer CLI."""

from __future__ import annotations

import json

import pytest

from fabricml.gateway import GatewayError, RefusalCode, is_refusal
from fabricml.network.network import Network
from fabricml.network.processes import wait_until
from tests.conftest import fabricml, network_options


def _heights(network: Network) -> dict[str, int | None]:
    return {org.name: network.peer_height(org) for org in network.topology.organizations}


def test_a_transaction_submitted_through_org2_is_readable_through_org3(network: Network) -> None:
    org2, org3 = network.topology.org("org2"), network.topology.org("org3")
    network.invoke(org2, "Consortium:Join", "Org Two Hospital")
    member = json.loads(network.query(org3, "Consortium:GetMember", org2.msp_id))
    assert member["mspId"] == "Org2MSP"
    assert member["displayName"] == "Org Two Hospital"


def test_bring_up_recorded_every_org_as_a_member(network: Network) -> None:
    members = json.loads(network.query(network.topology.org("org1"), "Consortium:ListMembers"))
    assert sorted(m["mspId"] for m in members) == ["Org1MSP", "Org2MSP", "Org3MSP"]


def test_status_reports_every_node_healthy_with_heights_and_the_committed_chaincode(network: Network) -> None:
    out = fabricml(
        "network",
        "status",
        "--json",
        *network_options(network),
    )
    statuses = json.loads(out.stdout)
    kinds = {"ca", "orderer", "peer", "chaincode", "revocations", "artifacts", "api"}
    assert {s["kind"] for s in statuses} == kinds
    assert len(statuses) == 21
    assert all(s["running"] and s["healthy"] for s in statuses), statuses
    peers = [s for s in statuses if s["kind"] == "peer"]
    assert all(s["height"] and s["height"] >= 5 for s in peers)
    assert all(
        s["extra"]["chaincode"].endswith("(sequence 1)") or "sequence" in s["extra"]["chaincode"]
        for s in peers
    )


def test_up_on_a_running_network_is_a_no_op_with_a_message(network: Network) -> None:
    before = network.processes.records()
    out = fabricml(
        "network", "up", "--topology", str(network.topology.source), "--state-dir", str(network.layout.root)
    )
    assert "already up" in out.stderr
    assert network.processes.records() == before


def test_service_identities_carry_their_role_attribute_for_chaincode(network: Network) -> None:
    org1 = network.topology.org("org1")
    for identity, role in (("trainer", "trainer"), ("inference", "inference"), ("auditor", "auditor")):
        who = json.loads(network.query(org1, "Consortium:WhoAmI", identity=identity))
        assert who == {"mspId": "Org1MSP", "subject": identity, "nodeRole": "client", "role": role}
    admin = json.loads(network.query(org1, "Consortium:WhoAmI"))
    assert admin["nodeRole"] == "admin" and admin["role"] == ""


def test_a_client_identity_cannot_join_on_behalf_of_its_org(network: Network) -> None:
    org1 = network.topology.org("org1")
    with pytest.raises(GatewayError) as refused:
        network.invoke(org1, "Consortium:Join", "Hijacked", identity="user1")
    assert is_refusal(refused.value, RefusalCode.FORBIDDEN), refused.value
    member = json.loads(network.query(org1, "Consortium:GetMember", "Org1MSP"))
    assert member["displayName"] != "Hijacked"


def test_the_channel_keeps_committing_with_one_raft_orderer_stopped(network: Network) -> None:
    stopped = network.topology.orderers[2]
    org1 = network.topology.org("org1")
    assert network.stop_node(stopped.name)
    try:
        network.invoke(org1, "Consortium:Join", "Org One while an orderer is down")
        member = json.loads(network.query(org1, "Consortium:GetMember", "Org1MSP"))
        assert member["displayName"] == "Org One while an orderer is down"
    finally:
        network.start_node(stopped.name)


def test_a_restarted_peer_catches_up_its_ledger(network: Network) -> None:
    org1, org3 = network.topology.org("org1"), network.topology.org("org3")
    assert network.stop_node(org3.peer_name)
    try:
        for i in range(3):
            network.invoke(org1, "Consortium:Join", f"Org One round {i}")
        target = network.peer_height(org1)
        assert target is not None
    finally:
        network.start_node(org3.peer_name)
    assert wait_until(lambda: (network.peer_height(org3) or 0) >= target, 60), _heights(network)
    member = json.loads(network.query(org3, "Consortium:GetMember", "Org1MSP"))
    assert member["displayName"] == "Org One round 2"


def test_a_chaincode_upgrade_runs_the_next_sequence_and_keeps_state(network: Network) -> None:
    org1, org2 = network.topology.org("org1"), network.topology.org("org2")
    before = json.loads(network.query(org2, "Consortium:ListMembers"))
    fabricml(
        "network",
        "deploy",
        "--version",
        "1.1",
        *network_options(network),
    )
    committed = network.lifecycle.committed(org1)
    assert committed is not None
    assert committed["version"] == "1.1" and committed["sequence"] == 2
    info = json.loads(network.query(org2, "Consortium:Info"))
    assert info == {"version": "1.1", "members": 3}
    assert json.loads(network.query(org2, "Consortium:ListMembers")) == before
    network.invoke(org1, "Consortium:Join", "Org One after upgrade")
    assert (
        json.loads(network.query(org2, "Consortium:GetMember", "Org1MSP"))["displayName"]
        == "Org One after upgrade"
    )
