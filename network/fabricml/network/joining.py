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
from .lifecycle import Lifecycle
from .peercli import FabricCommandError, json_tail, until_done
from .processes import wait_until
from .site import Site, SiteError
from .status import peer_height


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


def join(
    site: Site, block: Path, definition: Definition | None, confirm: Callable[[list[str]], bool]
) -> Deployment:
    """Join the channel described by `block`; `confirm` sees the review and may refuse.

    A genesis block founds the channel with the founder's `definition`. A later config block
    (an org added by a proposal) joins a running channel: the orderers start from that block,
    the peer from block 0, and the site approves the chaincode definition committed there."""
    review, members = review_block(site, block)
    if not confirm(review.lines()):
        raise SiteError("join refused after review; nothing was changed")
    if definition is None and review.block_number == 0:
        raise SiteError("founding a channel needs the founder's chaincode definition (--definition)")
    channel = review.channel
    site.layout.channel.mkdir(parents=True, exist_ok=True)
    start_block = (
        site.layout.genesis_block(channel) if review.block_number == 0 else site.layout.join_block(channel)
    )
    if block.resolve() != start_block.resolve():
        shutil.copy(block, start_block)
    site.save_joined(joined_record(review, definition or Definition(), members))
    with site.step("start the orderers and the peer"):
        site.start(("ca", "orderer", "peer"))
    join_orderers(site, channel, start_block)
    if review.block_number > 0:
        fetch_genesis(site, channel)
    join_peer(site, channel)
    if review.block_number > 0:
        definition = catch_up(site, review.block_number, definition)
        site.save_joined(joined_record(review, definition, members))
    assert definition is not None
    siteview.write(site.org, site.layout, dict(site.joined or {}), [m.bundle for m in members])
    return run_and_approve(site, definition)


def run_and_approve(site: Site, definition: Definition) -> Deployment:
    """Install this site's own package, serve it, set the anchor peer, approve the definition."""
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


def join_orderers(site: Site, channel: str, start_block: Path) -> None:
    block = str(start_block)
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


def fetch_genesis(site: Site, channel: str) -> None:
    """Block 0 of a running channel, fetched by this site's admin from its own orderer (or a
    member's): a peer joins from the genesis block. An orderer that joined with a later
    config block serves block 0 only once it has pulled the chain from the others."""
    path = site.layout.genesis_block(channel)

    def attempt() -> str:
        fetched = path.with_suffix(".fetching")
        out = site.tools.peer(
            "channel", "fetch", "0", str(fetched), "-c", channel, *site.tools.orderer_args()
        )
        fetched.replace(path)
        return out

    with site.step(f"fetch block 0 of {channel!r} from the ordering service"):
        until_done(path.exists, attempt, "fetching the genesis block", timeout=300, delay=3)


def catch_up(site: Site, join_number: int, given: Definition | None) -> Definition:
    """Wait until the peer has the chain up to the join block; the committed definition."""
    with site.step(f"wait until {site.org.peer_name} has caught up past block {join_number}"):
        if not wait_until(lambda: (peer_height(site) or 0) > join_number, 300):
            raise SiteError(f"{site.org.peer_name} did not reach block {join_number} in 300s")
    name = given.chaincode if given else Definition().chaincode
    committed = Lifecycle(site.tools, name).committed()
    if committed is None:
        raise SiteError(
            f"no definition of chaincode {name!r} is committed on the channel; nothing to approve"
        )
    current = Definition(name, str(committed["version"]), int(committed["sequence"]))
    if given is not None and given != current:
        raise SiteError(
            f"the channel runs {name} {current.version} (sequence {current.sequence}), "
            f"not the given definition's {given.version} (sequence {given.sequence})"
        )
    return current


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
