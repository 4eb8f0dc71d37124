"""Certificates for bundle tests, shaped like a Fabric CA's (NodeOU in the subject's OU)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fabricml.network.bundle import FORMAT
from fabricml.network.identities import NODE_OU_CONFIG


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


def issue(cn: str, ou: str, issuer: Issued | None = None, ca: bool = False) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )
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


@dataclass(frozen=True)
class FakeOrg:
    """An organization's CAs and the identities a bundle names, made without a Fabric CA."""

    name: str
    msp_id: str
    host: str
    ca: Issued
    tls_ca: Issued
    admin: Issued
    orderer_tls: Issued
    orderer_identity: Issued

    @classmethod
    def make(cls, name: str, host: str = "127.0.99.1", base: int = 30000) -> FakeOrg:
        ca = issue(f"ca.{name}", "Fabric", ca=True)
        tls_ca = issue(f"tlsca.{name}", "TLS", ca=True)
        return cls(
            name,
            f"{name.title()}MSP",
            host,
            ca,
            tls_ca,
            issue("admin", "admin", ca),
            issue(f"orderer0.{name}", "orderer", tls_ca),
            issue("orderer0", "orderer", ca),
        )

    def body(self, base: int = 30000) -> dict[str, object]:
        return {
            "format": FORMAT,
            "name": self.name,
            "mspId": self.msp_id,
            "caCert": self.ca.pem,
            "tlsCaCert": self.tls_ca.pem,
            "nodeOUs": NODE_OU_CONFIG,
            "peer": {"name": f"peer0.{self.name}", "address": f"{self.host}:{base + 10}"},
            "orderers": [
                {
                    "name": f"orderer0.{self.name}",
                    "address": f"{self.host}:{base + 20}",
                    "tlsCert": self.orderer_tls.pem,
                    "identityCert": self.orderer_identity.pem,
                }
            ],
            "ca": f"https://{self.host}:{base}",
            "artifactStore": f"https://{self.host}:{base + 50}",
            "adminApi": f"https://{self.host}:{base + 60}",
        }
