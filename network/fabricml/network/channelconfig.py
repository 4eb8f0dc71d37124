"""Channel config updates an organization's admin makes alone: its anchor peer, its CRL.

An org's own group is modifiable by its own admins (mod_policy Admins of that org), so
its signature is enough. Anchor peers are set by such an update once the peer has
joined: putting them in the genesis block makes each peer probe the others while they
are still joining; gossip does not retry, and the Gateway's discovery then sees no other org."""

from __future__ import annotations

import base64
import copy
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from . import txlator
from .peercli import AdminTools, FabricCommandError, until_done
from .topology import Organization

CONFIG_UPDATE = 2  # common.HeaderType.CONFIG_UPDATE
Mutation = Callable[[dict[str, Any]], None]


class ToolsFor(Protocol):
    """A site's AdminTools, or a local consortium's set of them."""

    def for_org(self, org: Organization) -> AdminTools: ...


class ChannelConfig:
    def __init__(self, tools: ToolsFor) -> None:
        self.tools = tools

    def current(self, org: Organization) -> dict[str, Any]:
        """The channel's latest config, fetched from an orderer by the org's admin."""
        t = self.tools.for_org(org)
        with tempfile.TemporaryDirectory(prefix="channel-config-") as tmp:
            block = Path(tmp) / "config_block.pb"
            t.peer("channel", "fetch", "config", str(block), "-c", t.channel, *t.orderer_args())
            return txlator.block_config(txlator.decode(t.binaries, block, "common.Block"))

    def org_groups(self, config: dict[str, Any], org: Organization, sections: tuple[str, ...]) -> list[Any]:
        return [config["channel_group"]["groups"][s]["groups"][org.msp_id] for s in sections]

    def update_org(
        self, org: Organization, mutate: Mutation, sections: tuple[str, ...] = ("Application",)
    ) -> None:
        """Apply `mutate` to the org's group in each section and submit it, signed by the org's admin."""
        t = self.tools.for_org(org)
        config = self.current(org)
        updated = copy.deepcopy(config)
        for group in self.org_groups(updated, org, sections):
            mutate(group)
        with tempfile.TemporaryDirectory(prefix="channel-update-") as tmp:
            work = Path(tmp)
            original = txlator.encode(t.binaries, config, "common.Config", work / "original.pb")
            modified = txlator.encode(t.binaries, updated, "common.Config", work / "modified.pb")
            update_pb = txlator.compute_update(t.binaries, t.channel, original, modified, work / "update.pb")
            update = txlator.decode(t.binaries, update_pb, "common.ConfigUpdate")
            envelope = {
                "payload": {
                    "header": {"channel_header": {"channel_id": t.channel, "type": CONFIG_UPDATE}},
                    "data": {"config_update": update},
                }
            }
            env_pb = txlator.encode(t.binaries, envelope, "common.Envelope", work / "envelope.pb")
            t.peer("channel", "update", "-f", str(env_pb), "-c", t.channel, *t.orderer_args())

    def _apply(self, org: Organization, mutate: Mutation, sections: tuple[str, ...], what: str) -> None:
        def done() -> bool:
            try:
                groups = self.org_groups(self.current(org), org, sections)
            except (FabricCommandError, txlator.TranslateError, KeyError):
                return False
            for group in groups:
                wanted = copy.deepcopy(group)
                mutate(wanted)
                if wanted != group:
                    return False
            return True

        # Under Raft nothing is ordered until a majority of consenters joined: wait for them.
        # BFT orders each update as validated: of two made at once (sites come up in parallel)
        # the later is dropped after the orderer accepted it, so it is made again, soon.
        until_done(done, lambda: self.update_org(org, mutate, sections), what, timeout=300, settle=8)

    def set_anchor_peer(self, org: Organization) -> None:
        """Make the org's peer its anchor peer (done once the channel config says so)."""

        def mutate(group: dict[str, Any]) -> None:
            anchors = {"anchor_peers": [{"host": org.host, "port": org.peer_port}]}
            current = group["values"].get("AnchorPeers")
            if current is None or current.get("value") != anchors:
                group["values"]["AnchorPeers"] = {"mod_policy": "Admins", "value": anchors, "version": "0"}

        self._apply(org, mutate, ("Application",), f"{org.name}'s anchor peer")

    def set_revocation_list(self, org: Organization, crl_pem: bytes) -> None:
        """Publish the org CA's certificate revocation list in the channel's copy of its MSP."""

        def mutate(group: dict[str, Any]) -> None:
            msp = group["values"]["MSP"]["value"]["config"]
            msp["revocation_list"] = [base64.b64encode(crl_pem).decode()]

        # An org that runs orderers has its MSP in the orderer group too; both must agree.
        sections = ("Application", "Orderer") if org.orderers else ("Application",)
        self._apply(org, mutate, sections, f"{org.name}'s revocation list")
