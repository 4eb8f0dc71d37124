"""Throw-away CAs, certificates and CRLs for unit tests of certificate checks (no Fabric CA)."""

from __future__ import annotations

import datetime
import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fabricml.attest.receipts import FABRIC_ATTRS_OID

HOST = "127.0.0.1"

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


@dataclass
class Authority:
    name: str
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    def __post_init__(self) -> None:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.name)])
        self.cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - DAY).not_valid_after(NOW + DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )  # fmt: skip

    def issue(self, cn: str, ou: str = "client", role: str = "") -> x509.Certificate:
        """A certificate as Fabric CA issues one: NodeOU in the subject, `role` in its attributes."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
                             x509.NameAttribute(NameOID.COMMON_NAME, cn)])  # fmt: skip
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(self.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - DAY).not_valid_after(NOW + DAY)
        )  # fmt: skip
        if role:
            attrs = json.dumps({"attrs": {"role": role}}).encode()
            builder = builder.add_extension(
                x509.UnrecognizedExtension(FABRIC_ATTRS_OID, attrs), critical=False
            )
        return builder.sign(self.key, hashes.SHA256())

    def issue_for(self, key: ec.EllipticCurvePrivateKey, cn: str) -> x509.Certificate:
        """A TLS server certificate for 127.0.0.1 with the given key."""
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        return (
            x509.CertificateBuilder().subject_name(subject).issuer_name(self.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - DAY).not_valid_after(NOW + DAY)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]), False)
            .sign(self.key, hashes.SHA256())
        )  # fmt: skip

    def crl(self, *revoked: x509.Certificate) -> bytes:
        builder = (
            x509.CertificateRevocationListBuilder().issuer_name(self.cert.subject)
            .last_update(NOW).next_update(NOW + DAY)
        )  # fmt: skip
        for cert in revoked:
            entry = x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(NOW)
            builder = builder.add_revoked_certificate(entry.build())
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}.pem"
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()
