"""Runs the official Node Gateway client (tests/interop/node) against the network."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from fabricml.gateway.profile import ConnectionProfile

NODE_DIR = Path(__file__).parent / "node"


def node_config(profile: ConnectionProfile, identity: str, chaincode: str | None = None) -> dict[str, str]:
    entry = profile.raw["identities"][identity]
    peer = profile.peer()
    keystore = Path(entry["keystore"])
    (key,) = [p for p in keystore.iterdir() if p.is_file()]
    return {
        "address": peer.address,
        "tlsRoot": profile.raw["peers"][peer.name]["tlsCACerts"]["path"],
        "serverName": peer.server_name,
        "mspId": profile.msp_id,
        "certPath": entry["certificate"],
        "keyPath": str(key),
        "channel": profile.channel_name,
        "chaincode": chaincode or profile.chaincode_name,
    }


def run_node(config: dict[str, str], *args: str, timeout: float = 300) -> dict[str, Any]:
    result = subprocess.run(
        ["node", str(NODE_DIR / "gateway.mjs"), json.dumps(config), *args],
        capture_output=True, text=True, timeout=timeout, cwd=NODE_DIR,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"node client failed: {result.stderr.strip()}")
    return dict(json.loads(result.stdout))
