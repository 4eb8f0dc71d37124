"""Client identities: an MSP ID and an X.509 certificate, serialized as Fabric's creator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from fabric_protos.msp import identities_pb2


@dataclass(frozen=True)
class Identity:
    """Who signs: the organization's MSP ID and the PEM certificate its CA issued."""

    msp_id: str
    credentials: bytes

    def __post_init__(self) -> None:
        if not self.msp_id:
            raise ValueError("identity needs an MSP ID")
        try:
            x509.load_pem_x509_certificate(self.credentials)
        except ValueError as exc:
            raise ValueError(f"identity credentials are not a PEM X.509 certificate: {exc}") from None

    def creator(self) -> bytes:
        """The serialized identity that goes into every signed header."""
        message = identities_pb2.SerializedIdentity(mspid=self.msp_id, id_bytes=self.credentials)
        return bytes(message.SerializeToString())


def load_identity(msp_id: str, certificate: Path | bytes) -> Identity:
    """An identity from a PEM certificate file or PEM bytes."""
    pem = certificate if isinstance(certificate, bytes) else Path(certificate).read_bytes()
    return Identity(msp_id, pem)


def identity_from_msp(msp_id: str, msp_dir: Path) -> Identity:
    """The identity enrolled into an MSP folder (signcerts/) by fabric-ca-client."""
    certs = sorted((Path(msp_dir) / "signcerts").glob("*.pem"))
    if len(certs) != 1:
        raise ValueError(f"expected one certificate in {msp_dir}/signcerts, found {len(certs)}")
    return load_identity(msp_id, certs[0])


def issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """Whether `ca` signed `cert` directly (a wrong key type or a malformed signature: no)."""
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, TypeError, ValueError):
        return False
    return True
