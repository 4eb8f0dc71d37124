"""The model registry through the org's identities: queries as the auditor, approvals as
the admin, registrations as the trainer; verification and reports from the artifact stores."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fabricml.gateway import CommitError, GatewayError

from ..context import ApiContext
from ..ledger import LedgerError, refusal
from ..schemas import (
    Deployability,
    HistoryEntry,
    Lineage,
    ModelDetail,
    ModelMetadata,
    ModelPage,
    ModelRecord,
    Verification,
)

if TYPE_CHECKING:
    from fabricml.registry.service import ModelRegistry

FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def registry(context: ApiContext, identity: str) -> ModelRegistry:
    # Imported here: the registry pulls in jsonschema, a second of start-up for every API process.
    from fabricml.registry.artifacts import ArtifactStore
    from fabricml.registry.connect import member_stores, own_store_url
    from fabricml.registry.service import ModelRegistry

    profile = context.profile
    return ModelRegistry(
        context.ledger.contract(identity, "Registry"),
        ArtifactStore(Path(profile.raw["artifactStore"])),
        member_stores(profile, identity),
        profile.msp_id,
        own_store_url(profile),
    )


def ref(name: str, version: str) -> str:
    return f"{name}@{version}"


async def list_models(context: ApiContext, name: str, page_size: int, bookmark: str) -> ModelPage:
    page = await context.ledger.evaluate(
        context.settings.auditor_identity, "Registry", "List", name, str(page_size), bookmark
    )
    return ModelPage.model_validate(
        {"models": page.get("models") or [], "bookmark": page.get("bookmark", "")}
    )


async def show(context: ApiContext, name: str, version: str) -> ModelDetail:
    who = context.settings.auditor_identity
    record = await context.ledger.evaluate(who, "Registry", "Get", ref(name, version))
    deploy = await context.ledger.evaluate(who, "Registry", "Deployable", ref(name, version))
    return ModelDetail(
        record=ModelRecord.model_validate(record), deployability=Deployability.model_validate(deploy)
    )


async def history(context: ApiContext, name: str, version: str) -> list[HistoryEntry]:
    entries = await context.ledger.evaluate(
        context.settings.auditor_identity, "Registry", "History", ref(name, version)
    )
    return [HistoryEntry.model_validate(e) for e in entries or []]


async def lineage(context: ApiContext, name: str, version: str) -> Lineage:
    graph = await context.ledger.evaluate(
        context.settings.auditor_identity, "Registry", "Lineage", ref(name, version)
    )
    return Lineage.model_validate(graph)


def lineage_png(context: ApiContext, name: str, version: str) -> bytes:
    """Blocking: draws the lineage graph (matplotlib)."""
    from fabricml.registry.lineage_view import render_png

    graph = context.ledger.evaluate_sync(
        context.settings.auditor_identity, "Registry", "Lineage", ref(name, version)
    )
    with tempfile.TemporaryDirectory() as tmp:
        return render_png(graph, Path(tmp) / "lineage.png").read_bytes()


async def approve(context: ApiContext, name: str, version: str) -> ModelRecord:
    record = await context.ledger.submit(
        context.settings.admin_identity, "Registry", "Approve", ref(name, version)
    )
    return ModelRecord.model_validate(record)


async def revoke(context: ApiContext, name: str, version: str, reason: str) -> ModelRecord:
    record = await context.ledger.submit(
        context.settings.admin_identity, "Registry", "Revoke", ref(name, version), reason
    )
    return ModelRecord.model_validate(record)


def register(context: ApiContext, meta: ModelMetadata, files: dict[str, bytes]) -> ModelRecord:
    """Blocking: writes the uploaded files to a scratch folder, hashes and stores them, and
    records the version on the ledger as the org's trainer."""
    from fabricml.registry.artifacts import ArtifactError
    from fabricml.registry.manifest import ManifestError

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
            (model_dir / file_name).write_bytes(data)
        reg = registry(context, context.settings.trainer_identity)
        orgs = [context.org.msp_id, *(o for o in meta.trainingOrgs if o != context.org.msp_id)]
        try:
            record = reg.register(
                model_dir,
                meta.name,
                meta.version,
                orgs,
                None,
                dict(meta.hyperparameters),
                dict(meta.metrics),
                list(meta.parents),
                meta.round,
                None,
                code_dir=Path(tmp),
            )
        except GatewayError as exc:
            raise refusal(exc) from exc
        except CommitError as exc:
            raise LedgerError(
                409, f"the registration was marked invalid: {exc.code_name}", exc.transaction_id
            ) from exc
        except (ManifestError, ArtifactError, ValueError) as exc:
            raise LedgerError(422, str(exc).splitlines()[0]) from exc
    return ModelRecord.model_validate(record)


def verify(context: ApiContext, name: str, version: str) -> Verification:
    """Blocking: fetches every file of the version (from this org's store or a member's)
    and checks each digest and the manifest against the ledger record."""
    from fabricml.registry.artifacts import ArtifactError
    from fabricml.registry.manifest import ManifestError
    from fabricml.registry.service import ModelVerificationError

    reg = registry(context, context.settings.auditor_identity)
    try:
        record = reg.get(ref(name, version))
    except GatewayError as exc:
        raise refusal(exc) from exc
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="fabricml-verify-") as tmp:
        try:
            reg.load(ref(name, version), Path(tmp) / "model", require_deployable=False)
        except (ModelVerificationError, ArtifactError, ManifestError) as exc:
            problems.append(str(exc).splitlines()[0])
    weights = record.get("weights", {})
    return Verification(
        ref=ref(name, version),
        ok=not problems,
        weightsDigest=str(weights.get("digest", "")),
        files=int(weights.get("files", 0)),
        problems=problems,
    )


def audit_report(context: ApiContext, name: str, version: str) -> str:
    """Blocking: the HTML audit report (record, approvals, lineage graph, history, manifest)."""
    from fabricml.registry import report
    from fabricml.registry.artifacts import ArtifactError
    from fabricml.registry.service import ModelVerificationError

    reg = registry(context, context.settings.auditor_identity)
    r = ref(name, version)
    try:
        record = reg.get(r)
        try:
            manifest: dict[str, Any] | None = reg.manifest(r).document
        except (ArtifactError, ModelVerificationError):
            manifest = None
        return report.render(record, reg.deployable(r), reg.history(r), reg.lineage(r), manifest)
    except GatewayError as exc:
        raise refusal(exc) from exc


def metrics_of(record: dict[str, Any]) -> dict[str, float]:
    raw = record.get("metrics") or {}
    return {str(k): float(v) for k, v in raw.items() if isinstance(v, int | float)}


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
