"""`fabricml site up`: start a site's processes, switch its chaincode server to the committed
definition, check it can transact, record the org as a member, start its services."""

from __future__ import annotations

from . import readiness, revocations, siteview, txlator, upgrade
from .channelconfig import ChannelConfig
from .peercli import FabricCommandError
from .processes import wait_until
from .site import Site, SiteError

CORE = ("ca", "orderer", "peer", "chaincode")
SERVICES = ("revocations", "artifacts", "api")
LISTS_TIMEOUT = 60.0


def start_core(site: Site) -> list[str]:
    started = site.start(CORE)
    if site.joined and site.lifecycle.committed_quietly() is not None:
        upgrade.activate(site)
    return started


def refresh_members(site: Site) -> int:
    """The channel's members now (proposals add and remove orgs): record those whose bundles
    this site imported and rewrite its view; returns how many other members there are."""
    joined = dict(site.joined or {})
    try:
        config = ChannelConfig(site.tools).current(site.org)
    except (FabricCommandError, txlator.TranslateError):
        return len(joined["members"]) - 1  # e.g. no orderer reachable: what the site knew
    in_channel = set(config["channel_group"]["groups"]["Application"]["groups"])
    known = [m.bundle for m in site.members.all() if m.bundle.msp_id in in_channel]
    missing = sorted(in_channel - {b.msp_id for b in known})
    if missing:
        site.console.print(f"[yellow]![/] \\[{site.org.name}] members without an imported bundle: "
                           f"{', '.join(missing)}; `fabricml site import` theirs")  # fmt: skip
    members = {b.msp_id: b.fingerprint for b in known}
    if members != joined["members"]:
        joined["members"] = members
        site.save_joined(joined)
        siteview.write(site.org, site.layout, joined, known)
        site.console.print(f"  \\[{site.org.name}] channel members now: {', '.join(sorted(members))}")
        for name in (site.org.revocations_name, site.org.artifacts_name):  # they know the members they
            if site.supervisor.alive(name):  # started with
                site.supervisor.restart(site.node(name))
    return len(in_channel) - 1


def ready(site: Site) -> None:
    """Gossip sees every other member's peer, a heartbeat commits, the org is a listed member."""
    joined = site.joined
    if not joined or site.lifecycle.committed_quietly() is None:
        return
    others = refresh_members(site)
    with site.step("wait until the peer's gossip sees the other members' peers"):
        readiness.wait_for_gossip(site, others)
    with site.step("publish this organization's revocation list in the channel (when it changed)"):
        revocations.publish_own(site)
    with site.step("commit a heartbeat through this organization's Gateway"):
        readiness.heartbeat(site)
    if readiness.record_membership(site):
        site.console.print(
            f"[green]✓[/] \\[{site.org.name}] recorded as a consortium member (Consortium:Join)"
        )


def start_services(site: Site) -> list[str]:
    with site.step("start the revocation follower, the artifact store and the admin API (mutual TLS)"):
        return site.start(SERVICES)


def hold_every_list(site: Site, timeout: float = LISTS_TIMEOUT) -> None:
    """Wait until the site's follower wrote every channel member's revocation list: without
    one its artifact store refuses all of that member's identities (fails closed)."""
    in_channel = (site.joined or {}).get("members") or {}
    names = [m.bundle.name for m in site.members.all() if m.bundle.msp_id in in_channel]
    with site.step("wait until this site holds every member's revocation list"):
        if not wait_until(lambda: not revocations.missing_lists(site.layout, names), timeout, 1.0):
            missing = ", ".join(revocations.missing_lists(site.layout, names))
            raise SiteError(
                f"{site.org.name}'s revocation follower holds no list of {missing} after "
                f"{timeout:.0f}s; see {site.layout.log(site.org.revocations_name)}"
            )


def up(site: Site) -> list[str]:
    started = start_core(site)
    ready(site)
    return started + start_services(site)
