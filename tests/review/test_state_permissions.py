"""Who on the host may read a site's CA secrets (review finding R3).

The CA's fabric-ca-server-config.yaml holds the bootstrap registrar's password in plain
text; fabric-ca-server.db, the CA keys and the Idemix IssuerSecretKey were 0644. A site is
0700, but a copied or re-permissioned folder must not open them: each file is 0600 itself."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from fabricml.network.network import Network


def _secret_file(path: Path, secrets: list[str]) -> bool:
    data = path.read_bytes()
    holds = any(s.encode() in data for s in secrets) or b"PRIVATE KEY" in data
    return holds or path.name in ("IssuerSecretKey", "IssuerRevocationPrivateKey", "fabric-ca-server.db")


def test_no_file_that_holds_a_ca_secret_is_open_to_group_or_others(network: Network) -> None:
    root = network.layout.root
    exposed = []
    for org in network.topology.organizations:
        home = network.layout.ca_home(org)
        secrets = list(json.loads((home / "secrets.json").read_text()).values())
        for p in home.rglob("*"):
            if not p.is_file() or p.is_symlink() or not _secret_file(p, secrets):
                continue
            if p.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                exposed.append(f"{p.relative_to(root)} {stat.filemode(p.stat().st_mode)}")
    assert not exposed, f"open to group or others: {exposed}"


def test_every_site_and_the_state_directory_are_private(network: Network) -> None:
    folders = [network.layout.site(o).root for o in network.topology.organizations]
    open_ = [str(f) for f in folders if f.stat().st_mode & 0o077]
    assert not open_, f"sites open to group or others: {open_}"
