"""A joined site's directory read as a consortium directory, so the API, the artifact store
and every `--state-dir` command work on one site alone.

It adds `topology.yaml` (the members, from their bundles), `profiles/<org>.json` (the
connection profile) and `sites/<org>` links: this org's to the site itself, each
member's to the public files of its imported bundle. Nothing of another site is read."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from .bundle import SiteBundle
from .layout import SiteLayout
from .nodeconfig import write_json
from .profile import connection_profile
from .topology import PEER_PORT, Organization


def _member_entry(b: SiteBundle) -> dict[str, Any]:
    host, port = b.peer_address.rsplit(":", 1)
    return {
        "name": b.name,
        "mspId": b.msp_id,
        "host": host,
        "ports": {"base": int(port) - PEER_PORT},  # sites place their peer at base + 10
        "orderers": len(b.orderers),
    }


def topology(site_name: str, joined: dict[str, Any], members: list[SiteBundle]) -> dict[str, Any]:
    return {
        "name": f"site-{site_name}",
        "channel": joined["channel"],
        "consensus": joined["consensus"],
        "endorsement": joined["endorsement"],
        "batchTimeout": f"{joined['batchTimeoutMs']}ms",
        "chaincode": {"name": joined["chaincode"], "version": joined["version"]},
        "ports": {"base": min(_member_entry(b)["ports"]["base"] for b in members)},
        "organizations": [_member_entry(b) for b in members],
    }


def _link(link: Path, target: str) -> None:
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(target, link)


def write(org: Organization, site: SiteLayout, joined: dict[str, Any], members: list[SiteBundle]) -> Path:
    """Write the view; returns the connection profile's path."""
    site.topology_view.write_text(yaml.safe_dump(topology(org.name, joined, members), sort_keys=False))
    links = site.root / "sites"
    links.mkdir(exist_ok=True)
    for m in members:
        _link(links / m.name, ".." if m.name == org.name else f"../members/{m.name}")
    profile = site.profile(org.name)
    write_json(profile, connection_profile(org, site, joined["channel"], joined["chaincode"], members))
    return profile
