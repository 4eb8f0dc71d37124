"""The Federation contract (protocol v2): federated tasks, their rounds, commitments,
assessments and settlements (docs/federation-protocol-v2.md)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import field

from .call import ContractClient, evaluate, submit
from .records import Record, many

PHASES = ("COMMIT", "AGGREGATE", "SETTLE", "SETTLED")  # a round's, as GetRoundState reports it


class TaskRequest(Record):
    """What an org admin asks for when it opens a task. 0 takes the contract's default:
    maxPerOrg 1 (set it when an org runs several participants), enrollSeconds 7 days,
    clockSkewSeconds 30."""

    id: str
    initial_model: str  # name@version of the registered starting point
    rounds: int
    min_participants: int
    max_per_org: int = 0
    stake: int
    reward_per_round: int
    enroll_seconds: int = 0
    commit_seconds: int
    reveal_seconds: int
    aggregate_seconds: int
    clock_skew_seconds: int = 0
    rule: str  # identifiers.RULE_PATTERN


class Participant(Record):
    msp_id: str
    subject: str
    stake: int = 0  # what it still has at stake
    slashed: bool
    out: str = ""  # "", "slashed" or "dropped"
    out_round: int = 0  # the round whose settlement took it out
    missed: int = 0  # commit phases missed in a row

    @property
    def key(self) -> str:
        """ "MSPID/subject", as rounds, scores and flags name a participant."""
        return f"{self.msp_id}/{self.subject}"

    def active_in(self, round_: int) -> bool:
        """Takes part in `round_`: never out, or out only after that round's settlement."""
        return not self.out or self.out_round >= round_


class TaskState(Record):
    """What a task holds and how far it is settled (written by lifecycle calls and Settle)."""

    task_id: str
    escrow: int  # every token the task holds: stakes + reward_left + carry + forfeit
    reward_left: int
    carry: int
    forfeit: int
    settled_round: int
    done: bool
    reason: str = ""


class Task(TaskRequest):
    """A task's terms and participants. GetTask adds `round` (the next round to settle,
    or the last one settled once done), its `phase`, `phase_deadline`, `escrow` and
    `state`; the lifecycle calls return the terms only."""

    creator: str
    status: str  # enrolling, running, done, cancelled, closed
    created_at: str = ""
    started_at: str = ""
    participants: tuple[Participant, ...] = ()
    round: int = 0
    phase: str = ""  # COMMIT, AGGREGATE or SETTLE of `round` while running
    phase_deadline: str = ""  # RFC 3339, by the ledger's clock
    escrow: int = 0
    state: TaskState | None = None

    def participant(self, key: str) -> Participant | None:
        return next((p for p in self.participants if p.key == key), None)

    @property
    def active(self) -> tuple[Participant, ...]:
        """Participants still in the task (not slashed or dropped)."""
        return tuple(p for p in self.participants if not p.out)


class RoundState(Record):
    """Where one round stands: what an agent reads to know what to do next."""

    task_id: str
    round: int
    phase: str  # PHASES
    participants: tuple[str, ...] = ()  # the round's, in joining order
    committed: tuple[str, ...] = ()
    commits_closed: bool
    posted: tuple[str, ...] = ()  # MSP IDs
    quorum_size: int = 0
    agreed_digest: str = ""  # set once a quorum of orgs posted the same assessment
    commit_deadline: str = ""
    commit_close: str = ""
    reveal_deadline: str = ""
    aggregate_deadline: str = ""
    settleable: bool = False


class Commitment(Record):
    task_id: str = ""
    round: int = 0
    participant: Participant
    digest: str
    samples: int
    uri: str
    committed_at: str = ""
    tx_id: str


class AggregatePost(Record):
    task_id: str = ""
    round: int = 0
    msp_id: str
    digest: str
    scores: Mapping[str, int] = field(default_factory=dict)
    flagged: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    posted_at: str = ""
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
    missing: tuple[str, ...] = ()
    penalized: Mapping[str, int] = field(default_factory=dict)  # missed the commit phase: what it cost
    dropped: tuple[str, ...] = ()
    pool: int = 0
    carried: int = 0
    forfeits: Mapping[str, int] = field(default_factory=dict)
    commit_close: str = ""
    settled_at: str = ""
    task_done: bool = False
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
        Refusals: NOT_FOUND, WRONG_PHASE (not enrolling), FORBIDDEN (role), EXHAUSTED (stake,
        the org has maxPerOrg participants, or 256 participants)."""
        return self._run(submit(Task.from_bytes, "Join", task_id))

    def leave(self, task_id: str) -> Task:
        """Withdraw the calling participant before the start; its stake goes back.
        Refusals: NOT_FOUND, WRONG_PHASE, FORBIDDEN (not a participant)."""
        return self._run(submit(Task.from_bytes, "Leave", task_id))

    def start(self, task_id: str) -> Task:
        """Begin round 1 (an admin of the creator or of a participating org).
        Refusals: NOT_FOUND, WRONG_PHASE, FORBIDDEN, CONFLICT (too few participants or orgs)."""
        return self._run(submit(Task.from_bytes, "Start", task_id))

    def cancel(self, task_id: str) -> Task:
        """Call the task off before it starts (the creator's admins); everything refunded.
        Refusals: NOT_FOUND, FORBIDDEN, WRONG_PHASE (started), ALREADY_DONE."""
        return self._run(submit(Task.from_bytes, "Cancel", task_id))

    def close(self, task_id: str) -> TaskState:
        """End a task that cannot go on (any member): its enrollment ended unstarted, or a
        round's commit phase ran its full length with too few commitments. Stakes back.
        Refusals: NOT_FOUND, WRONG_PHASE (it can still go on), ALREADY_DONE, FORBIDDEN."""
        return self._run(submit(TaskState.from_bytes, "Close", task_id))

    def commit(self, task_id: str, round_: int, digest: str, samples: int, uri: str) -> Commitment:
        """Commit to the digest of this participant's update and where it will be served.
        Refusals: WRONG_PHASE (the round's commitments are not open), FORBIDDEN (not a
        participant, or out), INVALID, CONFLICT (a replay of a digest committed before in
        the task, or another commitment for this round). The same call again returns the record."""
        args = (task_id, str(round_), digest, str(samples), uri)
        return self._run(submit(Commitment.from_bytes, "Commit", *args))

    def post_aggregate(
        self,
        task_id: str,
        round_: int,
        digest: str,
        scores: Mapping[str, int],
        flagged: Sequence[str],
        missing: Sequence[str] = (),
    ) -> AggregatePost:
        """One org's assessment of the round (admins or trainers of a participating org):
        the new global model's digest, a score 0..1000 for exactly the usable updates,
        flags, and the updates it could not get. Refusals: WRONG_PHASE (commitments open,
        past the aggregate deadline, or `missing` before the reveal window ran its full
        length), FORBIDDEN, INVALID, CONFLICT (the org posted another)."""
        args = (
            task_id,
            str(round_),
            digest,
            json.dumps(dict(scores), sort_keys=True),
            json.dumps(sorted(flagged)),
            json.dumps(sorted(missing)),
        )
        return self._run(submit(AggregatePost.from_bytes, "PostAggregate", *args))

    def settle(self, task_id: str, round_: int) -> RoundResult:
        """Record how the round ended and move its tokens (any member). Refusals:
        WRONG_PHASE (not the next round to settle, or it can still go either way)."""
        return self._run(submit(RoundResult.from_bytes, "Settle", task_id, str(round_)))

    def get_task(self, task_id: str) -> Task:
        """Refusals: NOT_FOUND."""
        return self._run(evaluate(Task.from_bytes, "GetTask", task_id))

    def get_round_state(self, task_id: str, round_: int) -> RoundState:
        """Where a round stands. Refusals: NOT_FOUND, INVALID (round), WRONG_PHASE (the
        round before is not settled, or the task is not running)."""
        return self._run(evaluate(RoundState.from_bytes, "GetRoundState", task_id, str(round_)))

    def get_round(self, task_id: str, round_: int) -> RoundResult:
        """How a round was settled. Refusals: NOT_FOUND (no such task, or not settled)."""
        return self._run(evaluate(RoundResult.from_bytes, "GetRound", task_id, str(round_)))

    def commitments(self, task_id: str, round_: int) -> tuple[Commitment, ...]:
        """Every commitment of the round so far. Refusals: NOT_FOUND."""
        return self._run(evaluate(many(Commitment), "Commitments", task_id, str(round_)))

    def aggregates(self, task_id: str, round_: int) -> tuple[AggregatePost, ...]:
        """Every org's assessment of the round so far. Refusals: NOT_FOUND."""
        return self._run(evaluate(many(AggregatePost), "Aggregates", task_id, str(round_)))
