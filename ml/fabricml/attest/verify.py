"""Check a receipt anywhere: signature, certificate chain, role, inclusion proof, and the
anchored batch on the ledger. Everything but the last check works offline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from fabricml.contracts.attestation import AttestationClient, ReceiptProof
from fabricml.gateway import GatewayError, refusal_of
from fabricml.gateway.profile import ConnectionProfile

from . import merkle
from .receipts import InferenceReceipt, role_of


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}


def verify_receipt(
    bundle: dict[str, Any], ca: x509.Certificate | None, attestation: AttestationClient | None
) -> list[Check]:
    """`bundle` is {receipt, certificate, batch, proof, root, txId} as the service returns it
    (only receipt and certificate are needed for the offline checks)."""
    raw = bundle.get("receipt", bundle)
    receipt = InferenceReceipt(raw)
    try:
        cert = x509.load_pem_x509_certificate(str(bundle["certificate"]).encode())
    except (KeyError, ValueError) as exc:
        return [Check("certificate", False, f"the bundle carries no readable service certificate: {exc}")]
    checks = [*_signed_by(receipt, cert, ca), _service_identity(cert, raw["service"]["subject"])]
    if "proof" not in bundle:
        checks.append(
            Check("inclusion proof", False, "the bundle has no inclusion proof (receipt not yet anchored?)")
        )
        return checks
    proof = merkle.InclusionProof.from_json(bundle["proof"])
    in_root = merkle.verify(receipt.leaf(), proof, bytes.fromhex(bundle["root"]))
    detail = f"leaf {proof.index} of {proof.size} leads to root {bundle['root'][:16]}…"
    checks.append(Check("inclusion proof", in_root, detail))
    if attestation is not None:
        checks.append(_anchored(attestation, raw, bundle))
    return checks


def _signed_by(receipt: InferenceReceipt, cert: x509.Certificate, ca: x509.Certificate | None) -> list[Check]:
    """The receipt names the certificate, is signed by its key, and the org's CA issued it."""
    checks = [
        Check(
            "certificate", receipt.names(cert), "the bundle's certificate is the one the receipt commits to"
        ),
        Check(
            "signature",
            receipt.signature_valid(cert),
            "ECDSA over the receipt body, by that certificate's key",
        ),
    ]
    if ca is None:
        return [
            *checks,
            Check("certificate chain", False, "no CA certificate given for the service's organization"),
        ]
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        return [*checks, Check("certificate chain", False, f"not issued by the org's CA: {exc!r}")]
    return [*checks, Check("certificate chain", True, f"issued by {ca.subject.rfc4514_string()}")]


def _service_identity(cert: x509.Certificate, subject: str) -> Check:
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    cn = str(names[0].value) if names else "?"
    role = role_of(cert)
    return Check(
        "service identity",
        cn == subject and role == "inference",
        f"certificate CN {cn}, role={role or 'none'}",
    )


def _anchored(attestation: AttestationClient, raw: dict[str, Any], bundle: dict[str, Any]) -> Check:
    """The ledger holds the batch and its root, and the proof leads from the receipt to it."""
    try:
        result = attestation.verify_inclusion(ReceiptProof(raw, int(bundle["batch"]), bundle["proof"]))
    except GatewayError as exc:
        return Check("anchored on the ledger", False, _first_line(exc))
    on_ledger = result.included and result.root == bundle["root"]
    detail = f"batch {bundle['batch']} root {result.root[:16]}… in transaction {result.tx_id}"
    return Check("anchored on the ledger", on_ledger, detail)


def _first_line(exc: GatewayError) -> str:
    """The refusal's own sentence when the chaincode coded it, else the error's first line."""
    found = refusal_of(exc)
    return f"{found.code}: {found.message}" if found else str(exc).splitlines()[0]


def service_ca(profile: ConnectionProfile, msp_id: str) -> x509.Certificate | None:
    """The CA of the org that runs a service, from a connection profile (an org's one CA
    issues both its TLS and its enrollment certificates); None for an unknown org."""
    for o in profile.raw["organizations"].values():
        if o["mspid"] == msp_id:
            peer = profile.raw["peers"][o["peers"][0]]
            return x509.load_pem_x509_certificate(Path(peer["tlsCACerts"]["path"]).read_bytes())
    return None
