"""The model registry: list, show, register, approve, revoke (one vote), confirm training,
suspend and resume (one org's own use), confidential grants, lineage, verify, audit report."""

from __future__ import annotations

import json
from typing import Annotated, BinaryIO

from fastapi import APIRouter, File, Form, Path, Query, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from fabricml.contracts import identifiers as ids

from ..deps import AdminDep, ContextDep, ReaderDep
from ..ledger import LedgerError
from ..schemas import (
    ConfidentialGrant,
    GrantConfidential,
    HistoryEntry,
    Lineage,
    ModelDetail,
    ModelMetadata,
    ModelPage,
    ModelRecord,
    RevokeModel,
    SuspendModel,
    Suspension,
    Verification,
)
from ..services import models
from .common import LEDGER_ERRORS
from .params import ModelName, ModelVersion

router = APIRouter(prefix="/api/v1/models", tags=["models"], responses=LEDGER_ERRORS)
MspId = Annotated[str, Path(pattern=ids.MSP_ID_PATTERN, description="A member org's MSP ID")]
MAX_FILES = 64


@router.get("")
async def list_models(
    _: ReaderDep,
    context: ContextDep,
    name: Annotated[str, Query(pattern=ids.optional(ids.MODEL_NAME_PATTERN))] = "",
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=200)] = 50,
    bookmark: Annotated[str, Query(max_length=512)] = "",
) -> ModelPage:
    """Registered versions, a page at a time (pass `bookmark` back for the next page)."""
    return await models.list_models(context, name, page_size, bookmark)


@router.post("", status_code=201)
async def register(
    _: AdminDep,
    context: ContextDep,
    metadata: Annotated[
        str,
        Form(
            description="JSON: name, version, trainingOrgs, parents, metrics, hyperparameters, round",
            max_length=16384,
        ),
    ],
    files: Annotated[list[UploadFile], File(description="The model's files (flat, e.g. safetensors)")],
) -> ModelRecord:
    """Upload a model's files: they are hashed, stored in the org's artifact store and the
    version is recorded on the ledger by the org's trainer identity."""
    try:
        meta = ModelMetadata.model_validate(json.loads(metadata))
    except (ValueError, ValidationError) as exc:
        raise LedgerError(
            422, f"metadata is not a valid model description: {str(exc).splitlines()[0]}"
        ) from exc
    if len(files) > MAX_FILES:
        raise LedgerError(422, f"at most {MAX_FILES} files per model")
    contents: dict[str, BinaryIO] = {}
    for f in files:
        name = f.filename or ""
        if name in contents:
            raise LedgerError(422, f"file {name!r} uploaded twice")
        contents[name] = f.file  # spooled to disk by the multipart parser: copied, never read whole
    return await run_in_threadpool(models.register, context, meta, contents)


@router.get("/{name}/{version}")
async def show(name: ModelName, version: ModelVersion, _: ReaderDep, context: ContextDep) -> ModelDetail:
    """The ledger record and whether the version may be deployed."""
    return await models.show(context, name, version)


@router.post("/{name}/{version}/approve")
async def approve(name: ModelName, version: ModelVersion, _: AdminDep, context: ContextDep) -> ModelRecord:
    """Approve for this org (signed by the org's admin identity)."""
    return await models.approve(context, name, version)


@router.post("/{name}/{version}/revoke")
async def revoke(
    name: ModelName, version: ModelVersion, body: RevokeModel, _: AdminDep, context: ContextDep
) -> ModelRecord:
    """This org's vote to revoke; once a majority of the members voted the version is
    revoked for good and inference services stop serving it."""
    return await models.revoke(context, name, version, body.reason)


@router.post("/{name}/{version}/confirm-training")
async def confirm_training(
    name: ModelName, version: ModelVersion, _: AdminDep, context: ContextDep
) -> ModelRecord:
    """Confirm, as a training org named in the version, that this org trained it as
    registered; until every named org confirmed, it cannot be approved."""
    return await models.confirm_training(context, name, version)


@router.post("/{name}/{version}/suspend")
async def suspend(
    name: ModelName, version: ModelVersion, body: SuspendModel, _: AdminDep, context: ContextDep
) -> Suspension:
    """Stop this org's own use of the version at once; other orgs go on."""
    return await models.suspend(context, name, version, body.reason)


@router.post("/{name}/{version}/resume")
async def resume(name: ModelName, version: ModelVersion, _: AdminDep, context: ContextDep) -> Suspension:
    """Lift this org's suspension of the version."""
    return await models.suspend(context, name, version, None)


@router.post("/{name}/{version}/confidential-grants", status_code=201)
async def grant_confidential(
    name: ModelName, version: ModelVersion, body: GrantConfidential, _: AdminDep, context: ContextDep
) -> ConfidentialGrant:
    """Let another member org read this org's confidential provenance of the version."""
    return await models.confidential_grant(context, name, version, body.grantee)


@router.delete("/{name}/{version}/confidential-grants/{grantee}")
async def withdraw_confidential_grant(
    name: ModelName, version: ModelVersion, grantee: MspId, _: AdminDep, context: ContextDep
) -> ConfidentialGrant:
    """End another org's reading of this org's confidential provenance of the version."""
    return await models.confidential_grant(context, name, version, grantee, withdraw=True)


@router.get("/{name}/{version}/history")
async def history(
    name: ModelName, version: ModelVersion, _: ReaderDep, context: ContextDep
) -> list[HistoryEntry]:
    """Every committed change of the record, with transaction ids."""
    return await models.history(context, name, version)


@router.get("/{name}/{version}/lineage")
async def lineage(name: ModelName, version: ModelVersion, _: ReaderDep, context: ContextDep) -> Lineage:
    """Ancestry: parent versions, edges, datasets and federated rounds."""
    return await models.lineage(context, name, version)


@router.get(
    "/{name}/{version}/lineage.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "The lineage graph"}},
)
async def lineage_png(name: ModelName, version: ModelVersion, _: ReaderDep, context: ContextDep) -> Response:
    """The lineage graph as a picture."""
    png = await run_in_threadpool(models.lineage_png, context, name, version)
    return Response(png, media_type="image/png")


@router.post("/{name}/{version}/verify")
async def verify(name: ModelName, version: ModelVersion, _: ReaderDep, context: ContextDep) -> Verification:
    """Fetch every file of the version and check each digest against the ledger (auditors may)."""
    return await run_in_threadpool(models.verify, context, name, version)


@router.get(
    "/{name}/{version}/audit-report",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}, "description": "The HTML audit report"}},
)
async def audit_report(
    name: ModelName, version: ModelVersion, _: ReaderDep, context: ContextDep
) -> HTMLResponse:
    """A self-contained HTML report for auditors, as a download."""
    html = await run_in_threadpool(models.audit_report, context, name, version)
    disposition = f'attachment; filename="audit-{name}-{version}.html"'
    return HTMLResponse(html, headers={"Content-Disposition": disposition})
