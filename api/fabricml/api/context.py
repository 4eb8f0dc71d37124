"""Everything one org's API process holds open: its network's facts, ledger and guards."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fabricml.gateway.profile import ConnectionProfile
from fabricml.network.layout import Layout
from fabricml.network.network import Network
from fabricml.network.topology import Organization, Topology, load

from .activity import ActivityIndex, EventFollower
from .auth import CertificateAuthenticator
from .ledger import OrgLedger
from .settings import ApiSettings


@dataclass
class ApiContext:
    settings: ApiSettings
    topology: Topology
    org: Organization
    layout: Layout
    profile: ConnectionProfile
    ledger: OrgLedger
    authenticator: CertificateAuthenticator
    activity: ActivityIndex
    follower: EventFollower | None

    @property
    def network(self) -> Network:
        return Network(self.topology, self.layout.root)

    def close(self) -> None:
        if self.follower is not None:
            self.follower.stop()
        self.ledger.close()


def api_port(org: Organization) -> int:
    return org.api_port


def tls_files(layout: Layout, org: Organization) -> tuple[Path, Path]:
    """The API's TLS server certificate and key, issued by the org's CA at bring-up."""
    tls = layout.tls(org, "api")
    return tls / "server.crt", tls / "server.key"


def open_context(settings: ApiSettings) -> ApiContext:
    layout = Layout(settings.state_dir.resolve())
    if not layout.topology_copy.exists():
        raise ValueError(f"no network state in {layout.root}; run `fabricml network up` first")
    topology = load(layout.topology_copy)
    org = topology.org(settings.org)
    profile = ConnectionProfile.load(layout.profile(org))
    ledger = OrgLedger(profile, settings.ledger_timeout_s)
    authenticator = CertificateAuthenticator(
        org.msp_id,
        layout.ca_cert(org),
        {o.msp_id: layout.ca_cert(o) for o in topology.organizations if o.name != org.name},
        layout.ca_home(org) / "registrar" / "msp" / "crls" / "crl.pem",
    )
    activity = ActivityIndex()
    follower = None
    if settings.follow_events:
        follower = EventFollower(ledger, settings.auditor_identity, activity)
        follower.start()
    return ApiContext(settings, topology, org, layout, profile, ledger, authenticator, activity, follower)
