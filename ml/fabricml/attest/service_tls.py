"""Mutual TLS of an org's inference service: its server certificate (issued once by the
org's CA, as the admin API's is), whom it trusts as callers, and a caller's TLS context."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from fabricml.network.identities import CertificateAuthority, IdentitySpec
from fabricml.network.network import Network
from fabricml.network.topology import HOST, Organization


@dataclass(frozen=True)
class ServiceTrust:
    own_ca: Path  # its admins may have claims answered
    member_cas: tuple[Path, ...]  # any member's identity may read receipts' proofs
    crls: tuple[Path, ...]  # each member CA's revocation list, as its `gencrl` writes it


def trust(net: Network, org: Organization) -> ServiceTrust:
    members = net.topology.organizations
    return ServiceTrust(
        net.layout.ca_cert(org),
        tuple(net.layout.ca_cert(m) for m in members),
        tuple(member_crl(net, m) for m in members),
    )


def member_crl(net: Network, member: Organization) -> Path:
    """A member's revocation list: a site has no other member's CA directory, only each member's
    list as the channel carries it (its revocation follower's revocations/<name>.crl.pem);
    a local consortium's directory reaches every CA's own."""
    from_channel = net.layout.root / "revocations" / f"{member.name}.crl.pem"
    if from_channel.exists():
        return from_channel
    return net.layout.ca_home(member) / "registrar" / "msp" / "crls" / "crl.pem"


def server_identity(identity: str, org: Organization) -> IdentitySpec:
    """The identity whose TLS certificate the service of `identity` serves with: valid for
    127.0.0.1 and for the org's own host names (where a site's service listens)."""
    hosts = tuple(dict.fromkeys((HOST, "localhost", *org.tls_hosts)))
    return IdentitySpec(f"{identity}-tls", "client", tls=True, hosts=hosts)


def server_certificate(net: Network, org: Organization, identity: str) -> tuple[Path, Path]:
    """(certificate, key) the service serves with; issued through the org's CA the first time."""
    spec = server_identity(identity, org)
    tls = net.layout.tls(org, spec.name)
    if not (tls / "server.crt").exists():
        ca = CertificateAuthority(net.binaries, net.layout, org)
        ca.register(spec)
        ca.enroll(spec)
    return tls / "server.crt", tls / "server.key"


def client_context(net: Network, org: Organization, caller: tuple[Path, Path] | None) -> ssl.SSLContext:
    """TLS towards org's service, presenting caller's (certificate, key) when given."""
    ctx = ssl.create_default_context(cafile=str(net.layout.ca_cert(org)))
    if caller is not None:
        ctx.load_cert_chain(*caller)
    return ctx


def identity_files(net: Network, org: Organization, identity: str) -> tuple[Path, Path]:
    """(certificate, key) of one of org's enrolled identities, to call a service as."""
    msp = net.layout.msp(org, identity)
    return msp / "signcerts" / "cert.pem", next((msp / "keystore").iterdir())
