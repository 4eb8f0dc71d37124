"""The site file: one organization's name, MSP ID, address, ports and orderer count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .topology import PORTS_PER_ORG, Organization, TopologyError, organization, read_yaml

KEYS = ("name", "mspId", "host", "hostnames", "ports", "orderers")
EXAMPLE = """\
name: org1            # lowercase letters, digits and '-'
mspId: Org1MSP        # optional; derived from the name
host: 127.0.1.1       # every node listens on and advertises this address (IPv4 or DNS name)
hostnames: []         # optional: more names the TLS certificates carry
ports:
  base: 7000          # the site uses base .. base+99 (see `fabricml network ports`)
orderers: 1           # 0 to 4
"""


class SiteFileError(TopologyError):
    """The site file is invalid; the message names the field and what is allowed."""


def parse(raw: Any, source: str = "site file") -> Organization:
    if not isinstance(raw, dict):
        raise SiteFileError(f"{source} must be a mapping; for example:\n{EXAMPLE}")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise SiteFileError(f"{source}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(KEYS)}")
    ports = raw.get("ports") or {}
    base = ports.get("base") if isinstance(ports, dict) else None
    if type(base) is not int or not 1024 <= base <= 65535 - PORTS_PER_ORG:
        raise SiteFileError(
            f"ports.base is {base!r}; allowed: an integer from 1024 to {65535 - PORTS_PER_ORG}"
        )
    try:
        return organization(0, raw, base, "", None)
    except SiteFileError:
        raise
    except TopologyError as exc:
        raise SiteFileError(f"{source}: {exc}") from None


def load(path: Path) -> Organization:
    raw = read_yaml(path, "site file", SiteFileError, f"; for example:\n{EXAMPLE}")
    return parse(raw, f"site file {path}")


def render(org: Organization) -> str:
    """The site file of an organization (e.g. one of a local consortium's)."""
    data: dict[str, Any] = {"name": org.name, "mspId": org.msp_id, "host": org.host}
    if org.extra_hosts:
        data["hostnames"] = list(org.extra_hosts)
    data["ports"] = {"base": org.base_port}
    data["orderers"] = org.orderer_count
    return yaml.safe_dump(data, sort_keys=False)
