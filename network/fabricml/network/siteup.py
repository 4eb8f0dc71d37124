"""`fabricml site up`: start a site's processes, switch its chaincode server to the committed
definition, check it can transact, record the org as a member, start its services."""

from __future__ import annotations

from . import readiness, upgrade
from .site import Site

CORE = ("ca", "orderer", "peer", "chaincode")
SERVICES = ("artifacts", "api")


def start_core(site: Site) -> list[str]:
    started = site.start(CORE)
    if site.joined and site.lifecycle.committed_quietly() is not None:
        upgrade.activate(site)
    return started


def ready(site: Site) -> None:
    """Gossip sees every other member's peer, a heartbeat commits, the org is a listed member."""
    joined = site.joined
    if not joined or site.lifecycle.committed_quietly() is None:
        return
    with site.step("wait until the peer's gossip sees the other members' peers"):
        readiness.wait_for_gossip(site, len(joined["members"]) - 1)
    with site.step("commit a heartbeat through this organization's Gateway"):
        readiness.heartbeat(site)
    if readiness.record_membership(site):
        site.console.print(
            f"[green]✓[/] \\[{site.org.name}] recorded as a consortium member (Consortium:Join)"
        )


def start_services(site: Site) -> list[str]:
    with site.step("start the artifact store and the admin API (mutual TLS)"):
        return site.start(SERVICES)


def up(site: Site) -> list[str]:
    started = start_core(site)
    ready(site)
    return started + start_services(site)
