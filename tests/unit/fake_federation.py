"""The Federation contract's rules, in memory, for unit tests of the agent's step logic:
phases, commitments, reveals, aggregate posts and a majority of orgs finalizing a round.
Refusals carry the chaincode's codes, as the real contract's do."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc

from fabricml.contracts.federation import AggregatePost, Commitment, Participant, RoundResult, Task
from fabricml.federation.agent_state import RoundModel
from fabricml.federation.fixedpoint import Update
from fabricml.gateway import EndorseError, ErrorDetail, RefusalCode


def refused(code: RefusalCode, message: str) -> EndorseError:
    """A refusal as the Gateway raises it: coded, in the endorsing peer's details."""
    detail = ErrorDetail("127.0.0.1:7110", "Org1MSP", f"chaincode response 500, {code}: {message}")
    return EndorseError("failed to endorse transaction", grpc.StatusCode.ABORTED, [detail], "tx")


def tx(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


@dataclass
class FakeFederation:
    """One task; `caller` is the participant key the next call is made as."""

    task: Task
    caller: str = ""
    committed: dict[int, list[Commitment]] = field(default_factory=dict)
    posts: dict[int, list[AggregatePost]] = field(default_factory=dict)
    results: dict[int, RoundResult] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def _me(self) -> Participant:
        found = self.task.participant(self.caller)
        if found is None:
            raise refused(RefusalCode.FORBIDDEN, f"{self.caller} is not a participant")
        return found

    def _phase(self, phase: str, round_: int) -> None:
        if self.task.status != "running" or self.task.phase != phase or self.task.round != round_:
            raise refused(RefusalCode.WRONG_PHASE, f"task is in round {self.task.round} {self.task.phase}")

    def get_task(self, task_id: str) -> Task:
        return self.task

    def join(self, task_id: str) -> Task:
        self.calls.append(f"join {self.caller}")
        msp, subject = self.caller.split("/")
        joined = Participant(msp_id=msp, subject=subject, slashed=False)
        self.task = replace(self.task, participants=(*self.task.participants, joined))
        return self.task

    def commit(self, task_id: str, round_: int, digest: str, samples: int) -> Commitment:
        self._phase("COMMIT", round_)
        me = self._me()
        mine = [c for c in self.committed.get(round_, []) if c.participant.key == me.key]
        if mine and (mine[0].digest, mine[0].samples) == (digest, samples):
            return mine[0]  # the same commitment again: the existing record, nothing changes
        if mine:
            raise refused(
                RefusalCode.CONFLICT,
                f"{me.key} already committed {mine[0].digest}; a commitment cannot change",
            )
        self.calls.append(f"commit {me.key} {round_}")
        made = Commitment(
            participant=me, digest=digest, samples=samples, revealed=False, uri="", tx_id=tx(digest)
        )
        self.committed.setdefault(round_, []).append(made)
        return made

    def reveal(self, task_id: str, round_: int, digest: str, uri: str) -> Commitment:
        self._phase("REVEAL", round_)
        me = self._me()
        rows = self.committed.get(round_, [])
        i = next((i for i, c in enumerate(rows) if c.participant.key == me.key), None)
        if i is None or rows[i].digest != digest:
            raise refused(RefusalCode.CONFLICT, f"{me.key} did not commit {digest}")
        if rows[i].revealed and rows[i].uri == uri:
            return rows[i]  # the same reveal again
        self.calls.append(f"reveal {me.key} {round_}")
        rows[i] = replace(rows[i], revealed=True, uri=uri)
        return rows[i]

    def commitments(self, task_id: str, round_: int) -> tuple[Commitment, ...]:
        return tuple(self.committed.get(round_, []))

    def post_aggregate(
        self, task_id: str, round_: int, digest: str, scores: Mapping[str, int], flagged: list[str]
    ) -> AggregatePost:
        self._phase("AGGREGATE", round_)
        me = self._me()
        same = [p for p in self.posts.get(round_, []) if p.msp_id == me.msp_id]
        if same and (same[0].digest, dict(same[0].scores), same[0].flagged) == (
            digest,
            dict(scores),
            tuple(flagged),
        ):
            return same[0]
        if same:
            raise refused(RefusalCode.CONFLICT, f"{me.msp_id} already posted an aggregate for round {round_}")
        self.calls.append(f"post {me.msp_id} {round_}")
        post = AggregatePost(
            msp_id=me.msp_id, digest=digest, scores=dict(scores), flagged=tuple(flagged), tx_id=tx(digest)
        )
        self.posts.setdefault(round_, []).append(post)
        return post

    def aggregates(self, task_id: str, round_: int) -> tuple[AggregatePost, ...]:
        return tuple(self.posts.get(round_, []))

    def get_round(self, task_id: str, round_: int) -> RoundResult:
        if round_ not in self.results:
            raise refused(RefusalCode.NOT_FOUND, f"round {round_} has not ended")
        return self.results[round_]

    def advance(self, task_id: str) -> Task:
        t = self.task
        rows = self.committed.get(t.round, [])
        if t.phase == "COMMIT" and len(rows) >= len(t.active):
            self.task = replace(t, phase="REVEAL")
        elif t.phase == "REVEAL" and all(c.revealed for c in rows):
            self.task = replace(t, phase="AGGREGATE")
        elif t.phase == "AGGREGATE" and self._quorum() is not None:
            self._finalize()
        else:
            raise refused(RefusalCode.WRONG_PHASE, f"round {t.round} {t.phase} cannot end yet")
        self.calls.append(f"advance to {self.task.status if self.task.status == 'done' else self.task.phase}")
        return self.task

    def _quorum(self) -> str | None:
        posts = self.posts.get(self.task.round, [])
        orgs = {p.msp_id for p in self.task.active}
        digests = [p.digest for p in posts]
        return next((d for d in digests if digests.count(d) >= len(orgs) // 2 + 1), None)

    def _finalize(self) -> None:
        t, digest = self.task, self._quorum()
        assert digest is not None
        posts = self.posts[t.round]
        flagged = set(posts[0].flagged)
        agreeing = tuple(sorted({p.msp_id for p in posts if p.digest == digest}))
        rewards = {c.participant.key: t.reward_per_round // len(posts[0].scores or {"x": 1})
                   for c in self.committed[t.round] if c.participant.key not in flagged}  # fmt: skip
        self.results[t.round] = RoundResult(
            task_id=t.id, round=t.round, status="FINALIZED", reason="", aggregate_digest=digest,
            agreeing=agreeing, rewards=rewards, slashed=tuple(sorted(flagged)), tx_id=tx("round", t.round),
        )  # fmt: skip
        slashed = tuple(replace(p, slashed=p.slashed or p.key in flagged) for p in t.participants)
        if t.round == t.rounds:
            self.task = replace(t, status="done", participants=slashed)
        else:
            self.task = replace(t, round=t.round + 1, phase="COMMIT", participants=slashed)


@dataclass
class FakeStore:
    """The artifact stores: bytes by digest, and the task's initial model."""

    initial: Path
    blobs: dict[str, bytes] = field(default_factory=dict)

    def put(self, raw: bytes) -> str:
        digest = hashlib.sha256(raw).hexdigest()
        self.blobs[digest] = raw
        return digest

    def fetch(self, digest: str) -> bytes:
        from fabricml.federation.reveals import UnfetchableUpdate

        if digest not in self.blobs:
            raise UnfetchableUpdate(f"update {digest} is in no store")
        return self.blobs[digest]

    def initial_model(self, ref: str, dest: Path) -> Path:
        return self.initial


@dataclass
class FakeRegistrar:
    registered: list[int] = field(default_factory=list)

    def register(self, entry: RoundModel, weights: Update, config: Mapping[str, object]) -> bool:
        self.registered.append(entry.round)
        return True
