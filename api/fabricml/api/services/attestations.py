"""Anchored receipt batches per inference service, receipt verification, k-of-n claims."""

from __future__ import annotations

import json
from typing import Any

from cryptography import x509

from fabricml.attest.verify import verify_receipt

from ..context import ApiContext
from ..ledger import LedgerError
from ..schemas import (
    Batch,
    CheckResult,
    Claim,
    ClaimDetail,
    OpenClaim,
    ReceiptBundle,
    ReceiptVerification,
    ServiceState,
)

INFERENCE_SUBJECT = "inference"


async def services(context: ApiContext) -> list[ServiceState]:
    """Every member's inference service, plus any other service seen anchoring."""
    with context.activity.lock:
        seen = list(context.activity.services)
    keys = [(o.msp_id, INFERENCE_SUBJECT) for o in context.topology.organizations]
    keys += [k for k in seen if k not in keys]
    out = []
    for msp, subject in keys:
        state = await context.ledger.evaluate(
            context.settings.auditor_identity, "Attestation", "GetService", msp, subject
        )
        out.append(ServiceState.model_validate(state))
    return out


async def batches(context: ApiContext, msp: str, subject: str, last: int) -> list[Batch]:
    """The service's latest `last` batches, newest first."""
    who = context.settings.auditor_identity
    state = await context.ledger.evaluate(who, "Attestation", "GetService", msp, subject)
    top = int(state.get("lastSequence", 0))
    out = []
    for seq in range(top, max(0, top - last), -1):
        out.append(
            Batch.model_validate(
                await context.ledger.evaluate(who, "Attestation", "GetBatch", msp, subject, str(seq))
            )
        )
    return out


def _ca_of(context: ApiContext, receipt: dict[str, Any]) -> x509.Certificate | None:
    msp = str(receipt.get("service", {}).get("mspId", "")) if isinstance(receipt.get("service"), dict) else ""
    for org in context.topology.organizations:
        if org.msp_id == msp:
            return x509.load_pem_x509_certificate(context.layout.ca_cert(org).read_bytes())
    return None


def verify(context: ApiContext, bundle: ReceiptBundle) -> ReceiptVerification:
    """Blocking: every offline check, then the anchored batch on the ledger."""
    raw = bundle.model_dump(exclude_none=True)
    try:
        contract = context.ledger.contract(context.settings.auditor_identity, "Attestation")
        checks = verify_receipt(raw, _ca_of(context, bundle.receipt), contract if "proof" in raw else None)
    except (KeyError, TypeError, ValueError) as exc:
        raise LedgerError(422, f"the receipt bundle is malformed: {type(exc).__name__}: {exc}") from exc
    results = [CheckResult(check=c.name, ok=c.ok, detail=c.detail) for c in checks]
    return ReceiptVerification(ok=all(c.ok for c in results), checks=results)


async def open_claim(context: ApiContext, request: OpenClaim) -> Claim:
    claim = await context.ledger.submit(
        context.settings.admin_identity,
        "Attestation",
        "OpenClaim",
        request.id,
        request.inputDigest,
        request.modelName,
        str(request.k),
    )
    return Claim.model_validate(claim)


async def claim(context: ApiContext, claim_id: str) -> ClaimDetail:
    who = context.settings.auditor_identity
    c = await context.ledger.evaluate(who, "Attestation", "GetClaim", claim_id)
    attestations = await context.ledger.evaluate(who, "Attestation", "ClaimAttestations", claim_id) or []
    return ClaimDetail(claim=Claim.model_validate(c), attestations=[dict(a) for a in attestations])


async def claims(context: ApiContext) -> list[Claim]:
    with context.activity.lock:
        ids = list(context.activity.claims)
    who = context.settings.auditor_identity
    return [
        Claim.model_validate(await context.ledger.evaluate(who, "Attestation", "GetClaim", i)) for i in ids
    ]


def dumps(value: Any) -> str:
    return json.dumps(value)
