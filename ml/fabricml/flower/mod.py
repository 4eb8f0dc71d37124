"""The client side: a Flower ClientApp mod that makes each update accountable.

Before the wrapped app trains, it refuses a global model whose digest is not the one the
orgs' quorum agreed on for the round before (round 1: the task's registered initial
model). After, it turns the reply's arrays into fabricml's exact fixed-point update, binds
it to task, round and participant, commits digest, sample count and URI on the Federation
contract with the node's own identity, waits until every participant of the round has
committed (so no update, not even through the Flower server, is seen before all are
fixed), publishes the bytes in the org's artifact store and only then lets the reply go."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ClassVar

from flwr.app import Context, Message, MessageType
from flwr.clientapp.typing import ClientAppCallable, Mod

from fabricml.federation.round_ledger import round_state
from fabricml.gateway import GatewayError, RefusalCode, is_refusal

from .initial import load_initial
from .links import Links
from .messages import CommitmentRecord, Settings, dataset_of, error_reply, node_identity, only_arrays
from .rounds import Clock, NotYet, agreed_base, wait_for
from .session import links_for
from .updates import binding, digest, global_digest, global_of, update_bytes, update_of

MAX_SAMPLES = 1 << 22  # the contract's bound on the advisory sample count
log = logging.getLogger("fabricml.flower")

LinksFor = Callable[[Context, Settings], Links]


def links_from_config(context: Context, settings: Settings) -> Links:
    org, identity = node_identity(context, settings)
    return links_for(settings.profiles, org, identity, settings.task)


class Refusal(Exception):
    """Why this client will not train or send (the error reply's reason)."""


class Accountable:
    """The mod's work for one train message."""

    _initial: ClassVar[dict[tuple[str, str], str]] = {}  # (task, model ref) -> digest, per process

    def __init__(self, links: Links, settings: Settings, clock: Clock) -> None:
        self.links, self.settings, self.clock = links, settings, clock
        self.task = links.federation.get_task(settings.task)

    def check_base(self, round_: int, received: str) -> None:
        key = (self.task.id, self.task.initial_model)
        if key not in self._initial:
            self._initial[key] = load_initial(self.links.store, self.task.initial_model).digest
        ledger, wait = self.links.federation, self.settings.wait
        expected = agreed_base(ledger, self.task.id, round_, self._initial[key], wait, self.clock)
        if received != expected:
            raise Refusal(
                f"{self.links.key} refuses to train round {round_} of {self.task.id}: the global model it "
                f"received has digest {received}, the orgs' quorum agreed on {expected}"
            )

    def commit(self, round_: int, raw: bytes, samples: int) -> str:
        """Commit the bytes' digest (waiting while the round's commitments are not open)."""
        ledger, d = self.links.federation, digest(raw)
        end = self.clock.now() + self.settings.wait
        while True:
            try:
                ledger.commit(self.task.id, round_, d, samples, self.links.uri(d))
                return d
            except GatewayError as exc:
                if not is_refusal(exc, RefusalCode.WRONG_PHASE) or self.clock.now() > end:
                    raise Refusal(f"{self.links.key} could not commit round {round_}: {exc}") from exc
                self._settle_due(round_ - 2)
                self.clock.sleep(1.0)

    def _settle_due(self, round_: int) -> None:
        """Round r needs round r-2 settled; anyone may settle it."""
        if round_ >= 1:
            try:
                self.links.federation.settle(self.task.id, round_)
            except Exception as exc:  # another try follows; the commit's refusal says why
                log.debug("settle %s/%d: %s", self.task.id, round_, exc)

    def publish_when_closed(self, round_: int, raw: bytes) -> None:
        ledger, task_id = self.links.federation, self.task.id
        try:
            wait_for(
                lambda: round_state(ledger, task_id, round_),
                lambda s: s.commits_closed,
                f"every participant's commitment to round {round_}",
                self.settings.wait,
                self.clock,
            )
        except NotYet as exc:
            raise Refusal(f"{self.links.key} keeps its update of round {round_}: {exc}") from None
        self.links.store.put(raw)


def _count(value: object) -> int:
    if not isinstance(value, int | float):
        raise Refusal(f"the reply's num-examples must be a number, got {value!r}")
    return int(value)


def _train(msg: Message, context: Context, call_next: ClientAppCallable, work: Accountable) -> Message:
    round_ = int(msg.content.config_records["config"]["server-round"])  # type: ignore[arg-type]
    _, received = only_arrays(msg.content)
    global_fp = global_of(received.to_numpy_ndarrays())
    work.check_base(round_, global_digest(received.to_numpy_ndarrays()))
    out = call_next(msg, context)
    if out.has_error():
        return out
    _, trained = only_arrays(out.content)
    if list(trained.keys()) != list(received.keys()):
        raise Refusal("the ClientApp's reply does not hold the arrays of the model it received")
    update = update_of(trained.to_numpy_ndarrays(), global_fp)
    samples = min(max(_count(out.content.metric_records["metrics"]["num-examples"]), 1), MAX_SAMPLES)
    header = binding(work.task.id, round_, work.links.key, dataset_of(out.content))
    raw = update_bytes(update, header)
    d = work.commit(round_, raw, samples)
    work.publish_when_closed(round_, raw)
    record = CommitmentRecord(work.links.key, d, samples, work.links.uri(d), header)
    out.content.config_records["fabricml"] = record.to_record()
    log.info("%s committed %s for round %d of %s", work.links.key, d[:12], round_, work.task.id)
    return out


def make_mod(links_for_node: LinksFor = links_from_config, clock: Clock | None = None) -> Mod:
    """The mod, with how a node finds its links (tests hand a fake)."""

    def fabricml_mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        if msg.metadata.message_type != MessageType.TRAIN:
            return call_next(msg, context)
        try:
            settings = Settings.of(context.run_config)
            work = Accountable(links_for_node(context, settings), settings, clock or Clock())
            return _train(msg, context, call_next, work)
        except (Refusal, NotYet, ValueError) as exc:
            log.error("%s", exc)
            return error_reply(msg, str(exc))

    return fabricml_mod


fabricml_mod = make_mod()
