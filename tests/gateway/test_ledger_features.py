"""Private data collections, state-based endorsement, and discovery with too few endorsers."""

from __future__ import annotations

import uuid

import pytest

from fabricml.gateway import NO_RETRY, CommitError, EndorseError, EvaluateError
from fabricml.gateway.events import transaction_ids
from fabricml.network.network import Network
from fabricml.network.processes import wait_until
from tests.gateway.conftest import GatewayFactory, contract

ORG1_COLLECTION = "_implicit_org_Org1MSP"


def test_private_data_is_readable_by_the_member_org_only_and_stays_off_the_chain(
    network: Network, gateway: GatewayFactory
) -> None:
    gw = gateway("org1")
    c = contract(gw, network)
    k, secret = f"pdc-{uuid.uuid4().hex[:8]}", f"diagnosis-{uuid.uuid4().hex}"
    _, commit = c.submit_async("PutPrivate", ORG1_COLLECTION, k, transient={"value": secret})
    status = commit.status()
    assert status.successful
    assert c.evaluate_transaction("GetPrivate", ORG1_COLLECTION, k) == secret.encode()

    with pytest.raises(EvaluateError):
        contract(gateway("org2"), network).evaluate_transaction(
            "GetPrivate", ORG1_COLLECTION, k, endorsing_organizations=["Org2MSP"]
        )

    net = gw.get_network(network.topology.channel)
    with net.block_events(status.block_number) as blocks:
        block = next(blocks)
    assert commit.transaction_id in transaction_ids(block)
    assert secret.encode() not in block.SerializeToString()
    with net.block_events(status.block_number, kind="private") as blocks:
        with_private = next(blocks)
    assert secret.encode() in with_private.private_data_map[0].SerializeToString()


def test_a_key_level_endorsement_policy_overrides_the_chaincode_policy(
    network: Network, gateway: GatewayFactory
) -> None:
    c = contract(gateway(), network)
    k = f"sbe-{uuid.uuid4().hex[:8]}"
    c.submit_transaction("Put", k, "v0")
    c.submit_transaction("SetKeyEndorsers", k, '["Org1MSP","Org3MSP"]')
    # A chaincode-level majority that leaves out Org3 no longer suffices for this key.
    with pytest.raises(CommitError) as err:
        c.submit_transaction("Put", k, "v1", endorsing_organizations=["Org1MSP", "Org2MSP"])
    assert err.value.code_name == "ENDORSEMENT_POLICY_FAILURE"
    assert c.evaluate_transaction("Get", k) == b"v0"
    c.submit_transaction("Put", k, "v2", endorsing_organizations=["Org1MSP", "Org3MSP"])
    assert c.evaluate_transaction("Get", k) == b"v2"


def test_discovery_with_too_few_live_endorsers_fails_endorsement(
    network: Network, gateway: GatewayFactory
) -> None:
    stopped = [network.topology.org("org2"), network.topology.org("org3")]
    c = contract(gateway("org1", retry=NO_RETRY), network)  # retried, it would fail the same way later
    for org in stopped:
        network.stop_node(org.peer_name)
    try:
        with pytest.raises(EndorseError) as err:
            c.submit_transaction("Put", f"k-{uuid.uuid4().hex[:8]}", "v")
        text = str(err.value)
        # The Gateway either knows the peers are gone (discovery finds no combination) or
        # tries those it still believes alive and names each unreachable one: never a live org.
        assert "enough transaction endorsements" in text or "no combination of peers" in text, text
        assert {d.msp_id for d in err.value.details} <= {"Org2MSP", "Org3MSP"}, text
    finally:
        for org in stopped:
            network.start_node(org.peer_name)
    for org in network.topology.organizations:
        assert wait_until(lambda o=org: network.gossip_peers(o) == 2, 90)  # type: ignore[misc]
    assert c.submit_transaction("Put", f"k-{uuid.uuid4().hex[:8]}", "back") == b"back"
