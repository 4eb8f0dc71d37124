"""Throw-away certificates no Fabric CA issued: outsiders, forgeries and CAs shaped like a
Fabric CA's (NodeOU in the subject's OU), for tests that must be refused or need no CA."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def write_key(self, path: Path) -> Path:
        path.write_bytes(self.key_pem())
        return path

    def write(self, cert: Path, key: Path) -> tuple[Path, Path]:
        """The certificate and its private key as PEM files, e.g. for a TLS client."""
        cert.write_text(self.pem)
        return cert, self.write_key(key)


def issue(cn: str, ou: str = "", issuer: Issued | None = None, ca: bool = False) -> Issued:
    """A certificate for a fresh P-256 key, valid for a day; self-signed unless `issuer`."""
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou)] if ou else []
    subject = x509.Name([*names, x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return Issued(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)
