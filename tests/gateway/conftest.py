"""Gateway clients for each organization's identities on the session's network."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from fabricml.gateway import sync
from fabricml.gateway.profile import ConnectionProfile
from fabricml.gateway.retry import DEFAULT, RetryPolicy
from fabricml.network.network import Network

GatewayFactory = Callable[..., sync.Gateway]


@pytest.fixture
def gateway(network: Network) -> Iterator[GatewayFactory]:
    """gateway(org="org1", identity="user1", signer=True, retry=DEFAULT): a sync Gateway on its peer."""
    channels: list[sync.Channel] = []

    def make(
        org: str = "org1", identity: str = "user1", signer: bool = True, retry: RetryPolicy = DEFAULT
    ) -> sync.Gateway:
        profile = ConnectionProfile.load(network.layout.profile(network.topology.org(org)))
        ident, sign, hash = profile.identity(identity)
        channel = profile.peer().sync_channel()
        channels.append(channel)
        return sync.connect(channel, ident, sign if signer else None, hash, retry=retry)

    yield make
    for channel in channels:
        channel.close()


def contract(gw: sync.Gateway, network: Network, name: str = "Conformance") -> sync.Contract:
    return gw.get_network(network.topology.channel).get_contract(network.topology.chaincode_name, name)
