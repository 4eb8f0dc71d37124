"""Signed inference receipts: which approved model turned which input into which output."""

from __future__ import annotations

import base64
import datetime
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fabricml.gateway import Identity, Signer, sha256
from fabricml.registry.digests import canonical_json, sha256_bytes

from . import merkle

SCHEMA = "fabricml.receipt/v1"
# Fabric CA writes certificate attributes into this extension as JSON.
FABRIC_ATTRS_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")


def payload_digest(value: Any) -> str:
    """SHA-256 of a request's or response's canonical JSON."""
    return sha256_bytes(canonical_json(value))


@dataclass(frozen=True)
class InferenceReceipt:
    document: dict[str, Any]

    @property
    def sequence(self) -> int:
        return int(self.document["sequence"])

    def body(self) -> bytes:
        """The signed bytes: every field but the signature."""
        return canonical_json({k: v for k, v in self.document.items() if k != "signature"})

    def leaf(self) -> bytes:
        """The receipt's Merkle leaf hash (over the signed receipt)."""
        return merkle.leaf_hash(canonical_json(self.document))

    def names(self, cert: x509.Certificate) -> bool:
        """Whether this is the certificate the receipt commits to (by its SHA-256)."""
        return certificate_digest(cert) == self.document.get("certificateDigest")

    def signature_valid(self, cert: x509.Certificate) -> bool:
        key = cert.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return False
        try:
            key.verify(base64.b64decode(self.document["signature"]), self.body(), ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError, KeyError):
            return False
        return True


def certificate_digest(cert: x509.Certificate) -> str:
    return sha256_bytes(cert.public_bytes(serialization.Encoding.DER))


def role_of(cert: x509.Certificate) -> str:
    """The `role` attribute the org's CA put in a certificate."""
    try:
        ext = cert.extensions.get_extension_for_oid(FABRIC_ATTRS_OID)
    except x509.ExtensionNotFound:
        return ""
    value = ext.value.value if isinstance(ext.value, x509.UnrecognizedExtension) else b""
    return str(json.loads(value).get("attrs", {}).get("role", ""))


@dataclass(frozen=True)
class ReceiptIssuer:
    """An inference service's signing identity: it numbers nothing, it only signs."""

    identity: Identity
    subject: str  # the service identity's name (its certificate's CN)
    signer: Signer
    cert_digest: str = ""  # of the service's certificate; computed from the identity when empty

    def issue(
        self, model: str, manifest_digest: str, input_digest: str, output_digest: str, sequence: int
    ) -> InferenceReceipt:
        """Sign a receipt. It names the service's certificate by digest; the certificate itself
        travels with the proof bundle (GET /v1/receipts/{n}/proof)."""
        cert_digest = self.cert_digest or certificate_digest(
            x509.load_pem_x509_certificate(self.identity.credentials)
        )
        document: dict[str, Any] = {
            "schema": SCHEMA,
            "model": model,
            "manifestDigest": manifest_digest,
            "inputDigest": input_digest,
            "outputDigest": output_digest,
            "service": {"mspId": self.identity.msp_id, "subject": self.subject},
            "certificateDigest": cert_digest,
            "sequence": sequence,
            "time": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        signature = self.signer(sha256(InferenceReceipt(document).body()))
        return InferenceReceipt({**document, "signature": base64.b64encode(signature).decode()})
