"""What a site's nodes are doing: running, healthy, block heights, committed chaincode."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .peercli import FabricCommandError, json_tail
from .site import Site
from .topology import Orderer
from .watch import read_restarts


@dataclass
class NodeStatus:
    name: str
    kind: str
    org: str
    running: bool
    healthy: bool
    height: int | None = None
    behind: int | None = None  # blocks fewer than the highest node of its kind (a restart's catch-up)
    restarts: int = 0  # by `network watch`
    last_restart: str = ""  # when and why
    extra: dict[str, str] = field(default_factory=dict)


def peer_height(site: Site) -> int | None:
    try:
        out = site.tools.peer("channel", "getinfo", "-c", site.channel, timeout=20)
    except FabricCommandError:
        return None
    m = re.search(r'"height":(\d+)', out)
    return int(m.group(1)) if m else None


def orderer_channel(site: Site, orderer: Orderer) -> dict[str, Any]:
    """osnadmin's view of the channel on the orderer (height, status, consensusRelation);
    empty when the orderer does not answer."""
    try:
        info = json_tail(
            site.tools.osnadmin(orderer, "channel", "list", "--channelID", site.channel, timeout=20)
        )
    except (FabricCommandError, ValueError):
        return {}
    return dict(info) if isinstance(info, dict) else {}


def orderer_height(site: Site, orderer: Orderer) -> int | None:
    height = orderer_channel(site, orderer).get("height")
    return int(height) if isinstance(height, int) else None


def site_status(site: Site) -> list[NodeStatus]:
    result = []
    joined = bool(site.channel)
    restarts = read_restarts(site.layout.restarts)
    for n in site.nodes():
        running = site.supervisor.alive(n.name)
        st = NodeStatus(n.name, n.kind, n.org, running, running and n.healthy())
        if n.name in restarts:
            r = restarts[n.name]
            st.restarts, st.last_restart = int(r["restarts"]), f"{r['last']}: {r['reason']}"
        if st.healthy and joined and n.kind == "peer":
            st.height = peer_height(site)
            committed = site.lifecycle.committed_quietly()
            if committed:
                st.extra["chaincode"] = f"{committed.get('version')} (sequence {committed.get('sequence')})"
        if st.healthy and joined and n.kind == "orderer":
            info = orderer_channel(site, next(o for o in site.org.orderers if o.name == n.name))
            height = info.get("height")
            st.height = int(height) if isinstance(height, int) else None
            if "consensusRelation" in info:  # e.g. "consenter (active)", "follower (onboarding)"
                st.extra["relation"] = f"{info['consensusRelation']} ({info.get('status', '')})"
        result.append(st)
    return result


def fill_behind(statuses: list[NodeStatus]) -> None:
    """How far each peer (orderer) is behind the highest peer (orderer) whose height is known."""
    for kind in ("peer", "orderer"):
        known = [s for s in statuses if s.kind == kind and s.height is not None]
        top = max((s.height for s in known if s.height is not None), default=None)
        for s in known:
            if top is not None and s.height is not None:
                s.behind = top - s.height


def json_status(statuses: list[NodeStatus]) -> str:
    return json.dumps([s.__dict__ for s in statuses], indent=2)
