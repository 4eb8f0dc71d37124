"""Check a receipt anywhere: signature, certificate chain, role, inclusion proof, and the
anchored batch on the ledger. Everything but the last check works offline."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from fabricml.gateway import GatewayError, sync

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
    bundle: dict[str, Any], ca: x509.Certificate | None, attestation: sync.Contract | None
) -> list[Check]:
    """`bundle` is {receipt, certificate, batch, proof, root, txId} as the service returns it
    (only receipt and certificate are needed for the offline checks)."""
    raw = bundle.get("receipt", bundle)
    receipt = InferenceReceipt(raw)
    try:
        cert = x509.load_pem_x509_certificate(str(bundle["certificate"]).encode())
    except (KeyError, ValueError) as exc:
        return [Check("certificate", False, f"the bundle carries no readable service certificate: {exc}")]
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
        checks.append(
            Check("certificate chain", False, "no CA certificate given for the service's organization")
        )
    else:
        try:
            cert.verify_directly_issued_by(ca)
            checks.append(Check("certificate chain", True, f"issued by {ca.subject.rfc4514_string()}"))
        except (ValueError, TypeError, InvalidSignature) as exc:
            checks.append(Check("certificate chain", False, f"not issued by the org's CA: {exc!r}"))
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    cn = str(names[0].value) if names else "?"
    role = role_of(cert)
    checks.append(
        Check(
            "service identity",
            cn == raw["service"]["subject"] and role == "inference",
            f"certificate CN {cn}, role={role or 'none'}",
        )
    )
    if "proof" not in bundle:
        checks.append(
            Check("inclusion proof", False, "the bundle has no inclusion proof (receipt not yet anchored?)")
        )
        return checks
    proof = merkle.InclusionProof.from_json(bundle["proof"])
    in_root = merkle.verify(receipt.leaf(), proof, bytes.fromhex(bundle["root"]))
    checks.append(
        Check(
            "inclusion proof",
            in_root,
            f"leaf {proof.index} of {proof.size} leads to root {bundle['root'][:16]}…",
        )
    )
    if attestation is None:
        return checks
    try:
        result = json.loads(attestation.evaluate_transaction(
            "VerifyInclusion", json.dumps(raw), str(bundle["batch"]), json.dumps(bundle["proof"])
        ))  # fmt: skip
    except GatewayError as exc:
        checks.append(Check("anchored on the ledger", False, str(exc).splitlines()[0]))
        return checks
    on_ledger = result["included"] and result["root"] == bundle["root"]
    detail = f"batch {bundle['batch']} root {result['root'][:16]}… in transaction {result['txId']}"
    checks.append(Check("anchored on the ledger", on_ledger, detail))
    return checks
