"""A newcomer organization's own site, run through the site commands as its operator runs them.

It has its own site file, loopback address and state directory. Only public files cross
between it and the consortium: the members' bundles (to its site), its bundle (to the
members) and the channel's latest config block (from a member)."""

from __future__ import annotations

import json
from pathlib import Path

from fabricml.network.bundle import read as read_bundle
from fabricml.network.site import Site
from fabricml.network.sitefile import load as load_site_file
from fabricml.network.topology import Organization
from tests.conftest import fabricml


class Newcomer:
    """Org `name` at `host`, ports from `base`, its site in scratch/<name>."""

    def __init__(self, scratch: Path, name: str, host: str, base: int) -> None:
        scratch.mkdir(parents=True, exist_ok=True)
        self.site_file = scratch / f"{name}.site.yaml"
        self.site_file.write_text(f"name: {name}\nhost: {host}\nports:\n  base: {base}\norderers: 1\n")
        self.state_dir = scratch / name
        self.bundle = scratch / f"{name}.bundle.json"
        self.fingerprint = ""

    @property
    def org(self) -> Organization:
        return load_site_file(self.site_file)

    @property
    def where(self) -> list[str]:
        return ["--state-dir", str(self.state_dir)]

    @property
    def orderer(self) -> str:
        return self.org.orderers[0].address

    def site(self) -> Site:
        return Site.open(self.state_dir)

    def init_and_export(self) -> str:
        """`site init`, then `site export`: the bundle file and the fingerprint it prints."""
        fabricml("site", "init", "--site-file", str(self.site_file), *self.where)
        out = fabricml("site", "export", *self.where, "--out", str(self.bundle))
        self.fingerprint = out.stdout.strip().splitlines()[-1]
        return self.fingerprint

    def import_members(self, bundles: list[Path]) -> None:
        """Each member's bundle, its fingerprint compared (here: read from the file)."""
        for path in bundles:
            fp = read_bundle(path).bundle.fingerprint
            fabricml("site", "import", str(path), "--fingerprint", fp, *self.where)

    def join(self, config_block: Path) -> str:
        """`site join` with the latest config block (reviewed, then joined); its output."""
        return fabricml("site", "join", "--block", str(config_block), *self.where, "--yes").stderr

    def up(self) -> None:
        fabricml("site", "up", *self.where)

    def orderer_relation(self) -> dict[str, object]:
        """osnadmin's view of the channel on the newcomer's own orderer."""
        site = self.site()
        out = site.tools.osnadmin(site.org.orderers[0], "channel", "list", "--channelID", site.channel)
        return dict(json.loads(out[out.index("{") :]))

    def stop(self) -> None:
        if self.state_dir.exists():
            fabricml("site", "down", *self.where, check=False)
