"""Where a network's state lives: crypto material, node homes, ledgers, logs, pids."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .binaries import REPO_ROOT
from .topology import Organization


def default_state_dir(network_name: str) -> Path:
    base = os.environ.get("FABRICML_HOME")
    return Path(base) / network_name if base else REPO_ROOT / ".fabricml" / network_name


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def topology_copy(self) -> Path:
        """The topology the network was brought up with, so later commands need no flag."""
        return self.root / "topology.yaml"

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def processes(self) -> Path:
        return self.root / "processes.json"

    @property
    def profiles(self) -> Path:
        return self.root / "profiles"

    @property
    def chaincode(self) -> Path:
        return self.root / "chaincode"

    def genesis_block(self, channel: str) -> Path:
        return self.config / f"{channel}.block"

    def ca_home(self, org: Organization) -> Path:
        return self.root / "ca" / org.name

    def org_dir(self, org: Organization) -> Path:
        return self.root / "orgs" / org.name

    def org_msp(self, org: Organization) -> Path:
        return self.org_dir(org) / "msp"

    def ca_cert(self, org: Organization) -> Path:
        """The org's root CA certificate; it signs both enrollment and TLS certificates."""
        return self.org_dir(org) / "ca.pem"

    def identity(self, org: Organization, name: str) -> Path:
        return self.org_dir(org) / "identities" / name

    def msp(self, org: Organization, name: str) -> Path:
        return self.identity(org, name) / "msp"

    def tls(self, org: Organization, name: str) -> Path:
        return self.identity(org, name) / "tls"

    def node_home(self, node: str) -> Path:
        return self.root / "nodes" / node

    def log(self, node: str) -> Path:
        return self.logs / f"{node}.log"

    def artifact_store(self, org: Organization) -> Path:
        """The org's local content-addressed artifact store."""
        return self.root / "artifacts" / org.name

    def profile(self, org: Organization) -> Path:

        return self.profiles / f"{org.name}.json"
