"""The model registry through the org's identities: queries as the auditor, approvals as
the admin, registrations as the trainer; verification and reports from the artifact stores."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from fabricml.contracts import RegistryClient

from ..context import ApiContext
from ..ledger import LedgerError, ledger_errors
from ..schemas import (
    ConfidentialGrant,
    Deployability,
    HistoryEntry,
    Lineage,
    ModelDetail,
    ModelMetadata,
    ModelPage,
    ModelRecord,
    Suspension,
    Verification,
)

if TYPE_CHECKING:
    from fabricml.registry.service import ModelRegistry

T = TypeVar("T")
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
CHUNK = 1 << 20
FETCH_PATIENCE = 10.0  # a request waits this long for a restarting member's store, not a minute


def registry(context: ApiContext, identity: str) -> ModelRegistry:
    # Imported here: the registry pulls in jsonschema, a second of start-up for every API process.
    from fabricml.registry.artifacts import ArtifactStore
    from fabricml.registry.connect import member_stores, own_store_url
    from fabricml.registry.service import ModelRegistry

    profile = context.profile
    return ModelRegistry(
        context.ledger.client(identity, RegistryClient),
        ArtifactStore(Path(profile.raw["artifactStore"])),
        member_stores(profile, identity),
        profile.msp_id,
        own_store_url(profile),
        patience=FETCH_PATIENCE,
    )


def ref(name: str, version: str) -> str:
    return f"{name}@{version}"


async def _registry(context: ApiContext, use: Callable[[RegistryClient], T]) -> T:
    return await context.ledger.call(context.settings.auditor_identity, RegistryClient, use)


async def list_models(context: ApiContext, name: str, page_size: int, bookmark: str) -> ModelPage:
    page = await _registry(context, lambda r: r.list_versions(name, page_size, bookmark))
    return ModelPage.model_validate(page.to_json())


async def show(context: ApiContext, name: str, version: str) -> ModelDetail:
    record = await _registry(context, lambda r: r.get(ref(name, version)))
    deploy = await _registry(context, lambda r: r.deployable(ref(name, version)))
    return ModelDetail(
        record=ModelRecord.model_validate(record.to_json()),
        deployability=Deployability.model_validate(deploy.to_json()),
    )


async def history(context: ApiContext, name: str, version: str) -> list[HistoryEntry]:
    entries = await _registry(context, lambda r: r.history(ref(name, version)))
    return [HistoryEntry.model_validate(e.to_json()) for e in entries]


async def lineage(context: ApiContext, name: str, version: str) -> Lineage:
    graph = await _registry(context, lambda r: r.lineage(ref(name, version)))
    return Lineage.model_validate(graph.to_json())


def lineage_png(context: ApiContext, name: str, version: str) -> bytes:
    """Blocking: draws the lineage graph (matplotlib)."""
    from fabricml.registry.lineage_view import render_png

    who = context.settings.auditor_identity
    graph = context.ledger.call_sync(who, RegistryClient, lambda r: r.lineage(ref(name, version)))
    with tempfile.TemporaryDirectory() as tmp:
        return render_png(graph.to_json(), Path(tmp) / "lineage.png").read_bytes()


async def approve(context: ApiContext, name: str, version: str) -> ModelRecord:
    who = context.settings.admin_identity
    record = await context.ledger.call(who, RegistryClient, lambda r: r.approve(ref(name, version)))
    return ModelRecord.model_validate(record.to_json())


async def revoke(context: ApiContext, name: str, version: str, reason: str) -> ModelRecord:
    who = context.settings.admin_identity
    record = await context.ledger.call(who, RegistryClient, lambda r: r.revoke(ref(name, version), reason))
    return ModelRecord.model_validate(record.to_json())


async def confirm_training(context: ApiContext, name: str, version: str) -> ModelRecord:
    who = context.settings.admin_identity
    record = await context.ledger.call(who, RegistryClient, lambda r: r.confirm_training(ref(name, version)))
    return ModelRecord.model_validate(record.to_json())


async def suspend(context: ApiContext, name: str, version: str, reason: str | None) -> Suspension:
    """This org's own suspension (reason given) or its lifting (None)."""
    who, at = context.settings.admin_identity, ref(name, version)

    def use(r: RegistryClient) -> Any:
        return r.resume(at) if reason is None else r.suspend(at, reason)

    return Suspension.model_validate((await context.ledger.call(who, RegistryClient, use)).to_json())


async def confidential_grant(
    context: ApiContext, name: str, version: str, grantee: str, withdraw: bool = False
) -> ConfidentialGrant:
    """The owner org's grant (or its withdrawal) of its confidential provenance to another
    member; endorsed by the owner's own peers only (the typed client sees to it)."""
    who, at, own = context.settings.admin_identity, ref(name, version), context.org.msp_id

    def use(r: RegistryClient) -> Any:
        if withdraw:
            return r.withdraw_confidential_grant(at, grantee, own)
        return r.grant_confidential(at, grantee, own)

    return ConfidentialGrant.model_validate((await context.ledger.call(who, RegistryClient, use)).to_json())


def register(context: ApiContext, meta: ModelMetadata, files: Mapping[str, BinaryIO]) -> ModelRecord:
    """Blocking: writes the uploaded files to a scratch folder, hashes and stores them, and
    records the version on the ledger as the org's trainer."""
    from fabricml.registry.artifacts import ArtifactError
    from fabricml.registry.manifest import ManifestError
    from fabricml.registry.service import ModelRegistration

    if not files:
        raise LedgerError(422, "upload at least one model file")
    with tempfile.TemporaryDirectory(prefix="fabricml-upload-") as tmp:
        model_dir = Path(tmp) / "model"
        model_dir.mkdir()
        for file_name, data in files.items():
            if not FILE_NAME.match(file_name) or file_name in (".", ".."):
                raise LedgerError(
                    422, f"file name {file_name!r}: use letters, digits, '.', '_', '-' (no folders)"
                )
            with (model_dir / file_name).open("wb") as out:
                shutil.copyfileobj(data, out, CHUNK)
        reg = registry(context, context.settings.trainer_identity)
        orgs = [context.org.msp_id, *(o for o in meta.trainingOrgs if o != context.org.msp_id)]
        what = ModelRegistration(
            meta.name,
            meta.version,
            orgs,
            hyperparameters=dict(meta.hyperparameters),
            metrics=dict(meta.metrics),
            parents=list(meta.parents),
            round_ref=meta.round,
            aggregate_digest=meta.aggregateDigest,
            code_dir=Path(tmp),
        )
        try:
            with ledger_errors():
                record = reg.register(model_dir, what)
        except (ManifestError, ArtifactError, ValueError) as exc:
            raise LedgerError(422, str(exc).splitlines()[0]) from exc
    return ModelRecord.model_validate(record.to_json())


def verify(context: ApiContext, name: str, version: str) -> Verification:
    """Blocking: fetches every file of the version (from this org's store or a member's)
    and checks each digest and the manifest against the ledger record."""
    from fabricml.registry.artifacts import ArtifactError
    from fabricml.registry.manifest import ManifestError
    from fabricml.registry.service import ModelVerificationError

    reg = registry(context, context.settings.auditor_identity)
    with ledger_errors():
        record = reg.get(ref(name, version))
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="fabricml-verify-") as tmp:
        try:
            reg.load(ref(name, version), Path(tmp) / "model", require_deployable=False)
        except (ModelVerificationError, ArtifactError, ManifestError) as exc:
            problems.append(str(exc).splitlines()[0])
    return Verification(
        ref=ref(name, version),
        ok=not problems,
        weightsDigest=record.weights.digest,
        files=record.weights.files,
        problems=problems,
    )


def audit_report(context: ApiContext, name: str, version: str) -> str:
    """Blocking: the HTML audit report (record, approvals, lineage graph, history, manifest)."""
    from fabricml.registry import report
    from fabricml.registry.artifacts import ArtifactError
    from fabricml.registry.service import ModelVerificationError

    reg = registry(context, context.settings.auditor_identity)
    r = ref(name, version)
    with ledger_errors():
        record = reg.get(r)
        try:
            manifest: dict[str, Any] | None = reg.manifest(r).document
        except (ArtifactError, ModelVerificationError):
            manifest = None
        history = [e.to_json() for e in reg.history(r)]
        return report.render(
            record.to_json(), reg.deployable(r).to_json(), history, reg.lineage(r).to_json(), manifest
        )
