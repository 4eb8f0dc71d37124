"""Where state lives: one site's directory, and a local consortium's directory of sites."""

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
class SiteLayout:
    """One organization's site directory (mode 0700): everything it owns, and copies of
    the public material it was given (members' bundles, the genesis block)."""

    root: Path

    @property
    def site_file(self) -> Path:
        return self.root / "site.yaml"

    @property
    def ca_home(self) -> Path:
        return self.root / "ca"

    @property
    def tls_ca_home(self) -> Path:
        """The TLS CA, a second CA in the same Fabric CA server: TLS keys are no MSP identities."""
        return self.ca_home / "tlsca"

    @property
    def operator_ca_home(self) -> Path:
        """The operator CA, a third CA in the same server: it issues the admin's operator
        certificate and nothing else, so only that certificate opens osnadmin and /logspec."""
        return self.ca_home / "opsca"

    @property
    def operator_ca_cert(self) -> Path:
        return self.operator_ca_home / "ca-cert.pem"

    @property
    def operator(self) -> Path:
        """The org admin's operator client certificate and key (kept with the admin's identity)."""
        return self.identity("admin") / "operator"

    @property
    def operator_cert(self) -> Path:
        return self.operator / "client.crt"

    @property
    def operator_key(self) -> Path:
        return self.operator / "client.key"

    @property
    def msp(self) -> Path:
        """The organization's public MSP (CA and TLS CA certificates, NodeOU config)."""
        return self.root / "msp"

    @property
    def identity_ca_cert(self) -> Path:
        return self.msp / "cacerts" / "ca.pem"

    @property
    def tls_ca_cert(self) -> Path:
        return self.msp / "tlscacerts" / "ca.pem"

    @property
    def ca_cert(self) -> Path:
        """Both CA certificates, the enrollment CA first: what clients of the site trust."""
        return self.root / "ca.pem"

    def identity(self, name: str) -> Path:
        return self.root / "identities" / name

    def identity_msp(self, name: str) -> Path:
        return self.identity(name) / "msp"

    def identity_tls(self, name: str) -> Path:
        return self.identity(name) / "tls"

    def node_home(self, node: str) -> Path:
        return self.root / "nodes" / node

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, node: str) -> Path:
        return self.logs / f"{node}.log"

    @property
    def processes(self) -> Path:
        return self.root / "processes.json"

    @property
    def revocations(self) -> Path:
        """Members' revocation lists as the channel carries them (the site's follower writes them)."""
        return self.root / "revocations"

    def member_crl(self, name: str) -> Path:
        return self.revocations / f"{name}.crl.pem"

    @property
    def revocations_ready(self) -> Path:
        """Written by the follower once it wrote the lists of the config in force."""
        return self.revocations / "ready"

    @property
    def restarts(self) -> Path:
        """Which nodes `network watch` restarted, how often, last when and why."""
        return self.root / "restarts.json"

    @property
    def artifact_store(self) -> Path:
        return self.root / "artifacts"

    def profile(self, name: str) -> Path:
        """The site's connection profile (named after its org, where clients look for it)."""
        return self.root / "profiles" / f"{name}.json"

    @property
    def topology_view(self) -> Path:
        """The site read as a one-org consortium directory (see siteview)."""
        return self.root / "topology.yaml"

    @property
    def chaincode(self) -> Path:
        return self.root / "chaincode"

    @property
    def deployment(self) -> Path:
        return self.root / "deployment.json"

    @property
    def outbox(self) -> Path:
        """What this site hands to others: its bundle, and (founder) the genesis block."""
        return self.root / "outbox"

    @property
    def bundle(self) -> Path:
        return self.outbox / "bundle.json"

    @property
    def members(self) -> Path:
        return self.root / "members"

    def member(self, name: str) -> Path:
        """An imported member's public bundle and the certificate files made from it."""
        return self.members / name

    @property
    def channel(self) -> Path:
        return self.root / "channel"

    def genesis_block(self, channel: str) -> Path:
        return self.channel / f"{channel}.block"

    def join_block(self, channel: str) -> Path:
        """The config block a site joined a running channel with (its orderers start there)."""
        return self.channel / f"{channel}.join.block"

    @property
    def channel_file(self) -> Path:
        """The channel this site joined and the chaincode definition it approved."""
        return self.channel / "joined.json"


def org_of_node(node: str) -> str:
    """peer0.org1 -> org1: node names end with their organization's name."""
    return node.split(".", 1)[1] if "." in node else node


@dataclass(frozen=True)
class Layout:
    """A local consortium: one site directory per organization, the files they exchanged,
    and connection profiles in the place clients have always read them from."""

    root: Path

    @property
    def topology_copy(self) -> Path:
        """The topology the consortium was brought up with, so later commands need no flag."""
        return self.root / "topology.yaml"

    def site(self, org: Organization | str) -> SiteLayout:
        name = org if isinstance(org, str) else org.name
        return SiteLayout(self.root / "sites" / name)

    def site_file(self, org: Organization) -> Path:
        return self.root / "sites" / f"{org.name}.yaml"

    @property
    def exchange(self) -> Path:
        """Files passed between the sites: bundles, the genesis block, the definition."""
        return self.root / "exchange"

    @property
    def profiles(self) -> Path:
        return self.root / "profiles"

    def profile(self, org: Organization) -> Path:
        return self.profiles / f"{org.name}.json"

    def genesis_block(self, channel: str) -> Path:
        return self.exchange / f"{channel}.block"

    # The paths below name one site's files the way the single-directory network did.

    def ca_home(self, org: Organization) -> Path:
        return self.site(org).ca_home

    def org_dir(self, org: Organization) -> Path:
        return self.site(org).root

    def org_msp(self, org: Organization) -> Path:
        return self.site(org).msp

    def ca_cert(self, org: Organization) -> Path:
        return self.site(org).ca_cert

    def identity(self, org: Organization, name: str) -> Path:
        return self.site(org).identity(name)

    def msp(self, org: Organization, name: str) -> Path:
        return self.site(org).identity_msp(name)

    def tls(self, org: Organization, name: str) -> Path:
        return self.site(org).identity_tls(name)

    def node_home(self, node: str) -> Path:
        return self.site(org_of_node(node)).node_home(node)

    def log(self, node: str) -> Path:
        return self.site(org_of_node(node)).log(node)

    def artifact_store(self, org: Organization) -> Path:
        return self.site(org).artifact_store
