"""The Federation contract's protocol v2 rules, in memory, for unit tests of the agent's
step logic: commitments that close when everyone committed, posts checked as the
contract checks them, a quorum of at least two orgs posting the same assessment, and
settlements in order. Time is two switches a test turns: `commit_deadline_passed` and
`reveal_deadline_passed`. Refusals carry the chaincode's codes, as the real contract's do."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc

from fabricml.contracts.federation import (
    AggregatePost,
    Commitment,
    Participant,
    RoundResult,
    RoundState,
    Task,
    TaskState,
)
from fabricml.federation.agent_state import RoundModel
from fabricml.federation.fixedpoint import Update
from fabricml.federation.reveals import UnfetchableUpdate
from fabricml.gateway import EndorseError, ErrorDetail, RefusalCode
from fabricml.registry.spares import Spares

PAST, FUTURE = "2000-01-01T00:00:00Z", "2999-01-01T00:00:00Z"


def refused(code: RefusalCode, message: str) -> EndorseError:
    """A refusal as the Gateway raises it: coded, in the endorsing peer's details."""
    detail = ErrorDetail("127.0.0.1:7110", "Org1MSP", f"chaincode response 500, {code}: {message}")
    return EndorseError("failed to endorse transaction", grpc.StatusCode.ABORTED, [detail], "tx")


def tx(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


@dataclass
class FakeFederation:
    """One running task; `caller` is the participant key the next call is made as."""

    task: Task
    caller: str = ""
    committed: dict[int, list[Commitment]] = field(default_factory=dict)
    posts: dict[int, list[AggregatePost]] = field(default_factory=dict)
    results: dict[int, RoundResult] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    digests: set[str] = field(default_factory=set)
    commit_deadline_passed: bool = False
    reveal_deadline_passed: bool = False

    # ---- reading ----------------------------------------------------------------------

    def _me(self) -> Participant:
        found = self.task.participant(self.caller)
        if found is None:
            raise refused(RefusalCode.FORBIDDEN, f"{self.caller} is not a participant")
        return found

    def settled(self) -> int:
        return max(self.results, default=0)

    def active(self, round_: int) -> list[Participant]:
        return [p for p in self.task.participants if p.active_in(round_)]

    def closed(self, round_: int) -> bool:
        done = {c.participant.key for c in self.committed.get(round_, [])}
        return self.commit_deadline_passed or {p.key for p in self.active(round_)} <= done

    def _quorum(self, round_: int) -> AggregatePost | None:
        orgs = {p.msp_id for p in self.active(round_)}
        need = max(2, len(orgs) // 2 + 1)
        posts = self.posts.get(round_, [])
        same = [[q for q in posts if _same(p, q)] for p in posts]
        return next((group[0] for group in same if len(group) >= need), None)

    def get_task(self, task_id: str) -> Task:
        state = TaskState(task_id=self.task.id, escrow=0, reward_left=0, carry=0, forfeit=0,
                          settled_round=self.settled(), done=self.task.status == "done")  # fmt: skip
        next_round = self.settled() + (self.task.status == "running")
        return replace(self.task, round=next_round, state=state)

    def get_round_state(self, task_id: str, round_: int) -> RoundState:
        if round_ > self.settled() + 1:
            raise refused(RefusalCode.WRONG_PHASE, f"round {round_ - 1} is not settled")
        agreed = self._quorum(round_)
        closed = self.closed(round_)
        settleable = round_ not in self.results and self._decide(round_) is not None
        phase = "SETTLED" if round_ in self.results else "SETTLE" if settleable else "AGGREGATE"
        return RoundState(
            task_id=self.task.id, round=round_, phase=phase if closed else "COMMIT",
            participants=tuple(p.key for p in self.active(round_)),
            committed=tuple(sorted(c.participant.key for c in self.committed.get(round_, []))),
            commits_closed=closed, posted=tuple(p.msp_id for p in self.posts.get(round_, [])),
            agreed_digest=agreed.digest if agreed else "",
            reveal_deadline=PAST if self.reveal_deadline_passed else FUTURE, settleable=settleable,
        )  # fmt: skip

    def commitments(self, task_id: str, round_: int) -> tuple[Commitment, ...]:
        return tuple(self.committed.get(round_, []))

    def aggregates(self, task_id: str, round_: int) -> tuple[AggregatePost, ...]:
        return tuple(self.posts.get(round_, []))

    def get_round(self, task_id: str, round_: int) -> RoundResult:
        if round_ not in self.results:
            raise refused(RefusalCode.NOT_FOUND, f"round {round_} is not settled")
        return self.results[round_]

    # ---- transactions -----------------------------------------------------------------

    def join(self, task_id: str) -> Task:
        self.calls.append(f"join {self.caller}")
        msp, subject = self.caller.split("/")
        joined = Participant(msp_id=msp, subject=subject, slashed=False)
        self.task = replace(self.task, participants=(*self.task.participants, joined))
        return self.task

    def commit(self, task_id: str, round_: int, digest: str, samples: int, uri: str) -> Commitment:
        me = self._me()
        mine = [c for c in self.committed.get(round_, []) if c.participant.key == me.key]
        if mine and (mine[0].digest, mine[0].samples, mine[0].uri) == (digest, samples, uri):
            return mine[0]  # the same commitment again: the existing record, nothing changes
        if mine:
            raise refused(RefusalCode.CONFLICT, f"{me.key} already committed; a commitment cannot change")
        if round_ > 1 and (not self.closed(round_ - 1) or self.settled() < round_ - 2):
            raise refused(RefusalCode.WRONG_PHASE, f"round {round_ - 1}'s commitments are open")
        if self.closed(round_) or self.posts.get(round_) or round_ in self.results:
            raise refused(RefusalCode.WRONG_PHASE, f"the commit phase of round {round_} ended")
        if digest in self.digests:
            raise refused(RefusalCode.CONFLICT, f"update {digest} was already committed: a replay")
        self.digests.add(digest)
        self.calls.append(f"commit {me.key} {round_}")
        made = Commitment(participant=me, digest=digest, samples=samples, uri=uri, tx_id=tx(digest))
        self.committed.setdefault(round_, []).append(made)
        return made

    def post_aggregate(
        self,
        task_id: str,
        round_: int,
        digest: str,
        scores: Mapping[str, int],
        flagged: Sequence[str],
        missing: Sequence[str] = (),
    ) -> AggregatePost:
        me = self._me()
        post = AggregatePost(
            msp_id=me.msp_id,
            digest=digest,
            scores=dict(scores),
            flagged=tuple(sorted(flagged)),
            missing=tuple(sorted(missing)),
            tx_id=tx(digest, me.msp_id),
        )
        same = [p for p in self.posts.get(round_, []) if p.msp_id == me.msp_id]
        if same and _same(same[0], post):
            return same[0]
        if same:
            raise refused(RefusalCode.CONFLICT, f"{me.msp_id} already posted an assessment of round {round_}")
        committed = sorted(c.participant.key for c in self.committed.get(round_, []))
        if not self.closed(round_) or len(committed) < self.task.min_participants or round_ in self.results:
            raise refused(RefusalCode.WRONG_PHASE, f"round {round_} takes no assessment now")
        if missing and not self.reveal_deadline_passed:
            raise refused(RefusalCode.WRONG_PHASE, "missing only once the reveal window ran its full length")
        if sorted(scores) != [k for k in committed if k not in missing]:
            raise refused(
                RefusalCode.INVALID, f"scores must name exactly the usable updates, got {sorted(scores)}"
            )
        self.calls.append(f"post {me.msp_id} {round_}")
        self.posts.setdefault(round_, []).append(post)
        return post

    def _decide(self, round_: int) -> tuple[str, AggregatePost | None] | None:
        if not self.closed(round_):
            return None
        if len(self.committed.get(round_, [])) < self.task.min_participants:
            return "CLOSED", None
        agreed = self._quorum(round_)
        if agreed is not None:
            usable = len(self.committed[round_]) - len(agreed.missing)
            return ("FINALIZED" if usable >= self.task.min_participants else "CLOSED"), agreed
        return None

    def settle(self, task_id: str, round_: int) -> RoundResult:
        if round_ in self.results:
            return self.results[round_]
        decided = self._decide(round_) if round_ == self.settled() + 1 else None
        if decided is None:
            raise refused(RefusalCode.WRONG_PHASE, f"round {round_} cannot be settled yet")
        self.calls.append(f"settle {round_}")
        status, agreed = decided
        out = set(agreed.flagged) | set(agreed.missing) if agreed else set()
        paid = [k for k in (agreed.scores if agreed else {}) if k not in out]
        self.results[round_] = RoundResult(
            task_id=self.task.id, round=round_, status=status, reason="" if agreed else "too few",
            aggregate_digest=agreed.digest if agreed else "",
            agreeing=tuple(sorted({p.msp_id for p in self.posts[round_] if agreed and _same(p, agreed)})),
            rewards={k: self.task.reward_per_round // len(paid) for k in paid}, slashed=tuple(sorted(out)),
            missing=agreed.missing if agreed else (), task_done=round_ == self.task.rounds,
            tx_id=tx("round", round_),
        )  # fmt: skip
        people = tuple(replace(p, slashed=True, out="slashed", out_round=round_) if p.key in out else p
                       for p in self.task.participants)  # fmt: skip
        self.task = replace(
            self.task, participants=people, status="done" if round_ == self.task.rounds else "running"
        )
        return self.results[round_]


def _same(a: AggregatePost, b: AggregatePost) -> bool:
    return (a.digest, dict(a.scores), a.flagged, a.missing) == (
        b.digest,
        dict(b.scores),
        b.flagged,
        b.missing,
    )


@dataclass
class FakeStore:
    """The artifact stores: bytes by digest, and the task's initial model."""

    initial: Path
    blobs: dict[str, bytes] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)

    def publish(self, path: Path) -> str:
        return self.put(path.read_bytes())

    def put(self, raw: bytes) -> str:
        digest = hashlib.sha256(raw).hexdigest()
        self.blobs[digest] = raw
        self.published.append(digest)
        return digest

    def fetch_to(
        self, digest: str, uri: str, dest: Path, spares: Spares | None = None, size: int = 0
    ) -> Path:
        if digest not in self.blobs:
            raise UnfetchableUpdate(f"update {digest} is in no store")
        dest.write_bytes(self.blobs[digest])
        return dest

    def initial_model(self, ref: str, dest: Path) -> Path:
        return self.initial


@dataclass
class FakeRegistrar:
    registered: list[int] = field(default_factory=list)

    def register(self, entry: RoundModel, weights: Update, config: Mapping[str, object]) -> bool:
        self.registered.append(entry.round)
        return True
