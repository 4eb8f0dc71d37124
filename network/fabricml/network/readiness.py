"""Is a joined site usable? Its peer's gossip sees the other members' peers, and its admin
commits a heartbeat through its own Gateway (so discovery finds enough endorsers); then it
records the org as a consortium member once."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import TypeVar

import grpc

from fabricml.gateway import CommitError, GatewayError, SubmitError, refusal_of, sync
from fabricml.gateway.profile import ConnectionProfile

from . import operations
from .processes import wait_until
from .site import Site, SiteError

HEALTH_TIMEOUT = 60.0
T = TypeVar("T")
# gRPC codes of a Gateway call that is worth repeating: nobody orders or endorses *yet*.
_TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED)


def gossip_peers(site: Site) -> int | None:
    """How many other peers this site's peer knows on the channel (from its metrics)."""
    address = site.org.address(site.org.peer_operations_port)
    text = operations.fetch(address, "/metrics", operations.site_context(site.layout))
    if text is None:
        return None
    pattern = rf'^gossip_membership_total_peers_known{{channel="{re.escape(site.channel)}"}} (\d+)'
    m = re.search(pattern, text, re.MULTILINE)
    return int(m.group(1)) if m else None


def wait_for_gossip(site: Site, others: int, timeout: float = HEALTH_TIMEOUT) -> None:
    if not wait_until(lambda: (gossip_peers(site) or 0) >= others, timeout):
        raise SiteError(
            f"{site.org.peer_name} knows {gossip_peers(site)} of {others} other peers after {timeout:.0f}s; "
            f"see its log: {site.layout.log(site.org.peer_name)}"
        )


def gateway_call(
    site: Site,
    call: Callable[[sync.Contract], T],
    identity: str = "admin",
    retry: Callable[[Exception], bool] | None = None,
    timeout: float = HEALTH_TIMEOUT,
) -> T:
    """Run `call` on the site's contract through its own Gateway; repeat while `retry(exc)`."""
    profile = ConnectionProfile.load(site.layout.profile(site.org.name))
    ident, signer, hash_ = profile.identity(identity)
    deadline = time.monotonic() + timeout
    with profile.peer().sync_channel() as channel:
        contract = (
            sync.connect(channel, ident, signer, hash_)
            .get_network(site.channel)
            .get_contract(profile.chaincode_name)
        )
        while True:
            try:
                return call(contract)
            except (GatewayError, CommitError) as exc:
                if retry is None or not retry(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(1)


def transient(exc: Exception) -> bool:
    """Ordering or endorsing peers not available yet (a leader election, a peer restarting).
    A contract's coded refusal is an answer, not an outage (Fabric reports it as ABORTED)."""
    if refusal_of(exc) is not None:
        return False
    return isinstance(exc, SubmitError) or (isinstance(exc, GatewayError) and exc.code in _TRANSIENT)


def heartbeat(site: Site) -> None:
    """Discovery learns who runs the chaincode by gossip, a little after a commit; until then
    the Gateway finds no endorsers, so this retries any Gateway error until the deadline."""
    try:
        gateway_call(site, lambda c: c.submit_transaction("Consortium:Heartbeat"), retry=lambda e: True)
    except (GatewayError, CommitError) as exc:
        raise SiteError(
            f"{site.org.name} could not commit a heartbeat through its Gateway: {exc}; "
            f"see {site.layout.log(site.org.peer_name)}"
        ) from exc


def record_membership(site: Site) -> bool:
    """Consortium:Join signed by the org's admin, unless the ledger already lists the org."""
    listed = json.loads(gateway_call(site, lambda c: c.evaluate_transaction("Consortium:ListMembers")))
    if site.org.msp_id in [m["mspId"] for m in listed or []]:
        return False
    gateway_call(site, lambda c: c.submit_transaction("Consortium:Join", site.org.name), retry=transient)
    return True
