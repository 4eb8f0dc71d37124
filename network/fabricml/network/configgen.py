"""Deprecated module: what it generated now lives in `nodeconfig` (node environments and
core.yaml), `channeltx` (configtx and the genesis block) and `profile` (connection profiles).

`configtx(topology, layout)` remains for callers that describe a local consortium by its
topology: it names the member files the founding site keeps for each organization."""

from __future__ import annotations

from typing import Any

from .channeltx import PROFILE, ChannelMember, ChannelSettings, Consenter
from .channeltx import configtx as _configtx
from .layout import Layout
from .nodeconfig import (
    BUILDER_CONFIG_ENV,
    CONNECTION_TEMPLATE,
    builder_config_file,
    chaincode_connection,
    chaincode_env,
    core_yaml,
    orderer_env,
    peer_env,
    write_json,
    write_yaml,
)
from .topology import Topology

__all__ = [
    "BUILDER_CONFIG_ENV",
    "CONNECTION_TEMPLATE",
    "PROFILE",
    "builder_config_file",
    "chaincode_connection",
    "chaincode_env",
    "configtx",
    "core_yaml",
    "orderer_env",
    "peer_env",
    "write_json",
    "write_yaml",
]


def configtx(topo: Topology, layout: Layout) -> dict[str, Any]:
    """configtx.yaml of a local consortium, as its founding site (the first org) writes it."""
    founder = layout.site(topo.organizations[0])
    members = []
    for org in topo.organizations:
        home = founder.member(org.name)
        consenters = tuple(
            Consenter(
                org.msp_id,
                o.host,
                o.port,
                home / "orderers" / o.name / "tls.crt",
                home / "orderers" / o.name / "identity.crt",
            )
            for o in org.orderers
        )
        members.append(ChannelMember(org.msp_id, home / "msp", consenters))
    settings = ChannelSettings(topo.channel, topo.consensus, topo.endorsement, topo.batch_timeout_ms)
    return _configtx(settings, members)
