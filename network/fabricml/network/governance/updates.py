"""Config edits for each proposal kind, on configtxlator's JSON form of a channel config.

Each function returns an edited copy; `translator.compute_update(original, edited)`
then gives the ConfigUpdate every member signs."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from .orgdef import PublicMSP, application_group, orderer_group

Config = dict[str, Any]


class UpdateError(ValueError):
    """The edit does not apply to this config; the message says why."""


def _group(config: Config, path: str) -> dict[str, Any]:
    parts = path.strip("/").split("/")
    if parts[0] != "Channel":
        raise UpdateError(f"config paths start with /Channel, got {path!r}")
    group: dict[str, Any] = config["channel_group"]
    for name in parts[1:]:
        if name not in group.get("groups", {}):
            raise UpdateError(f"the config has no group {path}")
        group = group["groups"][name]
    return group


def set_element(config: Config, path: str, new: Any) -> Config:
    """Replace the inner `value` of the value, or the `policy` of the policy, at path."""
    edited = copy.deepcopy(config)
    parent_path, _, name = path.rpartition("/")
    parent = _group(edited, parent_path)
    if name in parent.get("values", {}):
        parent["values"][name]["value"] = new
    elif name in parent.get("policies", {}):
        parent["policies"][name]["policy"] = new
    else:
        raise UpdateError(f"{parent_path} has no value or policy named {name!r}")
    return edited


def element(config: Config, path: str) -> Any:
    """The current inner value or policy at path (what `set_element` replaces)."""
    parent_path, _, name = path.rpartition("/")
    parent = _group(config, parent_path)
    if name in parent.get("values", {}):
        return parent["values"][name]["value"]
    if name in parent.get("policies", {}):
        return parent["policies"][name]["policy"]
    raise UpdateError(f"{parent_path} has no value or policy named {name!r}")


def members(config: Config, group: str = "Application") -> list[str]:
    return sorted(_group(config, f"/Channel/{group}").get("groups", {}))


def add_org(
    config: Config,
    msp: PublicMSP,
    anchor_peers: list[tuple[str, int]] | None = None,
    orderer_endpoints: list[str] | None = None,
) -> Config:
    """Add the org to Application, and to Orderer when it brings orderer endpoints."""
    if msp.msp_id in members(config):
        raise UpdateError(f"{msp.msp_id} is already in the channel")
    edited = copy.deepcopy(config)
    _group(edited, "/Channel/Application")["groups"][msp.msp_id] = application_group(msp, anchor_peers or [])
    if orderer_endpoints:
        _group(edited, "/Channel/Orderer")["groups"][msp.msp_id] = orderer_group(msp, orderer_endpoints)
    return edited


def remove_org(config: Config, msp_id: str) -> Config:
    """Remove the org from Application and, if there, from Orderer."""
    if msp_id not in members(config):
        raise UpdateError(f"{msp_id} is not in the channel; members: {', '.join(members(config))}")
    edited = copy.deepcopy(config)
    del _group(edited, "/Channel/Application")["groups"][msp_id]
    _group(edited, "/Channel/Orderer")["groups"].pop(msp_id, None)
    return edited


def raft_consenters(config: Config) -> list[dict[str, Any]]:
    value = _group(config, "/Channel/Orderer")["values"]["ConsensusType"]["value"]
    if value.get("type") != "etcdraft":
        raise UpdateError(
            f"the channel's consensus is {value.get('type')!r}; consenter edits here are for Raft"
        )
    return list(value["metadata"]["consenters"])


def add_consenter(config: Config, host: str, port: int, tls_cert_pem: bytes) -> Config:
    """Add a Raft consenter whose client and server TLS certificate is tls_cert_pem."""
    if any(c["host"] == host and int(c["port"]) == port for c in raft_consenters(config)):
        raise UpdateError(f"{host}:{port} is already a consenter")
    edited = copy.deepcopy(config)
    cert = base64.b64encode(tls_cert_pem).decode()
    meta = _group(edited, "/Channel/Orderer")["values"]["ConsensusType"]["value"]["metadata"]
    meta["consenters"].append({"host": host, "port": port, "client_tls_cert": cert, "server_tls_cert": cert})
    return edited


def remove_consenter(config: Config, host: str, port: int) -> Config:
    before = raft_consenters(config)
    kept = [c for c in before if not (c["host"] == host and int(c["port"]) == port)]
    if len(kept) == len(before):
        raise UpdateError(f"{host}:{port} is not a consenter")
    if not kept:
        raise UpdateError("removing the last consenter would stop the channel")
    edited = copy.deepcopy(config)
    _group(edited, "/Channel/Orderer")["values"]["ConsensusType"]["value"]["metadata"]["consenters"] = kept
    return edited


def parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UpdateError(f"{what} is not valid JSON: {exc}") from None
