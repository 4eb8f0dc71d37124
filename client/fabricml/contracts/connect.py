"""From a connection profile and one of the org's identities to typed contract clients:
profile -> channel -> Gateway -> network -> contract, written once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from fabricml.gateway import connect as connect_async
from fabricml.gateway import sync
from fabricml.gateway._client import Deadlines
from fabricml.gateway.profile import ConnectionProfile
from fabricml.gateway.retry import DEFAULT, RetryPolicy

from .call import AsyncContract, ContractClient

C = TypeVar("C", bound=ContractClient)


@dataclass(frozen=True)
class OrgConnection:
    """One identity of an org, connected through the org's peer."""

    profile: ConnectionProfile
    identity: str
    network: sync.Network
    channel: sync.Channel

    def client(self, client: type[C]) -> C:
        """A typed client of one contract of the org's chaincode."""
        return client(self.network.get_contract(self.profile.chaincode_name, client.CONTRACT))

    def chaincode_events(self) -> sync.Events[Any]:
        """The chaincode's events from the next block on; close() ends the stream."""
        return self.network.chaincode_events(self.profile.chaincode_name)


@contextmanager
def open_connection(
    profile: ConnectionProfile,
    identity: str,
    deadlines: Deadlines | None = None,
    retry: RetryPolicy = DEFAULT,
) -> Iterator[OrgConnection]:
    """Connect `identity` (a name from the profile, e.g. "trainer") to the org's peer; the
    channel closes on exit. Raises ValueError for an unknown identity."""
    ident, signer, hash_ = profile.identity(identity)
    with profile.peer().sync_channel() as channel:
        gateway = sync.connect(channel, ident, signer, hash_, deadlines, retry=retry)
        yield OrgConnection(profile, identity, gateway.get_network(profile.channel_name), channel)


@contextmanager
def open_contract(profile: ConnectionProfile, identity: str, client: type[C]) -> Iterator[C]:
    """One typed client on its own connection: `with open_contract(p, "auditor", FederationClient) as f`."""
    with open_connection(profile, identity) as connection:
        yield connection.client(client)


def async_contract(
    channel: grpc.aio.Channel,
    profile: ConnectionProfile,
    identity: str,
    client: type[C],
    deadlines: Deadlines | None = None,
) -> AsyncContract[C]:
    """A typed client on the asyncio Gateway client, over a channel the caller owns."""
    ident, signer, hash_ = profile.identity(identity)
    network = connect_async(channel, ident, signer, hash_, deadlines).get_network(profile.channel_name)
    return AsyncContract(client, network.get_contract(profile.chaincode_name, client.CONTRACT))
