"""Request and response bodies. Requests forbid unknown fields; ledger records allow the
fields a newer chaincode may add."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from fabricml.contracts import identifiers as ids

# Identifiers as the chaincode allows them; anything else (a slash, '..') is refused early.
ModelName = Annotated[str, StringConstraints(pattern=ids.MODEL_NAME_PATTERN)]
ModelVersionId = Annotated[str, StringConstraints(pattern=ids.MODEL_VERSION_PATTERN)]
LedgerId = Annotated[str, StringConstraints(pattern=ids.LEDGER_ID_PATTERN)]
IdentityName = Annotated[str, StringConstraints(pattern=ids.IDENTITY_NAME_PATTERN)]
MspId = Annotated[str, StringConstraints(pattern=ids.MSP_ID_PATTERN)]
Digest = Annotated[str, StringConstraints(pattern=ids.DIGEST_PATTERN)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=512)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Record(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorBody(BaseModel):
    error: str
    detail: str
    code: str = Field(default="", description="The ledger's refusal code (NOT_FOUND, CONFLICT, ...), if any")
    transactionId: str = ""
    endorsers: list[str] = []


# ---- who --------------------------------------------------------------------------


class WhoAmI(BaseModel):
    subject: str
    mspId: str
    role: Literal["admin", "auditor"]
    organization: str
    canWrite: bool


# ---- network ----------------------------------------------------------------------


class NodeHealth(BaseModel):
    name: str
    kind: str
    organization: str
    healthy: bool
    height: int | None = None


class Member(Record):
    mspId: str
    displayName: str
    joinedAt: str
    joinedTxId: str


class NetworkView(BaseModel):
    organization: str
    mspId: str
    channel: str
    chaincode: str
    chaincodeVersion: str
    members: list[Member]
    nodes: list[NodeHealth]
    healthy: int
    total: int


# ---- identities -------------------------------------------------------------------


class IdentityEntry(BaseModel):
    name: str
    type: str
    role: str
    maxEnrollments: str


class RegisterIdentity(Request):
    name: IdentityName
    type: Literal["client", "admin"] = "client"
    role: Literal["trainer", "inference", "auditor"] | None = None


class RegisteredIdentity(BaseModel):
    name: str
    type: str
    role: str
    secret: str = Field(description="One-time enrollment secret; shown once, stored nowhere")


class EnrollIdentity(Request):
    secret: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class EnrolledIdentity(BaseModel):
    name: str
    certificate: str = Field(description="PEM certificate; the private key stays on the server")


class RevokeIdentity(Request):
    reason: Literal[
        "unspecified", "keycompromise", "affiliationchange", "superseded", "cessationofoperation"
    ] = "unspecified"


class RevokedIdentity(BaseModel):
    name: str
    revoked: bool
    crlInChannel: bool


# ---- models -----------------------------------------------------------------------


class Actor(Record):
    mspId: str
    subject: str
    at: str
    txId: str


class ModelRecord(Record):
    name: str
    version: str
    status: str
    manifestDigest: str
    registeredBy: Actor
    approvals: list[Actor] | None = None
    trainingOrgs: list[str] | None = None
    parents: list[str] | None = None
    pendingConfirmations: list[str] | None = Field(default=None, description="Training orgs yet to confirm")
    confirmations: list[Actor] | None = None
    revocationVotes: list[Actor] | None = Field(default=None, description="A majority of members revokes")
    aggregateDigest: str = ""


class Suspension(Record):
    ref: str
    mspId: str
    reason: str


class ConfidentialGrant(Record):
    ref: str
    grantee: str
    by: Actor
    withdrawn: Actor | None = None


class Deployability(Record):
    ref: str
    status: str
    deployable: bool
    approvals: int
    required: int
    rule: str


class ModelDetail(BaseModel):
    record: ModelRecord
    deployability: Deployability


class ModelPage(BaseModel):
    models: list[ModelRecord]
    bookmark: str


class HistoryEntry(Record):
    txId: str
    timestamp: str
    record: ModelRecord | None = None


class Lineage(Record):
    root: str
    versions: list[ModelRecord] | None = None
    edges: list[dict[str, str]] | None = None


class RevokeModel(Request):
    reason: Reason


class SuspendModel(Request):
    reason: Reason


class GrantConfidential(Request):
    grantee: MspId


class ModelMetadata(Request):
    """The JSON part of a model upload."""

    name: ModelName
    version: ModelVersionId
    trainingOrgs: list[MspId] = Field(default=[], max_length=32, description="Other training orgs")
    parents: list[Annotated[str, StringConstraints(max_length=100)]] = Field(default=[], max_length=32)
    metrics: dict[Annotated[str, StringConstraints(max_length=64)], float] = Field(default={}, max_length=64)
    hyperparameters: dict[Annotated[str, StringConstraints(max_length=64)], str | int | float | bool] = Field(
        default={}, max_length=64
    )
    round: Annotated[str, StringConstraints(max_length=128)] = ""
    aggregateDigest: Digest | Literal[""] = Field(
        default="", description="A round model's (fed-<task>@r<n>): the round's agreed aggregate digest"
    )


class Verification(BaseModel):
    ref: str
    ok: bool
    weightsDigest: str
    files: int
    problems: list[str]


# ---- federation -------------------------------------------------------------------


class TaskRequest(Request):
    id: LedgerId
    initialModel: Annotated[str, StringConstraints(max_length=100)]
    rounds: int = Field(ge=1, le=1000)
    minParticipants: int = Field(ge=2, le=256)
    maxPerOrg: int = Field(default=0, ge=0, le=256, description="Participants per org; 0: the contract's 1")
    stake: int = Field(ge=0, le=1 << 50)
    rewardPerRound: int = Field(ge=0, le=1 << 40)
    enrollSeconds: int = Field(default=0, ge=0, le=31536000, description="0: the contract's 7 days")
    commitSeconds: int = Field(ge=1, le=604800)
    revealSeconds: int = Field(ge=1, le=604800)
    aggregateSeconds: int = Field(ge=1, le=604800)
    clockSkewSeconds: int = Field(default=0, ge=0, le=3600, description="0: the contract's 30 s")
    rule: Annotated[str, StringConstraints(pattern=ids.RULE_PATTERN)]


class Participant(Record):
    mspId: str
    subject: str
    slashed: bool
    stake: int = 0
    out: str = Field(default="", description='"", "slashed" or "dropped"')
    outRound: int = 0


class Task(Record):
    id: str
    initialModel: str
    rounds: int
    minParticipants: int
    maxPerOrg: int = 1
    stake: int
    rewardPerRound: int
    rule: str
    creator: str
    status: str
    round: int
    phase: str
    phaseDeadline: str
    participants: list[Participant] | None = None
    escrow: int


class Commitment(Record):
    participant: Participant
    digest: str
    samples: int
    uri: str
    txId: str


class RoundResult(Record):
    taskId: str
    round: int
    status: str
    reason: str
    aggregateDigest: str
    agreeing: list[str] | None = None
    disagreeing: list[str] | None = None
    rewards: dict[str, int] | None = None
    slashed: list[str] | None = None
    missing: list[str] | None = None
    dropped: list[str] | None = None
    txId: str


class TaskState(Record):
    taskId: str
    escrow: int
    settledRound: int
    done: bool
    reason: str = ""


class RoundState(Record):
    taskId: str
    round: int
    phase: str = Field(description="COMMIT, AGGREGATE, SETTLE or SETTLED")
    participants: list[str] | None = None
    committed: list[str] | None = None
    commitsClosed: bool
    posted: list[str] | None = None
    quorumSize: int = 0
    agreedDigest: str = ""
    settleable: bool = False


class RoundView(BaseModel):
    round: int
    state: str = Field(description="COMMIT, AGGREGATE or SETTLE while running; FINALIZED or CLOSED after")
    commitments: list[Commitment]
    result: RoundResult | None
    metrics: dict[str, float] = Field(description="From the round's result or its registered global model")


class TaskSummary(BaseModel):
    id: str
    status: str
    round: int
    phase: str
    creator: str


# ---- attestation ------------------------------------------------------------------


class ServiceId(Record):
    mspId: str
    subject: str


class ServiceState(Record):
    service: ServiceId
    lastSequence: int
    lastReceipt: int


class Batch(Record):
    sequence: int
    model: str
    root: str
    count: int
    firstReceipt: int
    lastReceipt: int
    service: ServiceId
    anchoredAt: str
    txId: str


class ReceiptBundle(Request):
    receipt: dict[str, object]
    certificate: Annotated[str, StringConstraints(max_length=8192)]
    batch: int | None = Field(default=None, ge=0)
    proof: dict[str, object] | None = None
    root: Digest | None = None
    txId: Annotated[str, StringConstraints(max_length=128)] | None = None
    anchoredAt: float | None = Field(
        default=None,
        ge=0,
        description="When the service recorded the batch's commit (Unix seconds), from its proof endpoint",
    )


class CheckResult(BaseModel):
    check: str
    ok: bool
    detail: str


class ReceiptVerification(BaseModel):
    ok: bool
    checks: list[CheckResult]


class OpenClaim(Request):
    id: LedgerId
    inputDigest: Digest
    modelName: ModelName
    k: int = Field(ge=2, le=64, description="Organizations that must agree (at least two)")
    amount: Annotated[str, StringConstraints(pattern=ids.AMOUNT_PATTERN)] = Field(
        description="The payout, fixed now: a decimal with at most 2 decimals"
    )


class Claim(Record):
    id: str
    inputDigest: str
    modelName: str
    k: int
    amount: str = ""
    openedBy: str
    status: str
    acceptedOutput: str
    agreeingOrgs: list[str] | None = None
    answers: int = 0


class ClaimDetail(BaseModel):
    claim: Claim
    attestations: list[dict[str, object]]


# ---- tokens -----------------------------------------------------------------------


class Balance(BaseModel):
    mspId: str
    amount: int
    staked: int = Field(description="Held in escrow by federated tasks still enrolling or running")


class MintVote(Request):
    id: LedgerId
    recipient: MspId
    amount: int = Field(ge=1, le=1 << 50)


class MintProposal(Record):
    id: str
    recipient: str
    amount: int
    voters: list[str] | None = None
    minted: bool


class Activity(BaseModel):
    event: str
    block: int
    transactionId: str
    summary: str
