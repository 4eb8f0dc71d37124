"""Interop with the official Node client @hyperledger/fabric-gateway, in both directions."""

from __future__ import annotations

import uuid

from fabricml.gateway import sync
from fabricml.gateway.profile import ConnectionProfile
from fabricml.network.network import Network
from tests.interop.nodeclient import node_config, run_node


def _python_contract(profile: ConnectionProfile, channel: sync.Channel) -> sync.Contract:
    identity, signer, hash_ = profile.identity("user1")
    gw = sync.connect(channel, identity, signer, hash_)
    return gw.get_network(profile.channel_name).get_contract(profile.chaincode_name, "Conformance")


def test_a_transaction_submitted_with_our_client_is_read_by_the_node_client(network: Network) -> None:
    org1 = ConnectionProfile.load(network.layout.profile(network.topology.org("org1")))
    org3 = ConnectionProfile.load(network.layout.profile(network.topology.org("org3")))
    key, value = f"interop-{uuid.uuid4().hex[:8]}", f"from python {uuid.uuid4().hex[:6]}"
    with org1.peer().sync_channel() as channel:
        _python_contract(org1, channel).submit_transaction("Put", key, value)
    assert run_node(node_config(org3, "user1"), "evaluate", "Conformance:Get", key) == {"result": value}


def test_a_transaction_submitted_with_the_node_client_is_read_by_ours(network: Network) -> None:
    org2 = ConnectionProfile.load(network.layout.profile(network.topology.org("org2")))
    org1 = ConnectionProfile.load(network.layout.profile(network.topology.org("org1")))
    key, value = f"interop-{uuid.uuid4().hex[:8]}", f"from node {uuid.uuid4().hex[:6]}"
    assert run_node(node_config(org2, "user1"), "submit", "Conformance:Put", key, value) == {"result": value}
    with org1.peer().sync_channel() as channel:
        assert _python_contract(org1, channel).evaluate_transaction("Get", key) == value.encode()
