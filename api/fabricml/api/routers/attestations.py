"""Inference attestation: services and their anchored batches, receipt checks, claims."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from fabricml.contracts import identifiers as ids

from ..deps import AdminDep, ContextDep, ReaderDep
from ..schemas import Batch, Claim, ClaimDetail, OpenClaim, ReceiptBundle, ReceiptVerification, ServiceState
from ..services import attestations
from .common import LEDGER_ERRORS
from .params import LedgerId

router = APIRouter(prefix="/api/v1/attestations", tags=["attestations"], responses=LEDGER_ERRORS)
ClaimRef = Annotated[
    str, Path(pattern=ids.CLAIM_REF_PATTERN, description='"<MSP ID>:<id>", e.g. Org1MSP:claim-42')
]


@router.get("/services")
async def services(_: ReaderDep, context: ContextDep) -> list[ServiceState]:
    """Each inference service's last anchored batch and receipt."""
    return await attestations.services(context)


@router.get("/services/{msp_id}/{subject}/batches")
async def batches(
    msp_id: LedgerId,
    subject: LedgerId,
    _: ReaderDep,
    context: ContextDep,
    last: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[Batch]:
    """A service's latest anchored batches, newest first."""
    return await attestations.batches(context, msp_id, subject, last)


@router.post("/verify")
async def verify(body: ReceiptBundle, _: ReaderDep, context: ContextDep) -> ReceiptVerification:
    """Check a receipt bundle: certificate, signature, chain to the org CA, role, inclusion
    proof and the anchored batch on the ledger. Auditors may."""
    return await run_in_threadpool(attestations.verify, context, body)


@router.get("/claims")
async def claims(_: ReaderDep, context: ContextDep) -> list[Claim]:
    """k-of-n decisions seen on the channel."""
    return await attestations.claims(context)


@router.post("/claims", status_code=201)
async def open_claim(body: OpenClaim, _: AdminDep, context: ContextDep) -> Claim:
    """Open a decision that needs k (at least two) organizations' services to agree, with
    its payout amount fixed now. The claim's id on the ledger is "<this org's MSP ID>:<id>"."""
    return await attestations.open_claim(context, body)


@router.get("/claims/{claim_id}")
async def claim(claim_id: ClaimRef, _: ReaderDep, context: ContextDep) -> ClaimDetail:
    """A claim and each organization's attested answer."""
    return await attestations.claim(context, claim_id)
