"""The consortium's nodes from the topology, their health and block heights from their
operations endpoints, and the members and chaincode version from the ledger."""

from __future__ import annotations

import re
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from fabricml.contracts import ConsortiumClient
from fabricml.network.supervisor import accepts_connections
from fabricml.network.topology import Topology

from ..context import ApiContext, api_port
from ..schemas import Member, NetworkView, NodeHealth


@dataclass(frozen=True)
class NodeProbe:
    name: str
    kind: str
    organization: str
    health_url: str | None = None
    metrics_url: str | None = None
    port: int | None = None
    host: str = "127.0.0.1"  # where a node without a health endpoint listens


def probes(topology: Topology) -> list[NodeProbe]:
    out: list[NodeProbe] = []
    for org in topology.organizations:
        out.append(NodeProbe(org.ca_name, "ca", org.name, f"http://{org.address(org.port(1))}/healthz"))
        for o in org.orderers:
            ops = f"http://{o.host}:{o.operations_port}"
            out.append(NodeProbe(o.name, "orderer", org.name, f"{ops}/healthz", f"{ops}/metrics"))
        ops = f"http://{org.address(org.peer_operations_port)}"
        out.append(NodeProbe(org.peer_name, "peer", org.name, f"{ops}/healthz", f"{ops}/metrics"))
        out.append(
            NodeProbe(org.chaincode_name, "chaincode", org.name, port=org.chaincode_port, host=org.host)
        )
        out.append(
            NodeProbe(org.artifacts_name, "artifacts", org.name, port=org.artifacts_port, host=org.host)
        )
        out.append(NodeProbe(f"api.{org.name}", "api", org.name, port=api_port(org), host=org.host))
    return out


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return str(resp.read().decode()) if resp.status == 200 else None
    except OSError:
        return None


def check(probe: NodeProbe, channel: str) -> NodeHealth:
    healthy = (
        _get(probe.health_url) is not None
        if probe.health_url
        else accepts_connections(probe.host, probe.port or 0)
    )
    height = None
    if healthy and probe.metrics_url:
        text = _get(probe.metrics_url) or ""
        m = re.search(
            rf'^ledger_blockchain_height{{channel="{re.escape(channel)}"}} (\d+)', text, re.MULTILINE
        )
        height = int(m.group(1)) if m else None
    return NodeHealth(
        name=probe.name, kind=probe.kind, organization=probe.organization, healthy=healthy, height=height
    )


def node_health(topology: Topology) -> list[NodeHealth]:
    """Blocking: probes every node at once (two seconds at most each)."""
    nodes = probes(topology)
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda p: check(p, topology.channel), nodes))


async def view(context: ApiContext) -> NetworkView:
    from starlette.concurrency import run_in_threadpool

    identity = context.settings.auditor_identity
    members = await context.ledger.call(identity, ConsortiumClient, lambda c: c.list_members())
    info = await context.ledger.call(identity, ConsortiumClient, lambda c: c.info())
    nodes = await run_in_threadpool(node_health, context.topology)
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
