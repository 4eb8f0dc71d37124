"""The local consortium is three sites, founded through the site commands it printed."""

from __future__ import annotations

import stat

from cryptography import x509

from fabricml.network.network import Network
from tests.conftest import bring_up_log
from tests.sites.scan import assert_no_site_holds_anothers_secrets

STEPS = (
    "site init",
    "site export",
    "site import",
    "consortium create",
    "site join",
    "chaincode commit",
    "site up",
)


def test_bring_up_ran_the_site_commands_in_order_and_printed_each(network: Network) -> None:
    log = bring_up_log(network)
    positions = [log.find(f"$ fabricml {step} ") for step in STEPS]
    assert -1 not in positions and positions == sorted(positions), dict(zip(STEPS, positions, strict=True))
    assert log.count("$ fabricml site import ") == 6  # each of three sites imports the other two bundles


def test_each_organization_is_a_private_site_with_its_own_ca_and_tls_ca(network: Network) -> None:
    for org in network.topology.organizations:
        site = network.layout.site(org)
        assert stat.S_IMODE(site.root.stat().st_mode) == 0o700
        ca = x509.load_pem_x509_certificate(site.identity_ca_cert.read_bytes())
        tls_ca = x509.load_pem_x509_certificate(site.tls_ca_cert.read_bytes())
        peer_tls = x509.load_pem_x509_certificate((site.identity_tls("peer0") / "server.crt").read_bytes())
        peer_tls.verify_directly_issued_by(tls_ca)
        assert ca.subject != tls_ca.subject and peer_tls.issuer == tls_ca.subject
        assert network.layout.profile(org).read_text() == site.profile(org.name).read_text()


def test_no_site_holds_a_private_key_or_secret_of_another(network: Network) -> None:
    assert_no_site_holds_anothers_secrets(
        {o.name: network.layout.site(o).root for o in network.topology.organizations}
    )
