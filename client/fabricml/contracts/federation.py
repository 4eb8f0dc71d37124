"""The Federation contract: federated tasks, their rounds, commitments and aggregates."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import field

from .call import ContractClient, evaluate, submit
from .records import Record, many


class TaskRequest(Record):
    """What an org admin asks for when it opens a task."""

    id: str
    initial_model: str  # name@version of the registered starting point
    rounds: int
    min_participants: int
    stake: int
    reward_per_round: int
    commit_seconds: int
    reveal_seconds: int
    aggregate_seconds: int
    rule: str  # identifiers.RULE_PATTERN


class Participant(Record):
    msp_id: str
    subject: str
    slashed: bool

    @property
    def key(self) -> str:
        """ "MSPID/subject", as rounds, scores and flags name a participant."""
        return f"{self.msp_id}/{self.subject}"


class Task(TaskRequest):
    creator: str
    status: str  # enrolling, running, done
    round: int
    phase: str  # COMMIT, REVEAL, AGGREGATE while running
    phase_deadline: str  # RFC 3339, by the ledger's clock
    participants: tuple[Participant, ...] = ()
    escrow: int

    def participant(self, key: str) -> Participant | None:
        return next((p for p in self.participants if p.key == key), None)

    @property
    def active(self) -> tuple[Participant, ...]:
        return tuple(p for p in self.participants if not p.slashed)


class Commitment(Record):
    participant: Participant
    digest: str
    samples: int
    revealed: bool
    uri: str
    tx_id: str


class AggregatePost(Record):
    msp_id: str
    digest: str
    scores: Mapping[str, int] = field(default_factory=dict)
    flagged: tuple[str, ...] = ()
    tx_id: str


class RoundResult(Record):
    task_id: str
    round: int
    status: str  # FINALIZED or CLOSED
    reason: str
    aggregate_digest: str
    agreeing: tuple[str, ...] = ()
    disagreeing: tuple[str, ...] = ()
    rewards: Mapping[str, int] = field(default_factory=dict)
    slashed: tuple[str, ...] = ()
    tx_id: str


class FederationClient(ContractClient):
    """Typed calls of the Federation contract."""

    CONTRACT = "Federation"

    def create_task(self, request: TaskRequest) -> Task:
        """Open a task (org admins); the creator's org escrows every round's reward.
        Refusals: INVALID (a field), CONFLICT (the id exists), EXHAUSTED (balance), FORBIDDEN."""
        body = json.dumps(request.to_json(), sort_keys=True)
        return self._run(submit(Task.from_bytes, "CreateTask", body))

    def join(self, task_id: str) -> Task:
        """Enroll the calling identity (role=trainer) and stake its org's tokens.
        Refusals: NOT_FOUND, WRONG_PHASE (not enrolling), FORBIDDEN (role), EXHAUSTED (stake)."""
        return self._run(submit(Task.from_bytes, "Join", task_id))

    def start(self, task_id: str) -> Task:
        """Begin round 1 (the creator's admins). Refusals: NOT_FOUND, WRONG_PHASE, FORBIDDEN,
        CONFLICT (too few participants)."""
        return self._run(submit(Task.from_bytes, "Start", task_id))

    def advance(self, task_id: str) -> Task:
        """Move to the next phase when everyone acted or the phase's deadline passed.
        Refusals: NOT_FOUND, WRONG_PHASE (not yet allowed, or the task is done)."""
        return self._run(submit(Task.from_bytes, "Advance", task_id))

    def commit(self, task_id: str, round_: int, digest: str, samples: int) -> Commitment:
        """Commit to the digest of this participant's update.
        Refusals: WRONG_PHASE, FORBIDDEN (not a participant, slashed), INVALID, ALREADY_DONE."""
        args = (task_id, str(round_), digest, str(samples))
        return self._run(submit(Commitment.from_bytes, "Commit", *args))

    def reveal(self, task_id: str, round_: int, digest: str, uri: str) -> Commitment:
        """Reveal the committed update's digest and where members fetch it.
        Refusals: WRONG_PHASE, FORBIDDEN, CONFLICT (not what was committed), ALREADY_DONE."""
        return self._run(submit(Commitment.from_bytes, "Reveal", task_id, str(round_), digest, uri))

    def post_aggregate(
        self, task_id: str, round_: int, digest: str, scores: Mapping[str, int], flagged: Sequence[str]
    ) -> AggregatePost:
        """One org's aggregate digest, scores and flags for the round (org members).
        Refusals: WRONG_PHASE, FORBIDDEN, INVALID, ALREADY_DONE (the org posted another)."""
        args = (
            task_id,
            str(round_),
            digest,
            json.dumps(dict(scores), sort_keys=True),
            json.dumps(list(flagged)),
        )
        return self._run(submit(AggregatePost.from_bytes, "PostAggregate", *args))

    def get_task(self, task_id: str) -> Task:
        """Refusals: NOT_FOUND."""
        return self._run(evaluate(Task.from_bytes, "GetTask", task_id))

    def get_round(self, task_id: str, round_: int) -> RoundResult:
        """How a round ended. Refusals: NOT_FOUND (no such task, or the round has not ended)."""
        return self._run(evaluate(RoundResult.from_bytes, "GetRound", task_id, str(round_)))

    def commitments(self, task_id: str, round_: int) -> tuple[Commitment, ...]:
        """Every commitment of the round so far. Refusals: NOT_FOUND."""
        return self._run(evaluate(many(Commitment), "Commitments", task_id, str(round_)))

    def aggregates(self, task_id: str, round_: int) -> tuple[AggregatePost, ...]:
        """Every org's aggregate post of the round so far. Refusals: NOT_FOUND."""
        return self._run(evaluate(many(AggregatePost), "Aggregates", task_id, str(round_)))
