"""The server side: a Strategy wrapper that makes the Flower server accountable.

It leaves sampling, configuration and evaluation to the wrapped strategy (FedAvg, ...),
but aggregates by itself, exactly as every org does: only replies whose arrays re-encode
to the digest their sender committed on the ledger count (others are logged and left out;
a committed update without a matching reply is fetched from its owner's store), the
outcome is fabricml's (compute_outcome with the task's rule), and the server posts the
digest and assessment as its org. The orgs' verifiers recompute the same from the
committed bytes; the round is final only when a quorum of orgs posted exactly the same,
so a server that publishes another aggregate is outvoted, and clients refuse to train
on what it sends."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from fabricml.contracts.federation import Commitment, RoundState, Task
from fabricml.federation.evidence import History
from fabricml.federation.fixedpoint import Update
from fabricml.federation.round_ledger import round_state
from fabricml.federation.round_post import RoundPost
from fabricml.federation.training import global_parameters
from fabricml.gateway import GatewayError, RefusalCode, is_refusal

from .assessment import assess_round
from .collect import gather, round_commitments
from .links import Links
from .messages import DEFAULT_WAIT, CommitmentRecord, arrays_like
from .rounds import Clock, NotYet, wait_for
from .updates import UnusableUpdate, digest, global_of, update_bytes, update_of

log = logging.getLogger("fabricml.flower")


@dataclass(frozen=True)
class ServerRound:
    """What the server did in one round, for the app and its tests."""

    round: int
    counted: tuple[str, ...]  # participants whose reply matched their commitment
    not_counted: dict[str, str]  # Flower node id or participant -> why its reply was left out
    received: dict[str, str]  # participant -> digest its reply's arrays re-encode to
    errors: tuple[str, ...]  # error replies' reasons (e.g. clients refusing the global model)
    posted: str  # the digest the server posted ("" if none)
    agreed: str  # the quorum's digest when the server looked ("" if none yet)


@dataclass
class _Carry:
    history: History = field(default_factory=History)
    previous: Update | None = None


class AccountableStrategy(Strategy):
    def __init__(
        self, inner: Strategy, links: Links, task_id: str, post: bool = True,
        wait: float = DEFAULT_WAIT, clock: Clock | None = None,
    ) -> None:  # fmt: skip
        self.inner, self.links, self.task_id, self.post = inner, links, task_id, post
        self.wait, self.clock = wait, clock or Clock()
        self.rounds: list[ServerRound] = []
        self._carry = _Carry()
        self._global: Update = []
        self._template = ArrayRecord()

    def summary(self) -> None:
        log.info("fabricml: task %s, posting as %s; wrapped strategy:", self.task_id, self.links.key)
        self.inner.summary()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self._global, self._template = global_of(arrays.to_numpy_ndarrays()), arrays
        return self.inner.configure_train(server_round, arrays, config, grid)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return self.inner.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        return self.inner.aggregate_evaluate(server_round, replies)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        errors = tuple(m.error.reason or "" for m in replies if m.has_error())
        task = self.links.federation.get_task(self.task_id)
        state = self._closed(server_round) if len(errors) < len(replies) else None
        if state is None:  # nobody committed (e.g. every client refused the global model)
            self.rounds.append(ServerRound(server_round, (), {}, {}, errors, "", ""))
            return None, None
        commitments = round_commitments(self.links.federation.commitments(task.id, server_round), state)
        held, counted, not_counted = self._matching(replies, commitments)
        post = self.publish(self._assess(task, state, commitments, held))
        posted = self._post(task, post)
        agreed = self._agreed(server_round)
        if post.changed and agreed == post.digest:
            self._carry = _Carry(post.history, self._global)
        received = {k: digest(raw) for k, raw in held.items()}
        self.rounds.append(
            ServerRound(server_round, tuple(sorted(held)), not_counted, received, errors, posted, agreed)
        )
        arrays = arrays_like(self._template, global_parameters(post.new_global))
        return arrays, train_metrics(counted)

    def publish(self, post: RoundPost) -> RoundPost:
        """The assessment the server posts and the model it sends on: the one computed.
        (A dishonest server would change it here; see examples/flower.)"""
        return post

    def _closed(self, round_: int) -> RoundState | None:
        ledger = self.links.federation
        try:
            return wait_for(
                lambda: round_state(ledger, self.task_id, round_),
                lambda s: s.commits_closed and bool(s.committed),
                f"round {round_}'s commitments", self.wait, self.clock,
            )  # fmt: skip
        except NotYet as exc:
            log.warning("%s", exc)
            return None

    def _matching(
        self, replies: list[Message], commitments: dict[str, Commitment]
    ) -> tuple[dict[str, bytes], list[Message], dict[str, str]]:
        """Bytes of the replies that match their sender's commitment; why the others do not."""
        held: dict[str, bytes] = {}
        counted: list[Message] = []
        not_counted: dict[str, str] = {}
        for m in replies:
            if m.has_error():
                continue
            node = f"node {m.metadata.src_node_id}"
            try:
                record = CommitmentRecord.of(m.content)
                raw = _reencode(m, self._global, record)
            except (ValueError, UnusableUpdate) as exc:
                not_counted[node] = str(exc)
                continue
            c = commitments.get(record.participant)
            if c is None or c.digest != digest(raw):
                why = "no commitment on the ledger" if c is None else f"its arrays re-encode to {digest(raw)}"
                not_counted[record.participant] = f"{why}; committed: {c.digest if c else 'nothing'}"
                continue
            held[record.participant] = raw
            counted.append(m)
        for who, why in not_counted.items():
            log.warning("not counted: %s: %s", who, why)
        return held, counted, not_counted

    def _assess(
        self, task: Task, state: RoundState, commitments: dict[str, Commitment], held: dict[str, bytes]
    ) -> RoundPost:
        shapes = [tuple(a.shape) for a in self._global]
        found = gather(task, state, commitments, shapes, self.links.store, held, self.clock, log.info)
        c = self._carry
        return assess_round(
            state.round, task.rule, task.min_participants, self._global, c.previous, found, c.history
        )

    def _post(self, task: Task, post: RoundPost) -> str:
        if not self.post:
            return ""
        try:
            self.links.federation.post_aggregate(
                task.id, post.round, post.digest, post.scores, post.flagged, post.missing
            )
        except GatewayError as exc:
            if not is_refusal(exc, RefusalCode.CONFLICT, RefusalCode.WRONG_PHASE):
                raise
            log.warning("round %d: the server's post was refused: %s", post.round, exc)
            return ""
        return post.digest

    def _agreed(self, round_: int) -> str:
        ledger = self.links.federation
        try:
            state = wait_for(
                lambda: round_state(ledger, self.task_id, round_),
                lambda s: bool(s.agreed_digest) or s.settleable,
                f"a quorum on round {round_}", self.wait, self.clock,
            )  # fmt: skip
        except NotYet as exc:
            log.warning("%s", exc)
            return ""
        return state.agreed_digest


def _reencode(m: Message, global_fp: Update, record: CommitmentRecord) -> bytes:
    """The update bytes the reply's arrays and binding stand for."""
    arrays = [a for rec in m.content.array_records.values() for a in rec.to_numpy_ndarrays()]
    return update_bytes(update_of(arrays, global_fp), record.context)


def train_metrics(replies: list[Message], weight: str = "num-examples") -> MetricRecord | None:
    """Sample-weighted means of the counted replies' numeric training metrics."""
    rows = [_numbers(next(iter(m.content.metric_records.values()), MetricRecord())) for m in replies]
    total = sum(r.get(weight, 0.0) for r in rows)
    if not rows or total <= 0:
        return None
    sums: dict[str, float] = {}
    for r in rows:
        for k, v in r.items():
            if k != weight:
                sums[k] = sums.get(k, 0.0) + r.get(weight, 0.0) / total * v
    return MetricRecord(sums)  # type: ignore[arg-type]


def _numbers(record: MetricRecord) -> dict[str, float]:
    return {k: float(v) for k, v in record.items() if isinstance(v, int | float)}
