"""Channel configuration updates signed by an organization's admin: anchor peers, CRLs.

Anchor peers are set by such an update once every peer has joined: putting them in
the genesis block makes each peer probe the others while they are still joining;
gossip does not retry, and the Gateway's discovery then sees no other org."""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .peercli import AdminTools, FabricCommandError, retry_transient
from .topology import HOST, Organization

CONFIG_UPDATE = 2  # common.HeaderType.CONFIG_UPDATE


class ChannelConfig:
    def __init__(self, tools: AdminTools) -> None:
        self.tools = tools
        self.channel = tools.topology.channel

    def _configtxlator(self, *args: str) -> None:
        argv = [str(self.tools.binaries.path("configtxlator")), *args]
        result = subprocess.run(
            argv, capture_output=True, text=True, env={"PATH": os.environ.get("PATH", "")}
        )
        if result.returncode != 0:
            raise FabricCommandError(f"configtxlator {args[0]} failed: {result.stderr.strip()[-500:]}")

    def _decode(self, path: Path, kind: str) -> Any:
        out = path.with_suffix(".json")
        self._configtxlator("proto_decode", "--input", str(path), "--type", kind, "--output", str(out))
        return json.loads(out.read_text())

    def _encode(self, data: Any, kind: str, out: Path) -> Path:
        src = out.with_suffix(".json")
        src.write_text(json.dumps(data))
        self._configtxlator("proto_encode", "--input", str(src), "--type", kind, "--output", str(out))
        return out

    def update_org(
        self,
        org: Organization,
        mutate: Callable[[dict[str, Any]], None],
        groups: tuple[str, ...] = ("Application",),
    ) -> None:
        """Apply `mutate` to the org's group in each of `groups` and commit it, signed by the org's admin."""
        with tempfile.TemporaryDirectory(prefix="channel-config-") as tmp:
            work = Path(tmp)
            block = work / "config_block.pb"
            retry_transient(
                lambda: self.tools.peer(
                    org,
                    "channel",
                    "fetch",
                    "config",
                    str(block),
                    "-c",
                    self.channel,
                    *self.tools.orderer_args(org),
                )
            )
            config = self._decode(block, "common.Block")["data"]["data"][0]["payload"]["data"]["config"]
            updated = copy.deepcopy(config)
            for group in groups:
                mutate(updated["channel_group"]["groups"][group]["groups"][org.msp_id])
            original = self._encode(config, "common.Config", work / "original.pb")
            modified = self._encode(updated, "common.Config", work / "modified.pb")
            update_pb = work / "update.pb"
            self._configtxlator(
                "compute_update",
                "--channel_id",
                self.channel,
                "--original",
                str(original),
                "--updated",
                str(modified),
                "--output",
                str(update_pb),
            )
            update = self._decode(update_pb, "common.ConfigUpdate")
            envelope = {
                "payload": {
                    "header": {"channel_header": {"channel_id": self.channel, "type": CONFIG_UPDATE}},
                    "data": {"config_update": update},
                }
            }
            env_pb = self._encode(envelope, "common.Envelope", work / "envelope.pb")
            retry_transient(
                lambda: self.tools.peer(
                    org,
                    "channel",
                    "update",
                    "-f",
                    str(env_pb),
                    "-c",
                    self.channel,
                    *self.tools.orderer_args(org),
                )
            )

    def set_anchor_peer(self, org: Organization) -> None:
        """Make the org's peer its anchor peer."""

        def mutate(group: dict[str, Any]) -> None:
            group["values"]["AnchorPeers"] = {
                "mod_policy": "Admins",
                "value": {"anchor_peers": [{"host": HOST, "port": org.peer_port}]},
                "version": "0",
            }

        self.update_org(org, mutate)

    def set_revocation_list(self, org: Organization, crl_pem: bytes) -> None:
        """Publish the org CA's certificate revocation list in the channel's copy of its MSP."""

        def mutate(group: dict[str, Any]) -> None:
            msp = group["values"]["MSP"]["value"]["config"]
            msp["revocation_list"] = [base64.b64encode(crl_pem).decode()]

        # An org that runs orderers has its MSP in the orderer group too; both must agree.
        self.update_org(org, mutate, ("Application", "Orderer") if org.orderers else ("Application",))
