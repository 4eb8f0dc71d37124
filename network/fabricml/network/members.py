"""The bundles a site has imported (and its own), kept as certificate files Fabric can read."""

from __future__ import annotations

import shutil
from pathlib import Path

from .bundle import BundleError, SignedBundle, read
from .layout import SiteLayout


class Members:
    """members/<org>/: bundle.json as received, and the MSP and TLS files made from it."""

    def __init__(self, site: SiteLayout) -> None:
        self.site = site

    def add(self, signed: SignedBundle, replace: bool = False) -> Path:
        """Keep a verified bundle; a different bundle for a known org or MSP ID needs `replace`."""
        b = signed.bundle
        for other in self.all():
            same_org = other.bundle.name == b.name or other.bundle.msp_id == b.msp_id
            if same_org and other.bundle.digest != b.digest and not replace:
                raise BundleError(
                    f"a different bundle for {other.bundle.name} ({other.bundle.msp_id}, fingerprint "
                    f"{other.bundle.fingerprint}) is already imported; compare fingerprints with its "
                    f"admin, then import with --replace"
                )
        home = self.site.member(b.name)
        if home.exists():
            shutil.rmtree(home)
        (home / "msp" / "cacerts").mkdir(parents=True)
        (home / "msp" / "tlscacerts").mkdir(parents=True)
        (home / "bundle.json").write_text(signed.to_json())
        (home / "msp" / "cacerts" / "ca.pem").write_text(b.ca_cert)
        (home / "msp" / "tlscacerts" / "ca.pem").write_text(b.tls_ca_cert)
        (home / "msp" / "config.yaml").write_text(b.body["nodeOUs"])
        (home / "tlsca.pem").write_text(b.tls_ca_cert)
        (home / "ca.pem").write_text(b.ca_cert + b.tls_ca_cert)
        for o in b.orderers:
            (home / "orderers" / o.name).mkdir(parents=True)
            (home / "orderers" / o.name / "tls.crt").write_text(o.tls_cert)
            (home / "orderers" / o.name / "identity.crt").write_text(o.identity_cert)
        return home

    def names(self) -> list[str]:
        if not self.site.members.is_dir():
            return []
        return sorted(p.parent.name for p in self.site.members.glob("*/bundle.json"))

    def get(self, name: str) -> SignedBundle:
        return read(self.site.member(name) / "bundle.json")

    def all(self) -> list[SignedBundle]:
        return [self.get(n) for n in self.names()]

    def by_msp_id(self, msp_id: str) -> SignedBundle | None:
        return next((m for m in self.all() if m.bundle.msp_id == msp_id), None)

    def msp_dir(self, name: str) -> Path:
        return self.site.member(name) / "msp"

    def tls_ca(self, name: str) -> Path:
        return self.site.member(name) / "tlsca.pem"

    def ca_bundle(self, name: str) -> Path:
        """Both CA certificates of a member: what its servers and clients are checked against."""
        return self.site.member(name) / "ca.pem"

    def orderer_file(self, name: str, orderer: str, which: str) -> Path:
        """which: tls.crt or identity.crt"""
        return self.site.member(name) / "orderers" / orderer / which
