"""Public bundles: signed by the org's admin, short fingerprint, and refusals of anything
tampered with, signed by the wrong party, or carrying a private key."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from fabricml.network import bundle
from fabricml.network.bundle import BundleError, SignedBundle
from fabricml.network.members import Members
from fabricml.network.site import Site, SiteError
from fabricml.network.topology import parse
from tests.certs import issue
from tests.sites.certs import FakeOrg


def _signed(org: FakeOrg, tmp_path: Path, body: dict[str, Any] | None = None) -> SignedBundle:
    key = org.admin.write_key(tmp_path / f"{org.name}-admin.key")
    return bundle.sign(body or org.body(), org.admin.pem, key)


def _write(tmp_path: Path, doc: dict[str, Any], name: str = "b.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def test_a_signed_bundle_verifies_and_has_a_short_stable_fingerprint(tmp_path: Path) -> None:
    org = FakeOrg.make("hospital")
    signed = _signed(org, tmp_path)
    path = tmp_path / "b.json"
    path.write_text(signed.to_json())
    again = bundle.read(path)
    assert again.bundle.fingerprint == signed.bundle.fingerprint
    assert len(again.bundle.fingerprint.split("-")) == 6 and len(again.bundle.fingerprint) == 29
    # Signing the same facts again (ECDSA signatures differ) gives the same fingerprint.
    assert _signed(org, tmp_path).bundle.fingerprint == signed.bundle.fingerprint


def test_a_changed_endpoint_after_signing_is_a_bad_signature(tmp_path: Path) -> None:
    org = FakeOrg.make("hospital")
    doc = json.loads(_signed(org, tmp_path).to_json())
    doc["bundle"]["peer"]["address"] = "10.6.6.6:7051"  # an attacker redirects the peer
    with pytest.raises(BundleError, match="bad signature"):
        bundle.read(_write(tmp_path, doc))


def test_a_bundle_with_a_private_key_inside_is_refused(tmp_path: Path) -> None:
    org = FakeOrg.make("hospital")
    body = org.body()
    body["nodeOUs"] = str(body["nodeOUs"]) + "\n" + org.admin.key_pem().decode()
    doc = {"bundle": body, "signer": org.admin.pem, "signature": base64.b64encode(b"x").decode()}
    with pytest.raises(BundleError, match="contains a private key"):
        bundle.read(_write(tmp_path, doc))
    with pytest.raises(BundleError, match="contains a private key"):  # the signer cannot sign one in either
        _signed(org, tmp_path, body)


def test_an_extra_field_is_refused_even_when_signed(tmp_path: Path) -> None:
    org = FakeOrg.make("hospital")
    body = {**org.body(), "caSecret": "hunter2"}
    with pytest.raises(BundleError, match="expected exactly"):
        _signed(org, tmp_path, body)


def test_a_bundle_signed_by_a_client_identity_of_the_org_is_refused(tmp_path: Path) -> None:
    org = FakeOrg.make("hospital")
    user = issue("user1", "client", org.ca)
    doc = json.loads(_signed(org, tmp_path).to_json())
    sig = user.key.sign(bundle.canonical(doc["bundle"]), ec.ECDSA(hashes.SHA256()))
    doc.update(signer=user.pem, signature=base64.b64encode(sig).decode())
    with pytest.raises(BundleError, match="not an admin"):
        bundle.read(_write(tmp_path, doc))


def test_a_bundle_signed_by_another_orgs_admin_is_refused(tmp_path: Path) -> None:
    victim, attacker = FakeOrg.make("hospital"), FakeOrg.make("insurer")
    key = attacker.admin.write_key(tmp_path / "attacker.key")
    with pytest.raises(BundleError, match="not issued by the bundle's CA"):
        bundle.sign(victim.body(), attacker.admin.pem, key)


def test_an_orderer_certificate_from_a_foreign_ca_is_refused(tmp_path: Path) -> None:
    org, other = FakeOrg.make("hospital"), FakeOrg.make("insurer")
    body = org.body()
    body["orderers"][0]["tlsCert"] = other.orderer_tls.pem  # type: ignore[index]
    with pytest.raises(BundleError, match=r"orderers\[0\]\.tlsCert was not issued by the bundle's own CA"):
        _signed(org, tmp_path, body)


def test_the_same_ca_for_tls_and_enrollment_is_refused(tmp_path: Path) -> None:
    org = FakeOrg.make("hospital")
    body = {**org.body(), "tlsCaCert": org.ca.pem}
    with pytest.raises(BundleError, match="TLS CA must be a different CA"):
        _signed(org, tmp_path, body)


def _site(tmp_path: Path, name: str = "clinic") -> Site:
    org = parse({"organizations": [{"name": name, "host": "127.0.99.2"}]}).organizations[0]
    return Site(org, tmp_path / name)


def test_import_checks_the_fingerprint_read_out_of_band(tmp_path: Path) -> None:
    site, org = _site(tmp_path), FakeOrg.make("hospital")
    path = tmp_path / "hospital.json"
    path.write_text(_signed(org, tmp_path).to_json())
    with pytest.raises(SiteError, match="do not import it"):
        site.import_bundle(path, fingerprint="0000-0000-0000-0000-0000-0000")
    assert Members(site.layout).names() == []
    signed = site.import_bundle(path, fingerprint=bundle.read(path).bundle.fingerprint.lower())
    assert Members(site.layout).names() == ["hospital"]
    assert (
        site.layout.member("hospital") / "msp" / "cacerts" / "ca.pem"
    ).read_text() == signed.bundle.ca_cert


def test_a_second_different_bundle_for_a_known_org_needs_replace(tmp_path: Path) -> None:
    site = _site(tmp_path)
    first, impostor = FakeOrg.make("hospital"), FakeOrg.make("hospital")  # same name, other CA
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(_signed(first, tmp_path).to_json())
    b.write_text(_signed(impostor, tmp_path).to_json())
    site.import_bundle(a)
    with pytest.raises(BundleError, match="a different bundle for hospital"):
        site.import_bundle(b)
    assert Members(site.layout).get("hospital").bundle.ca_cert == first.ca.pem
    site.import_bundle(b, replace=True)
    assert Members(site.layout).get("hospital").bundle.ca_cert == impostor.ca.pem


def test_a_bundle_claiming_the_importing_sites_own_name_is_refused(tmp_path: Path) -> None:
    site, org = _site(tmp_path, "clinic"), FakeOrg.make("clinic")
    path = tmp_path / "clinic.json"
    path.write_text(_signed(org, tmp_path).to_json())
    with pytest.raises(SiteError, match="claims this site's own name"):
        site.import_bundle(path)
    assert Members(site.layout).names() == []
