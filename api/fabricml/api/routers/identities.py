"""The org's identities at its own Fabric CA."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool

from fabricml.contracts import identifiers as ids

from ..deps import AdminDep, ContextDep, ReaderDep
from ..schemas import (
    EnrolledIdentity,
    EnrollIdentity,
    IdentityEntry,
    RegisteredIdentity,
    RegisterIdentity,
    RevokedIdentity,
    RevokeIdentity,
)
from ..services import identities
from .common import LEDGER_ERRORS

router = APIRouter(prefix="/api/v1/identities", tags=["identities"], responses=LEDGER_ERRORS)
Name = Annotated[str, Path(pattern=ids.IDENTITY_NAME_PATTERN)]


@router.get("")
async def list_identities(_: ReaderDep, context: ContextDep) -> list[IdentityEntry]:
    """Identities registered at the org's CA (name, type, role attribute)."""
    return await run_in_threadpool(identities.list_identities, context)


@router.post("", status_code=201)
async def register(body: RegisterIdentity, _: AdminDep, context: ContextDep) -> RegisteredIdentity:
    """Register an identity; the one-time enrollment secret is in the answer and nowhere else."""
    return await run_in_threadpool(identities.register, context, body)


@router.post("/{name}/enroll")
async def enroll(name: Name, body: EnrollIdentity, _: AdminDep, context: ContextDep) -> EnrolledIdentity:
    """Enroll on the server, for identities the API's org runs itself; the key stays here."""
    return await run_in_threadpool(identities.enroll, context, name, body.secret)


@router.post("/{name}/revoke")
async def revoke(name: Name, body: RevokeIdentity, _: AdminDep, context: ContextDep) -> RevokedIdentity:
    """Revoke at the CA and publish the new CRL in the channel: the identity can no longer transact."""
    return await run_in_threadpool(identities.revoke, context, name, body.reason)
