"""Who is calling: the client certificate of the TLS connection, issued by this org's CA.

The server asks every client for a certificate during the TLS handshake and accepts
those issued by any member org's CA (so another member gets a clear 403, not a broken
connection); only this org's identities with an API role pass, and none whose
certificate the org's CA revoked: without a usable revocation list nobody passes (503)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from fabricml.attest.receipts import role_of
from fabricml.gateway.identity import issued_by
from fabricml.registry.crl import RevocationFiles, RevocationUnknown

ROLES = ("admin", "auditor")


class AuthError(Exception):
    """401 (no usable certificate), 403 (a certificate, but not allowed) or 503 (the
    revocation list is unusable, so no certificate can be trusted now)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Caller:
    """An authenticated API user."""

    subject: str
    msp_id: str
    role: str  # admin or auditor
    fingerprint: str  # sha256 of the certificate, for logs and rate limits

    @property
    def can_write(self) -> bool:
        return self.role == "admin"


def api_role(cert: x509.Certificate) -> str:
    """admin for the org's admin identities (NodeOU), auditor for role=auditor, else ''."""
    units = [str(a.value) for a in cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)]
    if "admin" in units:
        return "admin"
    return "auditor" if role_of(cert) == "auditor" else ""


class CertificateAuthenticator:
    def __init__(self, msp_id: str, own_ca: Path, member_cas: dict[str, Path], crl: Path) -> None:
        self.msp_id = msp_id
        self.own_ca = x509.load_pem_x509_certificate(own_ca.read_bytes())
        self.member_cas = {m: x509.load_pem_x509_certificate(p.read_bytes()) for m, p in member_cas.items()}
        self.crl_path = crl
        self.revocations = RevocationFiles([crl], [self.own_ca])
        self.group_of = lru_cache(maxsize=4096)(self._group_of)

    def _group_of(self, pem: str) -> str:
        """Whom a certificate's requests count against, beside itself: its org, and within
        this org its API role, so that another org's (or a role-less identity's) certificates,
        however many it mints, share one budget and never the admins'."""
        try:
            cert = x509.load_pem_x509_certificate(pem.encode())
        except ValueError:
            return "unreadable"
        if issued_by(cert, self.own_ca):
            return f"{self.msp_id}/{api_role(cert) or 'none'}"
        return next((m for m, ca in self.member_cas.items() if issued_by(cert, ca)), "unknown")

    def is_revoked(self, cert: x509.Certificate) -> bool:
        """Whether the org CA's latest revocation list names it; 503 when no list is usable."""
        try:
            return self.revocations.is_revoked(cert)
        except RevocationUnknown as exc:
            raise AuthError(
                503, f"{self.msp_id}'s API cannot check revocations, so it refuses every certificate: {exc}"
            ) from None

    def authenticate(self, pem: str | None) -> Caller:
        if not pem:
            raise AuthError(
                401, f"a client certificate issued by {self.msp_id}'s CA is required (mutual TLS)"
            )
        cert = x509.load_pem_x509_certificate(pem.encode())
        if not issued_by(cert, self.own_ca):
            foreign = next((m for m, ca in self.member_cas.items() if issued_by(cert, ca)), "an unknown CA")
            raise AuthError(403, f"this API acts for {self.msp_id} only; the certificate is from {foreign}")
        cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        subject = str(cn[0].value) if cn else "?"
        if self.is_revoked(cert):
            raise AuthError(401, f"the certificate of {subject} is revoked")
        role = api_role(cert)
        if role not in ROLES:
            raise AuthError(
                403, f"{subject} of {self.msp_id} has no API role (needs an admin or auditor identity)"
            )
        der = cert.public_bytes(serialization.Encoding.DER)
        return Caller(subject, self.msp_id, role, hashlib.sha256(der).hexdigest())
