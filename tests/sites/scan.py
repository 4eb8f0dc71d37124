"""Scan sites' files: no site may hold a private key or enrollment secret of another site."""

from __future__ import annotations

import json
from pathlib import Path


def secrets_of(site: Path) -> list[bytes]:
    """Every private key (its base64 body) and enrollment secret a site holds."""
    found = []
    for p in site.rglob("*"):
        if p.is_file() and not p.is_symlink():
            data = p.read_bytes()
            if b"PRIVATE KEY-----" in data:
                found += [
                    block.split(b"-----END")[0].strip() for block in data.split(b"PRIVATE KEY-----\n")[1:]
                ]
    found += [v.encode() for v in json.loads((site / "ca" / "secrets.json").read_text()).values()]
    return [s for s in found if len(s) >= 16]


def assert_no_site_holds_anothers_secrets(sites: dict[str, Path]) -> None:
    for owner, root in sites.items():
        secrets = secrets_of(root)
        assert len(secrets) >= 20, f"{owner}: expected its keys and secrets, found {len(secrets)}"
        for other, other_root in sites.items():
            if other == owner:
                continue
            for p in other_root.rglob("*"):
                if p.is_file() and not p.is_symlink():
                    data = p.read_bytes()
                    leaked = [s[:12] for s in secrets if s in data]
                    assert not leaked, f"{p} (site {other}) holds {owner}'s secret(s) {leaked}"
