"""Anchored receipt batches per inference service, receipt verification, k-of-n claims."""

from __future__ import annotations

from typing import Any

from cryptography import x509

from fabricml.attest.verify import verify_receipt
from fabricml.contracts import AttestationClient
from fabricml.contracts.attestation import Batch as LedgerBatch
from fabricml.contracts.attestation import ServiceState as LedgerServiceState

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


async def _service(context: ApiContext, msp: str, subject: str) -> LedgerServiceState:
    who = context.settings.auditor_identity
    return await context.ledger.call(who, AttestationClient, lambda a: a.get_service(msp, subject))


async def _batch(context: ApiContext, msp: str, subject: str, sequence: int) -> LedgerBatch:
    who = context.settings.auditor_identity
    return await context.ledger.call(who, AttestationClient, lambda a: a.get_batch(msp, subject, sequence))


async def services(context: ApiContext) -> list[ServiceState]:
    """Every member's inference service, plus any other service seen anchoring."""
    with context.activity.lock:
        seen = list(context.activity.services)
    keys = [(o.msp_id, INFERENCE_SUBJECT) for o in context.topology.organizations]
    keys += [k for k in seen if k not in keys]
    return [
        ServiceState.model_validate((await _service(context, msp, subject)).to_json())
        for msp, subject in keys
    ]


async def batches(context: ApiContext, msp: str, subject: str, last: int) -> list[Batch]:
    """The service's latest `last` batches, newest first."""
    top = (await _service(context, msp, subject)).last_sequence
    return [
        Batch.model_validate((await _batch(context, msp, subject, seq)).to_json())
        for seq in range(top, max(0, top - last), -1)
    ]


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
        attestation = context.ledger.client(context.settings.auditor_identity, AttestationClient)
        checks = verify_receipt(raw, _ca_of(context, bundle.receipt), attestation if "proof" in raw else None)
    except (KeyError, TypeError, ValueError) as exc:
        raise LedgerError(422, f"the receipt bundle is malformed: {type(exc).__name__}: {exc}") from exc
    results = [CheckResult(check=c.name, ok=c.ok, detail=c.detail) for c in checks]
    return ReceiptVerification(ok=all(c.ok for c in results), checks=results)


async def open_claim(context: ApiContext, request: OpenClaim) -> Claim:
    claim = await context.ledger.call(
        context.settings.admin_identity,
        AttestationClient,
        lambda a: a.open_claim(request.id, request.inputDigest, request.modelName, request.k, request.amount),
    )
    return Claim.model_validate(claim.to_json())


async def _claim(context: ApiContext, claim_id: str) -> Claim:
    who = context.settings.auditor_identity
    found = await context.ledger.call(who, AttestationClient, lambda a: a.get_claim(claim_id))
    return Claim.model_validate(found.to_json())


async def claim(context: ApiContext, claim_id: str) -> ClaimDetail:
    who = context.settings.auditor_identity
    c = await _claim(context, claim_id)
    attestations = await context.ledger.call(who, AttestationClient, lambda a: a.claim_attestations(claim_id))
    return ClaimDetail(claim=c, attestations=[a.to_json() for a in attestations])


async def claims(context: ApiContext) -> list[Claim]:
    with context.activity.lock:
        ids = list(context.activity.claims)
    return [await _claim(context, i) for i in ids]
