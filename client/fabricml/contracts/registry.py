"""The Registry contract: model versions with provenance, approvals, lineage, policies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import field
from typing import Any

from .call import ContractClient, evaluate, nothing, submit
from .records import Record, RecordError, many


class Weights(Record):
    digest: str  # the OpenSSF model-signing root digest of the files
    files: int


class DatasetFingerprint(Record):
    name: str
    digest: str
    rows: int
    schema_digest: str


class CodeCommit(Record):
    repository: str
    commit: str
    dirty: bool


class RegistrationRequest(Record):
    """What the manifest records on the ledger (fabricml.registry.manifest builds it)."""

    name: str
    version: str
    manifest_digest: str
    weights: Weights
    datasets: tuple[DatasetFingerprint, ...] = ()
    code: CodeCommit
    parents: tuple[str, ...] = ()
    round: str = ""  # "<task>/<round>" for a federated round's global model
    training_orgs: tuple[str, ...] = ()
    storage_uris: tuple[str, ...] = ()
    metrics: Mapping[str, float] = field(default_factory=dict)
    confidential_digest: str = ""
    aggregate_digest: str = ""  # a round model's: the round's agreed aggregate digest

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class Actor(Record):
    msp_id: str
    subject: str
    at: str
    tx_id: str


class StatusChange(Actor):
    reason: str


class ModelVersion(RegistrationRequest):
    registered_by: Actor
    status: str  # registered, approved, revoked, deprecated
    approvals: tuple[Actor, ...] = ()
    approved_at: str = ""
    revocation: StatusChange | None = None
    deprecation: StatusChange | None = None
    pending_confirmations: tuple[str, ...] = ()  # training orgs that have not confirmed yet
    confirmations: tuple[Actor, ...] = ()
    revocation_votes: tuple[StatusChange, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        for optional in ("revocation", "deprecation"):  # Go omits them when empty
            if out[optional] is None:
                del out[optional]
        return out


class Deployability(Record):
    ref: str
    status: str
    deployable: bool
    approvals: int
    required: int
    rule: str
    weights_digest: str
    manifest_digest: str
    suspended_by: tuple[str, ...] = ()  # orgs that suspended their own use of it


class Suspension(StatusChange):
    """One org's halt of its own use of a version (its services stop; others go on)."""

    ref: str


class ConfidentialGrant(Record):
    ref: str
    grantee: str  # MSP ID
    by: Actor
    withdrawn: Actor | None = None


class Page(Record):
    models: tuple[ModelVersion, ...] = ()
    bookmark: str  # "" on the last page


class HistoryEntry(Record):
    tx_id: str
    timestamp: str
    record: ModelVersion | None = None


class LineageEdge(Record):
    child: str
    parent: str


class Lineage(Record):
    root: str
    versions: tuple[ModelVersion, ...] = ()
    edges: tuple[LineageEdge, ...] = ()
    datasets: Mapping[str, tuple[DatasetFingerprint, ...]] = field(default_factory=dict)
    rounds: Mapping[str, str] = field(default_factory=dict)


class DeploymentPolicy(Record):
    model_name: str
    rule: str  # identifiers.DEPLOYMENT_RULE_PATTERN
    voters: tuple[str, ...] = ()
    at: str
    tx_id: str


def _object(raw: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise RecordError(f"confidential provenance is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise RecordError("confidential provenance is not a JSON object")
    return parsed


class RegistryClient(ContractClient):
    """Typed calls of the Registry contract."""

    CONTRACT = "Registry"

    def register(self, request: RegistrationRequest) -> ModelVersion:
        """Record a version (role=trainer or admin). Refusals: INVALID (a field, naming it),
        CONFLICT (name@version exists), NOT_FOUND (a parent), FORBIDDEN (role)."""
        body = json.dumps(request.to_json(), sort_keys=True)
        return self._run(submit(ModelVersion.from_bytes, "Register", body))

    def put_confidential(self, ref: str, secret: bytes, own_org: str) -> None:
        """Store confidential provenance in the registering org's collection, endorsed by
        that org alone. Refusals: FORBIDDEN (another org), INVALID (digest differs)."""
        call = submit(
            nothing,
            "PutConfidential",
            ref,
            transient={"confidential": secret},
            endorsing_organizations=(own_org,),
        )
        self._run(call)

    def approve(self, ref: str) -> ModelVersion:
        """This org's approval (org admins). Refusals: NOT_FOUND, FORBIDDEN, CONFLICT
        (revoked or deprecated); approving again returns the record (idempotent)."""
        return self._run(submit(ModelVersion.from_bytes, "Approve", ref))

    def revoke(self, ref: str, reason: str) -> ModelVersion:
        """This org's vote to withdraw the version for good (org admins); revoked once a
        majority of members voted. Refusals: NOT_FOUND, FORBIDDEN, CONFLICT (revoked or
        deprecated), ALREADY_DONE (this org voted)."""
        return self._run(submit(ModelVersion.from_bytes, "Revoke", ref, reason))

    def confirm_training(self, ref: str) -> ModelVersion:
        """This org confirms it trained the version (a trainer or admin of an org named in
        trainingOrgs); approvals wait for every named org. Refusals: NOT_FOUND,
        FORBIDDEN (not named), ALREADY_DONE."""
        return self._run(submit(ModelVersion.from_bytes, "ConfirmTraining", ref))

    def suspend(self, ref: str, reason: str) -> Suspension:
        """Stop this org's own use of the version at once (org admins): its services
        neither anchor nor attest with it. Refusals: NOT_FOUND, FORBIDDEN, ALREADY_DONE, INVALID."""
        return self._run(submit(Suspension.from_bytes, "Suspend", ref, reason))

    def resume(self, ref: str) -> Suspension:
        """Lift this org's suspension (org admins). Refusals: NOT_FOUND (none), FORBIDDEN."""
        return self._run(submit(Suspension.from_bytes, "Resume", ref))

    def grant_confidential(self, ref: str, grantee: str, own_org: str) -> ConfidentialGrant:
        """Let another member read the version's confidential provenance (admins of the
        registering org; endorsed by its peers alone). Refusals: NOT_FOUND, FORBIDDEN, INVALID."""
        call = submit(ConfidentialGrant.from_bytes, "GrantConfidential", ref, grantee,
                      endorsing_organizations=(own_org,))  # fmt: skip
        return self._run(call)

    def withdraw_confidential_grant(self, ref: str, grantee: str, own_org: str) -> ConfidentialGrant:
        """End a grant (the record stays, marked withdrawn). Refusals: NOT_FOUND,
        FORBIDDEN, ALREADY_DONE (no grant held)."""
        call = submit(ConfidentialGrant.from_bytes, "WithdrawConfidentialGrant", ref, grantee,
                      endorsing_organizations=(own_org,))  # fmt: skip
        return self._run(call)

    def deprecate(self, ref: str, reason: str) -> ModelVersion:
        """Retire (an admin of a training org). Refusals: NOT_FOUND, FORBIDDEN, CONFLICT."""
        return self._run(submit(ModelVersion.from_bytes, "Deprecate", ref, reason))

    def vote_deployment_policy(self, name: str, rule: str) -> DeploymentPolicy:
        """This org's vote for a model name's approval rule (org admins).
        Refusals: INVALID (name or rule), FORBIDDEN."""
        return self._run(submit(DeploymentPolicy.from_bytes, "VoteDeploymentPolicy", name, rule))

    def get_deployment_policy(self, name: str) -> DeploymentPolicy:
        """The rule in force for a model name. Refusals: INVALID (name)."""
        return self._run(evaluate(DeploymentPolicy.from_bytes, "GetDeploymentPolicy", name))

    def get(self, ref: str) -> ModelVersion:
        """Refusals: NOT_FOUND, INVALID (not name@version)."""
        return self._run(evaluate(ModelVersion.from_bytes, "Get", ref))

    def deployable(self, ref: str) -> Deployability:
        """Whether the version may be served now, and why. Refusals: NOT_FOUND."""
        return self._run(evaluate(Deployability.from_bytes, "Deployable", ref))

    def list_versions(self, name: str = "", page_size: int = 50, bookmark: str = "") -> Page:
        """Versions a page at a time, of one name or all. Refusals: INVALID."""
        return self._run(evaluate(Page.from_bytes, "List", name, str(page_size), bookmark))

    def history(self, ref: str) -> tuple[HistoryEntry, ...]:
        """Every committed change of the version's record. Refusals: NOT_FOUND."""
        return self._run(evaluate(many(HistoryEntry), "History", ref))

    def lineage(self, ref: str) -> Lineage:
        """Ancestry: parents, datasets, federated rounds. Refusals: NOT_FOUND."""
        return self._run(evaluate(Lineage.from_bytes, "Lineage", ref))

    def get_confidential(self, ref: str) -> dict[str, Any]:
        """Confidential provenance, only for the registering org and orgs it granted,
        evaluated on a peer of the registering org. Refusals: NOT_FOUND, FORBIDDEN."""
        return self._run(evaluate(_object, "GetConfidential", ref))
