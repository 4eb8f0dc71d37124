"""The Federation contract's round rules, in memory, for unit tests of the mod, the
strategy and the verifier: commitments close when every participant committed, a
majority of orgs (at least two) posting the same assessment agrees it, Settle records
it. Refusals carry the chaincode's codes, as the real contract's do."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fabricml.contracts.federation import (
    AggregatePost,
    Commitment,
    Participant,
    RoundResult,
    RoundState,
    Task,
)
from fabricml.gateway import RefusalCode
from fabricml.registry.artifacts import ArtifactError

from ..unit.fake_federation import refused


def task_of(task_id: str, keys: Sequence[str], rounds: int = 3, rule: str = "trust+cc") -> Task:
    participants = tuple(
        Participant(msp_id=k.split("/")[0], subject=k.split("/")[1], slashed=False) for k in keys
    )
    return Task(
        id=task_id, initial_model=f"{task_id}-initial@1", rounds=rounds, min_participants=2, stake=100,
        reward_per_round=30, commit_seconds=60, reveal_seconds=60, aggregate_seconds=60, rule=rule,
        creator="Org1MSP", status="running", participants=participants, clock_skew_seconds=1,
    )  # fmt: skip


@dataclass
class FakeLedger:
    """One running task, shared by every caller (see `as_caller`)."""

    task: Task
    commits: dict[int, dict[str, Commitment]] = field(default_factory=dict)
    posts: dict[int, dict[str, AggregatePost]] = field(default_factory=dict)
    results: dict[int, RoundResult] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.task.participants]

    def state(self, r: int) -> RoundState:
        committed = sorted(self.commits.get(r, {}))
        posts = self.posts.get(r, {})
        orgs = sorted({k.split("/")[0] for k in self.keys})
        quorum = max(2, len(orgs) // 2 + 1)
        votes: dict[str, int] = {}
        for p in posts.values():
            votes[p.digest] = votes.get(p.digest, 0) + 1
        agreed = next((d for d, n in votes.items() if n >= quorum), "")
        closed = len(committed) == len(self.keys)
        phase = (
            "SETTLED" if r in self.results else "SETTLE" if agreed else "AGGREGATE" if closed else "COMMIT"
        )
        return RoundState(
            task_id=self.task.id, round=r, phase=phase, participants=tuple(self.keys),
            committed=tuple(committed), commits_closed=closed, posted=tuple(sorted(posts)),
            quorum_size=quorum, agreed_digest=agreed,
            reveal_deadline="2000-01-01T00:00:00Z", settleable=bool(agreed),
        )  # fmt: skip

    def as_caller(self, key: str) -> CallerLedger:
        return CallerLedger(self, key)


@dataclass
class CallerLedger:
    """The FederationLedger one identity sees."""

    ledger: FakeLedger
    key: str

    def get_task(self, task_id: str) -> Task:
        return self.ledger.task

    def get_round_state(self, task_id: str, round_: int) -> RoundState:
        with self.ledger.lock:
            if round_ > 1 and round_ - 1 not in self.ledger.results:
                raise refused(RefusalCode.WRONG_PHASE, f"round {round_ - 1} is not settled")
            return self.ledger.state(round_)

    def get_round(self, task_id: str, round_: int) -> RoundResult:
        if round_ not in self.ledger.results:
            raise refused(RefusalCode.NOT_FOUND, f"round {round_} is not settled")
        return self.ledger.results[round_]

    def commit(self, task_id: str, round_: int, digest: str, samples: int, uri: str) -> Commitment:
        with self.ledger.lock:
            before_open = round_ > 1 and not self.ledger.state(round_ - 1).commits_closed
            if before_open or (round_ > 2 and round_ - 2 not in self.ledger.results):
                raise refused(RefusalCode.WRONG_PHASE, f"round {round_}'s commitments are not open")
            mine = self.ledger.commits.setdefault(round_, {})
            if self.key in mine and mine[self.key].digest != digest:
                raise refused(
                    RefusalCode.CONFLICT, f"{self.key} committed other bytes; a commitment cannot change"
                )
            msp, subject = self.key.split("/")
            who = Participant(msp_id=msp, subject=subject, slashed=False)
            mine[self.key] = Commitment(
                participant=who, digest=digest, samples=samples, uri=uri, tx_id=digest[:8]
            )
            return mine[self.key]

    def commitments(self, task_id: str, round_: int) -> tuple[Commitment, ...]:
        return tuple(self.ledger.commits.get(round_, {}).values())

    def post_aggregate(
        self, task_id: str, round_: int, digest: str, scores: Mapping[str, int],
        flagged: Sequence[str], missing: Sequence[str] = (),
    ) -> AggregatePost:  # fmt: skip
        msp = self.key.split("/")[0]
        with self.ledger.lock:
            if not self.ledger.state(round_).commits_closed or round_ in self.ledger.results:
                raise refused(RefusalCode.WRONG_PHASE, f"round {round_} takes no posts now")
            posts = self.ledger.posts.setdefault(round_, {})
            post = AggregatePost(
                msp_id=msp, digest=digest, scores=dict(scores), flagged=tuple(sorted(flagged)),
                missing=tuple(sorted(missing)), tx_id=digest[:8],
            )  # fmt: skip
            if msp in posts and posts[msp] != post:
                raise refused(RefusalCode.CONFLICT, f"{msp} posted another assessment")
            posts[msp] = post
            return post

    def aggregates(self, task_id: str, round_: int) -> tuple[AggregatePost, ...]:
        return tuple(self.ledger.posts.get(round_, {}).values())

    def settle(self, task_id: str, round_: int) -> RoundResult:
        with self.ledger.lock:
            if round_ in self.ledger.results:
                return self.ledger.results[round_]
            state = self.ledger.state(round_)
            if not state.settleable or (round_ > 1 and round_ - 1 not in self.ledger.results):
                raise refused(RefusalCode.WRONG_PHASE, f"round {round_} can still go either way")
            posts = self.ledger.posts[round_]
            agreeing = sorted(m for m, p in posts.items() if p.digest == state.agreed_digest)
            result = RoundResult(
                task_id=task_id, round=round_, status="FINALIZED", reason="",
                aggregate_digest=state.agreed_digest, agreeing=tuple(agreeing),
                disagreeing=tuple(sorted(set(posts) - set(agreeing))), tx_id=f"settle-{round_}",
            )  # fmt: skip
            self.ledger.results[round_] = result
            return result


@dataclass
class FakeStore:
    """Every org's artifact store in one dict (content-addressed), and the initial model."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    model_dir: Path | None = None

    def put(self, raw: bytes) -> str:
        d = hashlib.sha256(raw).hexdigest()
        self.blobs[d] = raw
        return d

    def fetch(self, digest: str) -> bytes:
        if digest not in self.blobs:
            raise ArtifactError(f"blob {digest} is in no reachable artifact store")
        return self.blobs[digest]

    def load_model(self, ref: str, dest: Path) -> Path:
        assert self.model_dir is not None
        return self.model_dir
