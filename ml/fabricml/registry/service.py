"""The registry as an org uses it: the Registry contract plus the artifact stores."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabricml.contracts.registry import (
    ConfidentialGrant,
    Deployability,
    DeploymentPolicy,
    HistoryEntry,
    Lineage,
    ModelVersion,
    Page,
    RegistrationRequest,
    RegistryClient,
    Suspension,
)

from .artifact_client import ArtifactClient, FetchInterrupted
from .artifacts import ArtifactError, ArtifactStore
from .datasets import DatasetFingerprint
from .digests import canonical_json, sha256_bytes
from .manifest import ProvenanceManifest, build
from .weights import hash_model

CONFIDENTIAL_FORMAT = "fabricml.confidential/v1"
# How long a blob whose only holders are unreachable is looked for again: about a store's
# restart (a 404 is an answer and ends the search at once).
UNREACHABLE_PATIENCE = 60.0
SWEEP_PAUSE = 1.0


def sealed_confidential(provenance: Mapping[str, Any]) -> bytes:
    """The bytes kept privately and hashed publicly: the provenance with a random nonce,
    so that its public digest cannot be found by hashing guesses of low-entropy data."""
    sealed = {"format": CONFIDENTIAL_FORMAT, "nonce": secrets.token_hex(16), "provenance": dict(provenance)}
    return canonical_json(sealed)


def opened_confidential(stored: dict[str, Any]) -> dict[str, Any]:
    """The provenance inside sealed bytes (a record stored without a nonce, as is)."""
    inner = stored.get("provenance")
    if stored.get("format") == CONFIDENTIAL_FORMAT and isinstance(inner, dict):
        return inner
    return stored


class ModelVerificationError(RuntimeError):
    """Model bytes differ from what the ledger records, or the version may not be deployed."""


def blob_base(store_url: str) -> str:
    """The URL under which an artifact server serves blobs by sha256 (`<base><digest>`)."""
    return store_url.rstrip("/") + "/v1/blobs/"


@dataclass(frozen=True)
class ModelRegistration:
    """What an org says about a model version it registers (besides its files)."""

    name: str
    version: str
    training_orgs: Sequence[str]  # MSP IDs; must include the registering org
    datasets: Sequence[DatasetFingerprint] = ()
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    parents: Sequence[str] = ()  # name@version of each parent
    round_ref: str = ""  # "<task>/<round>" for a federated round's global model
    aggregate_digest: str = ""  # a round model's: the round's agreed aggregate digest
    confidential: Mapping[str, Any] | None = None  # kept in the org's private collection
    code_dir: Path | None = None  # the git checkout the training code came from (default: cwd)


class ModelRegistry:
    """The Registry contract as one org uses it, with its own artifact store and the
    members' stores. Ledger refusals raise GatewayError (see fabricml.contracts.registry)."""

    def __init__(
        self,
        ledger: RegistryClient,
        store: ArtifactStore,
        remotes: list[ArtifactClient] | None = None,
        msp_id: str = "",
        public_url: str = "",
        patience: float = UNREACHABLE_PATIENCE,
    ) -> None:
        self.ledger = ledger
        self.patience = patience
        self.msp_id = msp_id  # the org this registry acts for
        self.store = store
        self.remotes = remotes or []
        # Where other members fetch this org's blobs; a local path would mean nothing to them.
        self.storage_uris = [blob_base(public_url)] if public_url else []

    # ---- transactions -------------------------------------------------------------

    def register(self, model_dir: Path, what: ModelRegistration, link: bool = False) -> ModelVersion:
        """Hash and store the model, then record it on the ledger; returns the record.
        `link`: the weights files are linked into the store, not copied (for a folder the
        caller wrote and never writes over in place). Raises ManifestError for a bad
        manifest field, ArtifactError for the store."""
        manifest = build(
            model_dir,
            what.name,
            what.version,
            list(what.training_orgs),
            list(what.datasets),
            dict(what.hyperparameters),
            dict(what.metrics),
            list(what.parents),
            what.round_ref,
            storage=self.storage_uris,
            code_dir=what.code_dir,
        )
        self.store.put_model(model_dir, manifest, link)
        secret = sealed_confidential(what.confidential) if what.confidential else b""
        request = RegistrationRequest.from_json(
            {
                **manifest.registration(),
                "confidentialDigest": sha256_bytes(secret) if secret else "",
                "aggregateDigest": what.aggregate_digest,
            }
        )
        record = self.ledger.register(request)
        if secret:
            # Endorsed by our org alone: the plaintext never reaches another org's peer.
            self.ledger.put_confidential(manifest.ref, secret, self.msp_id)
        return record

    def approve(self, ref: str) -> ModelVersion:
        return self.ledger.approve(ref)

    def revoke(self, ref: str, reason: str) -> ModelVersion:
        return self.ledger.revoke(ref, reason)

    def deprecate(self, ref: str, reason: str) -> ModelVersion:
        return self.ledger.deprecate(ref, reason)

    def confirm_training(self, ref: str) -> ModelVersion:
        return self.ledger.confirm_training(ref)

    def suspend(self, ref: str, reason: str) -> Suspension:
        return self.ledger.suspend(ref, reason)

    def resume(self, ref: str) -> Suspension:
        return self.ledger.resume(ref)

    def vote_policy(self, name: str, rule: str) -> DeploymentPolicy:
        return self.ledger.vote_deployment_policy(name, rule)

    # ---- queries ------------------------------------------------------------------

    def get(self, ref: str) -> ModelVersion:
        return self.ledger.get(ref)

    def deployable(self, ref: str) -> Deployability:
        return self.ledger.deployable(ref)

    def list_versions(self, name: str = "", page_size: int = 50, bookmark: str = "") -> Page:
        return self.ledger.list_versions(name, page_size, bookmark)

    def history(self, ref: str) -> tuple[HistoryEntry, ...]:
        return self.ledger.history(ref)

    def lineage(self, ref: str) -> Lineage:
        return self.ledger.lineage(ref)

    def confidential(self, ref: str) -> dict[str, Any]:
        """Confidential provenance, readable only by the registering org and its grantees."""
        return opened_confidential(self.ledger.get_confidential(ref))

    def grant_confidential(self, ref: str, grantee: str) -> ConfidentialGrant:
        return self.ledger.grant_confidential(ref, grantee, self.msp_id)

    def withdraw_confidential_grant(self, ref: str, grantee: str) -> ConfidentialGrant:
        return self.ledger.withdraw_confidential_grant(ref, grantee, self.msp_id)

    def policy(self, name: str) -> DeploymentPolicy:
        return self.ledger.get_deployment_policy(name)

    # ---- artifacts and verification ------------------------------------------------

    def blob(self, digest: str) -> bytes:
        """A blob from the local store, else from a member's store (then kept locally). While
        the stores that did not answer "no copy" are unreachable, they are asked again for
        up to `patience` seconds: a member's store that restarts does not fail the caller."""
        if self.store.has(digest):
            return self.store.get(digest)
        end = time.monotonic() + self.patience
        while True:
            data, errors, unreachable = self._sweep(digest)
            if data is not None:
                self.store.put_bytes(data)
                return data
            if not unreachable or time.monotonic() + SWEEP_PAUSE > end:
                raise ArtifactError(
                    f"blob {digest} is in no reachable artifact store" + "".join(f"\n  {e}" for e in errors)
                )
            time.sleep(SWEEP_PAUSE)

    def _sweep(self, digest: str) -> tuple[bytes | None, list[str], bool]:
        """One pass over the members' stores: the blob, or the errors and whether any store
        was unreachable (rather than answering that it holds no copy)."""
        errors: list[str] = []
        unreachable = False
        for remote in self.remotes:
            try:
                return remote.get(digest), errors, unreachable
            except (FetchInterrupted, OSError) as exc:
                unreachable = True
                errors.append(str(exc))
            except ArtifactError as exc:
                errors.append(str(exc))
        return None, errors, unreachable

    def manifest(self, ref: str) -> ProvenanceManifest:
        record = self.get(ref)
        manifest = ProvenanceManifest.from_bytes(self.blob(record.manifest_digest))
        if manifest.weights.digest != record.weights.digest or manifest.ref != ref:
            raise ModelVerificationError(f"the manifest stored for {ref} does not match its ledger record")
        return manifest

    def verify_dir(self, ref: str, model_dir: Path) -> list[str]:
        """Differences between a model directory and the registered version, file by file."""
        record = self.get(ref)
        local = hash_model(model_dir)
        if local.digest == record.weights.digest:
            return []
        return self.manifest(ref).weights.compare(local) or [
            f"weights digest {local.digest} differs from registered {record.weights.digest}"
        ]

    def load(self, ref: str, dest: Path, require_deployable: bool = True) -> Path:
        """Fetch a version's files into dest, each checked against the ledger; refuse a
        version that is not approved (or is revoked) when it is to be deployed."""
        if require_deployable:
            d = self.deployable(ref)
            if not d.deployable:
                raise ModelVerificationError(
                    f"{ref} may not be deployed: status {d.status}, {d.approvals} of {d.required} "
                    f"approvals ({d.rule})"
                )
        manifest = self.manifest(ref)
        dest.mkdir(parents=True, exist_ok=True)
        for f in manifest.weights.files:
            target = dest / f.name
            if not target.resolve().is_relative_to(dest.resolve()):
                raise ModelVerificationError(f"manifest file name {f.name!r} escapes the model directory")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.blob(f.digest))
        # The manifest was already matched to the ledger record: compare against it directly.
        problems = manifest.weights.compare(hash_model(dest))
        if problems:
            raise ModelVerificationError(f"{ref} does not match the ledger: " + "; ".join(problems))
        return dest
