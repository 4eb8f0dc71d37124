"""`fabricml site join`: review the genesis block, join this site's orderers and peer, set
its anchor peer, install the chaincode package it builds itself and approve the definition.

Every step asks Fabric whether it is already done, so a join interrupted half-way is
finished by running it again."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import genesis, siteview
from .bundle import SignedBundle
from .chaincode import Deployment, package, server_binary
from .channelconfig import ChannelConfig
from .founding import Definition
from .peercli import FabricCommandError, json_tail, until_done
from .site import Site, SiteError


@dataclass(frozen=True)
class Approval:
    definition: Definition
    deployment: Deployment


def approved(site: Site) -> Approval | None:
    path = site.layout.chaincode / "approved.json"
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    return Approval(Definition(**raw["definition"]), Deployment(**raw["deployment"]))


def save_approved(site: Site, approval: Approval) -> None:
    path = site.layout.chaincode / "approved.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {"definition": approval.definition.__dict__, "deployment": approval.deployment.__dict__},
            indent=2,
            sort_keys=True,
        )
    )


def joined_record(
    review: genesis.ChannelReview, definition: Definition, members: list[SignedBundle]
) -> dict[str, Any]:
    endorsement = review.policies["endorsement (Application Endorsement)"].split(" ", 1)[0]
    return {
        "channel": review.channel,
        "consensus": "bft" if review.consensus == "BFT" else "raft",
        "endorsement": endorsement,
        "batchTimeoutMs": _milliseconds(review.batch_timeout),
        "chaincode": definition.chaincode,
        "version": definition.version,
        "sequence": definition.sequence,
        "members": {m.bundle.msp_id: m.bundle.fingerprint for m in members},
    }


def _milliseconds(duration: str) -> int:
    if duration.endswith("ms"):
        return int(float(duration[:-2]))
    return int(float(duration.rstrip("s")) * 1000)


def review_block(site: Site, block: Path) -> tuple[genesis.ChannelReview, list[SignedBundle]]:
    """What the block says, checked against this site's imported bundles (raises GenesisError)."""
    review = genesis.review(site.binaries, block)
    return review, genesis.check_members(review, site.org.msp_id, site.members)


def join(site: Site, block: Path, definition: Definition, confirm: Callable[[list[str]], bool]) -> Deployment:
    """Join the channel described by `block`; `confirm` sees the review and may refuse."""
    review, members = review_block(site, block)
    if not confirm(review.lines()):
        raise SiteError("join refused after review; nothing was changed")
    site.layout.channel.mkdir(parents=True, exist_ok=True)
    if block.resolve() != site.layout.genesis_block(review.channel).resolve():
        shutil.copy(block, site.layout.genesis_block(review.channel))
    joined = joined_record(review, definition, members)
    site.save_joined(joined)
    with site.step("start the orderers and the peer"):
        site.start(("ca", "orderer", "peer"))
    join_orderers(site, review.channel)
    join_peer(site, review.channel)
    siteview.write(site.org, site.layout, joined, [m.bundle for m in members])
    deployment = install(site, definition)
    site.layout.deployment.write_text(deployment.to_json())
    with site.step("start the chaincode server (chaincode as a service, mutual TLS with the peer)"):
        site.start(("chaincode",))
    with site.step("set this organization's anchor peer (config update signed by its admin)"):
        ChannelConfig(site.tools).set_anchor_peer(site.org)
    with site.step(f"approve {definition.chaincode} {definition.version} (sequence {definition.sequence})"):
        site.lifecycle.approve(definition.version, deployment.package_id, definition.sequence)
    save_approved(site, Approval(definition, deployment))
    return deployment


def join_orderers(site: Site, channel: str) -> None:
    block = str(site.layout.genesis_block(channel))
    for o in site.org.orderers:

        def joined(o: Any = o) -> bool:
            try:
                listing = json_tail(site.tools.osnadmin(o, "channel", "list"))
            except (FabricCommandError, ValueError):
                return False
            return channel in [c.get("name") for c in listing.get("channels") or []]

        def attempt(o: Any = o) -> str:
            return site.tools.osnadmin(o, "channel", "join", "--channelID", channel, "--config-block", block)

        with site.step(f"join {o.name} to {channel!r} (osnadmin, this site's admin TLS key)"):
            until_done(joined, attempt, f"{o.name} joining")


def peer_channels(site: Site) -> list[str]:
    """Channels the site's peer has joined (`peer channel list`)."""
    out = site.tools.peer("channel", "list")
    lines = out.strip().splitlines()
    return [line.strip() for line in lines[1:]] if lines else []


def join_peer(site: Site, channel: str) -> None:
    def joined() -> bool:
        try:
            return channel in peer_channels(site)
        except FabricCommandError:
            return False

    with site.step(f"join {site.org.peer_name} to {channel!r}"):
        until_done(
            joined,
            lambda: site.tools.peer("channel", "join", "-b", str(site.layout.genesis_block(channel))),
            f"{site.org.peer_name} joining",
        )


def install(site: Site, definition: Definition) -> Deployment:
    """Build this site's own package and server for the definition and install the package."""
    label = f"{definition.chaincode}_{definition.version}"
    out = site.layout.chaincode / definition.version
    with site.step(f"build and install chaincode package {label}"):
        pkg = out / f"{label}.tar.gz"
        package_id = package(label, pkg)
        binary = server_binary(definition.version, out)
        site.lifecycle.install(pkg, package_id)
    return Deployment(definition.version, definition.sequence, package_id, str(binary))
