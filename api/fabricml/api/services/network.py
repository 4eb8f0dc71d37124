"""The consortium's nodes from the topology, their health and block heights from their
operations endpoints, and the members and chaincode version from the ledger."""

from __future__ import annotations

import re
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from fabricml.contracts import ConsortiumClient
from fabricml.network import operations
from fabricml.network.supervisor import accepts_connections
from fabricml.network.topology import Topology

from ..context import ApiContext, api_port
from ..schemas import Member, NetworkView, NodeHealth


@dataclass(frozen=True)
class NodeProbe:
    name: str
    kind: str
    organization: str
    health: str | None = None  # an operations endpoint's address (/healthz over TLS)
    metrics: bool = False  # whether this site may read its /metrics (its own nodes only)
    port: int | None = None
    host: str = "127.0.0.1"  # where a node without a health endpoint listens


def probes(topology: Topology, own: str) -> list[NodeProbe]:
    out: list[NodeProbe] = []
    for org in topology.organizations:
        mine = org.name == own
        # The CA's operations endpoint serves plain HTTP: /healthz and /metrics, no /logspec.
        out.append(NodeProbe(org.ca_name, "ca", org.name, port=org.port(1), host=org.host))
        for o in org.orderers:
            out.append(NodeProbe(o.name, "orderer", org.name, f"{o.host}:{o.operations_port}", mine))
        out.append(NodeProbe(org.peer_name, "peer", org.name, org.address(org.peer_operations_port), mine))
        out.append(
            NodeProbe(org.chaincode_name, "chaincode", org.name, port=org.chaincode_port, host=org.host)
        )
        out.append(
            NodeProbe(org.artifacts_name, "artifacts", org.name, port=org.artifacts_port, host=org.host)
        )
        out.append(NodeProbe(f"api.{org.name}", "api", org.name, port=api_port(org), host=org.host))
    return out


def _context(context: ApiContext, probe: NodeProbe) -> ssl.SSLContext:
    """Members' nodes: their TLS CA, no certificate (health only); its own: as its operator."""
    org = context.topology.org(probe.organization)
    operator = context.layout.site(context.org) if probe.metrics else None
    return operations.tls_context(context.layout.ca_cert(org), operator)


def check(context: ApiContext, probe: NodeProbe) -> NodeHealth:
    height = None
    if probe.health is None:
        healthy = accepts_connections(probe.host, probe.port or 0)
    else:
        ctx = _context(context, probe)
        healthy = operations.fetch(probe.health, "/healthz", ctx) is not None
        text = operations.fetch(probe.health, "/metrics", ctx) if healthy and probe.metrics else None
        channel = re.escape(context.topology.channel)
        m = re.search(rf'^ledger_blockchain_height{{channel="{channel}"}} (\d+)', text or "", re.MULTILINE)
        height = int(m.group(1)) if m else None
    return NodeHealth(
        name=probe.name, kind=probe.kind, organization=probe.organization, healthy=healthy, height=height
    )


def node_health(context: ApiContext) -> list[NodeHealth]:
    """Blocking: probes every node at once (two seconds at most each); block heights of the
    org's own peer and orderers (members' /metrics are their operators' only)."""
    nodes = probes(context.topology, context.org.name)
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda p: check(context, p), nodes))


async def view(context: ApiContext) -> NetworkView:
    from starlette.concurrency import run_in_threadpool

    identity = context.settings.auditor_identity
    members = await context.ledger.call(identity, ConsortiumClient, lambda c: c.list_members())
    info = await context.ledger.call(identity, ConsortiumClient, lambda c: c.info())
    nodes = await run_in_threadpool(node_health, context)
    return NetworkView(
        organization=context.org.name,
        mspId=context.org.msp_id,
        channel=context.topology.channel,
        chaincode=context.topology.chaincode_name,
        chaincodeVersion=info.version,
        members=[Member.model_validate(m.to_json()) for m in members],
        nodes=nodes,
        healthy=sum(n.healthy for n in nodes),
        total=len(nodes),
    )
