"""One organization's own view of governance: its admin key, its orderer, its peer.

Every step a Site takes signs with that org's admin identity only. `Site.open` reads an
org's joined site directory (`fabricml site join` wrote its connection profile there)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabric_protos.common import common_pb2, configtx_pb2

from fabricml.gateway import SubmitError, sync
from fabricml.gateway.profile import ConnectionProfile

from .. import site as sites
from ..members import Members
from .orderer import Orderer, OrdererEndpoint, Signing
from .signatures import config_of
from .translator import Translator

CONTRACT = "Governance"
SUBMIT_ATTEMPTS = 5


@dataclass(frozen=True)
class ConfigSnapshot:
    """The channel config in force, as this site's orderer delivered it."""

    block_number: int
    config: configtx_pb2.Config
    json: dict[str, Any]


class Site:
    """An org's admin, talking to its own orderer and its own peer's Gateway."""

    def __init__(
        self,
        profile: ConnectionProfile,
        identity: str = "admin",
        translator: Translator | None = None,
        members: Members | None = None,
    ):
        self.profile = profile
        self.msp_id = profile.msp_id
        ident, signer, hash_ = profile.identity(identity)
        self.signing = Signing(ident, signer, hash_)
        self.translator = translator or Translator()
        # The bundles this org imported: a newcomer's must be among them before it signs for it.
        self.members = members

    @classmethod
    def open(cls, state_dir: Path, identity: str = "admin") -> Site:
        """The governance view of the joined site in state_dir: its own admin, orderer and peer."""
        org_site = sites.Site.open(state_dir)
        profile = org_site.layout.profile(org_site.org.name)
        if org_site.joined is None or not profile.exists():
            raise sites.SiteError(
                f"{org_site.org.name}'s site has not joined a channel; run `fabricml site join` first"
            )
        return cls(ConnectionProfile.load(profile), identity, Translator(org_site.binaries), org_site.members)

    @property
    def channel(self) -> str:
        return self.profile.channel_name

    def orderer_endpoint(self) -> OrdererEndpoint:
        """The org's own orderer if it runs one, else the first one the profile lists."""
        orderers: dict[str, Any] = self.profile.raw.get("orderers", {})
        if not orderers:
            raise ValueError(f"the connection profile {self.profile.path} lists no orderers")
        own = [n for n in sorted(orderers) if n.endswith("." + self.profile.organization)]
        name = (own or sorted(orderers))[0]
        entry = orderers[name]
        return OrdererEndpoint(
            address=str(entry["url"]).removeprefix("grpcs://"),
            tls_root=Path(entry["tlsCACerts"]["path"]).read_bytes(),
        )

    def orderer(self) -> Orderer:
        return Orderer(self.orderer_endpoint(), self.channel, self.signing)

    def current_config(self) -> ConfigSnapshot:
        with self.orderer() as orderer:
            block = orderer.latest_config_block()
        config = config_of(block)
        as_json = self.translator.decode(config.SerializeToString(), "common.Config")
        return ConfigSnapshot(int(block.header.number), config, as_json)

    @contextmanager
    def contract(self) -> Iterator[sync.Contract]:
        """The Governance contract through this org's own peer."""
        with self.profile.peer().sync_channel() as channel:
            gateway = sync.connect(channel, self.signing.identity, self.signing.signer, self.signing.hash)
            network = gateway.get_network(self.channel)
            yield network.get_contract(self.profile.chaincode_name, CONTRACT)

    def submit(self, function: str, *args: str) -> Any:
        """Endorse, order and commit; resubmit when no orderer took the transaction.

        While an orderer is listed but does not serve the channel (it is joining, or it
        was just evicted from the consenters), the Gateway may pick it and get
        BAD_REQUEST; the transaction was not ordered, so sending it again is safe."""
        for attempt in range(SUBMIT_ATTEMPTS):
            try:
                with self.contract() as contract:
                    return json.loads(contract.submit_transaction(function, *args))
            except SubmitError:
                if attempt == SUBMIT_ATTEMPTS - 1:
                    raise
                time.sleep(1)
        raise AssertionError("unreachable")

    def evaluate(self, function: str, *args: str) -> Any:
        with self.contract() as contract:
            return json.loads(contract.evaluate_transaction(function, *args))


def config_blocks(orderer: Orderer, start: int) -> Iterator[tuple[int, common_pb2.Block]]:
    """Config blocks from `start` back to the genesis block, newest first."""
    index = start
    while True:
        block = orderer.block(index)
        yield index, block
        if index == 0:
            return
        index = orderer.last_config_index(orderer.block(index - 1))
