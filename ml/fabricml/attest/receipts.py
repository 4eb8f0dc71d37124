"""Signed inference receipts: which approved model turned which input into which output."""

from __future__ import annotations

import base64
import datetime
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
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

    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.document["certificate"].encode())

    def signature_valid(self) -> bool:
        key = self.certificate().public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return False
        try:
            key.verify(base64.b64decode(self.document["signature"]), self.body(), ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True

    def role(self) -> str:
        """The `role` attribute the org's CA put in the signer's certificate."""
        try:
            ext = self.certificate().extensions.get_extension_for_oid(FABRIC_ATTRS_OID)
        except x509.ExtensionNotFound:
            return ""
        value = ext.value.value if isinstance(ext.value, x509.UnrecognizedExtension) else b""
        return str(json.loads(value).get("attrs", {}).get("role", ""))

    @classmethod
    def issue(
        cls,
        identity: Identity,
        subject: str,
        signer: Signer,
        model: str,
        manifest_digest: str,
        input_digest: str,
        output_digest: str,
        sequence: int,
    ) -> InferenceReceipt:
        document: dict[str, Any] = {
            "schema": SCHEMA,
            "model": model,
            "manifestDigest": manifest_digest,
            "inputDigest": input_digest,
            "outputDigest": output_digest,
            "service": {"mspId": identity.msp_id, "subject": subject},
            "certificate": identity.credentials.decode(),
            "sequence": sequence,
            "time": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        unsigned = cls(document)
        signature = signer(sha256(unsigned.body()))
        return cls({**document, "signature": base64.b64encode(signature).decode()})
