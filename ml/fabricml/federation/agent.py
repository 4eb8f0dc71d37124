"""The training agent of one participant: follows the Federation contract (protocol v2,
docs/federation-protocol-v2.md) and does its part of every round, with no coordinator
to trust.

Round r: train from the model the quorum agreed for r-1, keep the update's bytes, commit
their digest with the URI they will be served at; settle r-1 beside it (in the
background); once every commitment of r is in (or the commit deadline passed for
certain) publish the bytes in the org's artifact store, fetch everyone's, compute the
round's outcome (fabricml.federation.outcome) and, one agent per org, post it; adopt
the new global model as soon as a quorum of orgs posted the digest this agent computed
(before the settlement), and go on to r+1. Once a round is settled, its result is read
and the first agreeing org registers the round's model (fabricml.federation.round_models).

Everything the agent did is in its state directory (fabricml.federation.agent_state),
written before the ledger is told, so a restarted agent picks up in any phase. It
branches on refusal codes only: WRONG_PHASE means "not yet" (or "too late"), a
CommitError "look again"."""

from __future__ import annotations

import datetime
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabricml.contracts.federation import RoundResult, RoundState, Task
from fabricml.gateway import CommitError, GatewayError, RefusalCode, is_refusal
from fabricml.registry.digests import sha256_file

from .agent_state import RoundModel, StateDir, TrainingRecord
from .data import Dataset
from .fixedpoint import Update
from .global_model import GlobalModel
from .participant import Participant
from .participation import Participation
from .privacy import DifferentialPrivacy
from .reveals import PublishedUpdates, collect, encoded, read_update
from .round_models import parent_of, round_ref
from .round_post import RoundPost, round_post
from .training import LocalTraining, evaluate

Log = Callable[[str], None]
MAX_SAMPLES = 1 << 22  # the contract's bound on the advisory sample count


class AgentError(RuntimeError):
    """The agent cannot go on (e.g. the quorum's model cannot be reproduced)."""


@dataclass
class AgentOptions:
    task: str
    data: Dataset
    state_dir: Path
    training: LocalTraining = field(default_factory=LocalTraining)
    privacy: DifferentialPrivacy | None = None
    device: str = "cpu"
    heldout: float = 0.2  # share of local data kept back to evaluate each global model
    join: bool = True
    attack: str = ""  # for tests: see participant.ATTACKS
    wrong_aggregate: bool = False  # for tests: post a digest no one else computes
    poll_seconds: float = 2.0
    settle_in_background: bool = True  # False: Settle in the agent's own thread (unit tests)
    progress: Callable[[int, int, int], None] | None = None  # (round, step, steps) of local training
    stop: threading.Event = field(default_factory=threading.Event)


class Agent:
    def __init__(self, links: Participation, options: AgentOptions, log: Log = print) -> None:
        self.links, self.fed, self.key, self.opt, self._log = links, links.federation, links.key, options, log
        self.msp = self.key.split("/")[0]
        self.wake = links.wake  # set: look at the ledger now
        self.files = StateDir(options.state_dir / options.task / "agents" / self.key.replace("/", "_"))
        self.state = self.files.load()
        self.train_data, self.heldout = options.data.split(options.heldout, options.training.seed)
        self.participant: Participant | None = None
        self.model = GlobalModel(self.files)  # the agreed global model, as this agent holds it
        self._posts: dict[int, RoundPost] = {}  # this agent's outcome of each open round
        self._settling: dict[int, Future[RoundResult | None]] = {}
        self._background = ThreadPoolExecutor(1, "fabricml-settle") if options.settle_in_background else None

    def log(self, message: str) -> None:
        self._log(f"{self.key} {message}")

    def run(self) -> dict[str, Any]:
        """Take part until the task is done (or this participant is out); returns a summary."""
        try:
            while not self.opt.stop.is_set():
                self.wake.clear()
                try:
                    if self.step():
                        break
                except CommitError as exc:  # e.g. an MVCC conflict with another agent: look again
                    self.log(f"{exc}; trying again")
                self.wake.wait(self.opt.poll_seconds)
            self._register_pending()  # the last round's model
        finally:
            if self._background:
                self._background.shutdown(wait=True)
        return self.summary()

    def step(self) -> bool:
        """Act on the task as it stands; True when there is nothing left to do."""
        task = self.fed.get_task(self.opt.task)
        if task.status == "enrolling":
            if self.opt.join and task.participant(self.key) is None:
                self.fed.join(task.id)
                self.log(f"joined task {task.id} (stake {task.stake})")
            return False
        if task.status not in ("running", "done"):
            self.log(f"task {task.id} is {task.status}: nothing to do")
            return True
        self._read_settled(task)
        me = task.participant(self.key)
        round_ = self.state.rounds_done + 1
        if task.status == "done" or me is None or round_ > task.rounds:
            return self._finish(task)
        if not me.active_in(round_):
            self.log(f"is out of the task since round {me.out_round} ({me.out}) and takes no further part")
            return True
        self._settle_behind(task, round_)
        state = self._round_state(task, round_)
        if state is None or not state.commits_closed:
            self._commit(task, round_)
        if state is not None:
            self._play(task, state)
        return False

    def _round_state(self, task: Task, round_: int) -> RoundState | None:
        """The round's state; None while the round before is not settled (WRONG_PHASE)."""
        try:
            return self.fed.get_round_state(task.id, round_)
        except GatewayError as exc:
            if is_refusal(exc, RefusalCode.WRONG_PHASE):
                return None
            raise

    def _play(self, task: Task, state: RoundState) -> None:
        """What the round's state asks of this agent once its commitments are known."""
        if state.commits_closed:
            self._publish(state.round)
            post = self._outcome(task, state)
            if post is not None and self._poster(task, state):
                self._post(task, state, post)
        if state.agreed_digest:
            self._adopt(task, state)
        elif state.phase == "SETTLED" or state.settleable:  # without a quorum: it closes
            self._adopted(task, state.round, {}, "closed without an agreed model")

    def _poster(self, task: Task, state: RoundState) -> bool:
        """One agent per org posts: the org's first participant of the round, in joining order."""
        ours = [p.key for p in task.participants if p.msp_id == self.msp and p.key in state.participants]
        return bool(ours) and ours[0] == self.key

    def _global(self, task: Task) -> Update:
        return self.model.weights(task.initial_model, self.links.store.initial_model)

    # ---- commit and publish --------------------------------------------------------------

    def _commit(self, task: Task, round_: int) -> None:
        if round_ in self.state.committed:
            return
        path = self.files.path(f"update-{round_}.bin")
        if not path.exists():
            self._train(task, round_, path)
        for _ in range(3):  # a replay refusal: the same values under a new nonce
            digest = sha256_file(path)
            uri = f"{self.links.blob_url}/v1/blobs/{digest}"
            try:
                self.fed.commit(task.id, round_, digest, min(len(self.train_data), MAX_SAMPLES), uri)
                break
            except GatewayError as exc:
                if is_refusal(exc, RefusalCode.WRONG_PHASE):
                    return  # the round's commitments are not open (yet): look again later
                if not is_refusal(exc, RefusalCode.CONFLICT):
                    raise
                self._after_conflict(task, round_, path)
        else:
            raise AgentError(f"round {round_}: every encoding of the update was refused as a replay")
        self.state.committed[round_] = digest
        self.files.save(self.state)
        self.log(f"round {round_}: committed {digest[:12]}")

    def _after_conflict(self, task: Task, round_: int, path: Path) -> None:
        """CONFLICT is a replay (someone committed these bytes first) unless this
        participant already committed other bytes for the round: a lost state directory."""
        mine = [c for c in self.fed.commitments(task.id, round_) if c.participant.key == self.key]
        if mine:
            raise AgentError(
                f"round {round_}: this participant committed {mine[0].digest} before, which is not in "
                f"{self.files.dir}; restart with the state directory that committed it"
            )
        header, values = read_update(path)
        context = {**header.get("context", {}), "nonce": secrets.token_hex(8)}
        self.files.put(path.name, encoded(values, context))
        self.log(f"round {round_}: the update was committed by someone else first; encoded it anew")

    def _train(self, task: Task, round_: int, path: Path) -> None:
        """Local training from the global model; the update's bytes are kept before the
        ledger hears of them, so a restarted agent commits and publishes these same bytes."""
        global_fp = self._global(task)
        if self.participant is None:
            self.participant = _participant(
                self.key, self.train_data, self.model.config, self.opt, self.state.dp_rounds
            )
        self.log(f"round {round_}: training on {len(self.train_data)} rows ({self.opt.device})")
        hook = self.opt.progress
        update, report = self.participant.update(
            global_fp, round_, (lambda done, total: hook(round_, done, total)) if hook else None
        )
        # For tests: an update bound to someone else must be refused, not crash anyone.
        author = self.key if self.opt.attack != "misbound" else f"{self.key}-other"
        raw = encoded(update, update_context(task.id, round_, author, self.opt.data))
        self.state.training[round_] = TrainingRecord.of(report, self.participant.epsilon)
        self.state.dp_rounds += 1 if self.opt.privacy else 0
        self.files.put(path.name, raw)
        self.files.save(self.state)

    def _publish(self, round_: int) -> None:
        """Serve the committed bytes, only now that the round's commitments are closed."""
        if round_ in self.state.published or round_ not in self.state.committed:
            return
        if self.opt.attack == "never_reveals":
            return
        path = self.files.path(f"update-{round_}.bin")
        if not path.exists():
            raise AgentError(f"the update committed for round {round_} is missing from {self.files.dir}")
        self.links.store.publish(path)
        self.state.published.append(round_)
        self.files.save(self.state)
        self.wake.set()
        self.log(f"round {round_}: published")

    # ---- assess and post -----------------------------------------------------------------

    def _outcome(self, task: Task, state: RoundState, missing: list[str] | None = None) -> RoundPost | None:
        """This agent's outcome of the round from the published updates; None while an
        update is still unfetched inside the reveal window (then it is not missing yet).
        `missing`: the quorum's, when reproducing its outcome."""
        cached = self._posts.get(state.round)
        if cached is not None and (missing is None or sorted(missing) == cached.missing):
            return cached
        found = self._fetch_all(task, state)
        late = sorted(found.pending)
        if missing is not None:
            if set(late) - set(missing):
                return None  # the quorum had bytes we have not fetched yet
            for key in missing:
                for kept in (found.updates, found.invalid, found.samples, found.datasets):
                    kept.pop(key, None)
            late = sorted(missing)
        elif late and not passed_for_certain(state.reveal_deadline, task.clock_skew_seconds):
            return None
        post = round_post(state.round, task.rule, self._global(task), found, late, self.state.history,
                          task.min_participants)  # fmt: skip
        self._posts = {r: p for r, p in self._posts.items() if r >= state.round - 1}
        self._posts[state.round] = post
        return post

    def _fetch_all(self, task: Task, state: RoundState) -> PublishedUpdates:
        shapes = [tuple(a.shape) for a in self._global(task)]
        folder = self.files.path(f"fetched-{state.round}")
        folder.mkdir(exist_ok=True)
        commitments = self.fed.commitments(task.id, state.round)

        def fetch(digest: str, uri: str) -> Path:
            return self.links.store.fetch_to(digest, uri, folder / digest)

        return collect(commitments, set(state.participants), task.id, state.round, shapes, fetch)

    def _post(self, task: Task, state: RoundState, post: RoundPost) -> None:
        if state.round in self.state.posted or state.phase == "SETTLED":
            return
        if len(state.committed) < task.min_participants:
            return  # too few commitments: the round closes without posts
        digest = post.digest
        if self.opt.wrong_aggregate:
            digest = _wrong(digest)
        try:
            self.fed.post_aggregate(task.id, state.round, digest, post.scores, post.flagged, post.missing)
        except GatewayError as exc:
            if is_refusal(exc, RefusalCode.WRONG_PHASE):
                return  # not yet (missing before the reveal window ended) or too late
            raise
        self.state.posted.append(state.round)
        self.files.save(self.state)
        flags = "; ".join(f"{k}: {v}" for k, v in sorted(post.reasons.items())) or "none"
        gone = f"; missing: {', '.join(post.missing)}" if post.missing else ""
        self.log(f"round {state.round}: posted aggregate {digest[:12]}; outliers: {flags}{gone}")

    # ---- adopt, settle, read -------------------------------------------------------------

    def _adopt(self, task: Task, state: RoundState) -> None:
        """The quorum agreed: take its model, which must be the one this agent computes."""
        quorum = [p for p in self.fed.aggregates(task.id, state.round) if p.digest == state.agreed_digest]
        post = self._outcome(task, state, list(quorum[0].missing) if quorum else [])
        if post is None:
            return  # bytes the quorum used are not here yet: try again
        if post.digest != state.agreed_digest:
            raise AgentError(
                f"round {state.round}: the quorum agreed on {state.agreed_digest}, we compute {post.digest}"
            )
        if post.changed:
            self.model.adopt(post.new_global, state.round)
            self.state.history = post.history
        self._adopted(task, state.round, post.datasets, post.note)

    def _adopted(self, task: Task, round_: int, datasets: dict[str, dict[str, Any]], note: str) -> None:
        loss, accuracy = evaluate(self.model.as_model(self._global(task)), self.heldout)
        self.model.keep(self._global(task), round_)
        trained = self.state.training.get(round_)
        self.state.adopted[round_] = {"heldoutLoss": loss, "heldoutAccuracy": accuracy, "datasets": datasets,
                                      **(trained.to_metrics() if trained else {})}  # fmt: skip
        self.state.rounds_done = round_
        self.files.save(self.state)
        self.wake.set()  # the next round's training starts at once
        self.log(f"round {round_}: adopted the agreed model{f' ({note})' if note else ''}; "
                 f"held-out accuracy {accuracy:.3f}, loss {loss:.3f}")  # fmt: skip

    def _settle_behind(self, task: Task, round_: int, anyone: bool = False) -> None:
        """Settle the rounds before this one that nobody settled yet: the org's poster does
        (`anyone`: every agent), in the background, so it shares a block with the next
        round's commitments."""
        for r in range(task.round, min(round_, task.rounds + 1)):
            self._settle_if_ready(task, r, anyone)

    def _settle_if_ready(self, task: Task, round_: int, anyone: bool) -> None:
        state = self._round_state(task, round_)
        if state is None or state.phase == "SETTLED" or not state.settleable:
            return
        if not (anyone or self._poster(task, state)) or round_ in self._settling:
            return
        if self._background is None:
            self._settle(task.id, round_)
            return
        future = self._background.submit(self._settle, task.id, round_)
        self._settling[round_] = future
        future.add_done_callback(lambda _: self._settled(round_))

    def _settled(self, round_: int) -> None:
        self._settling.pop(round_, None)
        self.wake.set()  # its result may be read now

    def _settle(self, task_id: str, round_: int) -> RoundResult | None:
        try:
            result = self.fed.settle(task_id, round_)
        except (CommitError, GatewayError) as exc:
            if isinstance(exc, CommitError) or is_refusal(exc, RefusalCode.WRONG_PHASE):
                return None  # another agent's Settle won, or not settleable after all
            self.log(f"round {round_}: settling failed: {exc}")
            return None
        self.log(f"round {round_}: settled ({result.status})")
        return result

    def _finish(self, task: Task) -> bool:
        """Every round is adopted (or this agent is not a participant): settle what is
        left; done once the task is."""
        if task.status == "done":
            return True
        self._settle_behind(task, task.rounds + 1, anyone=True)
        return False

    def _read_settled(self, task: Task) -> None:
        """One metrics line per settled round (rewards, slashes), and the registration."""
        settled = task.state.settled_round if task.state else 0
        while self.state.settled_read < settled:
            result = self.fed.get_round(task.id, self.state.settled_read + 1)
            self._record(task, result)

    def _record(self, task: Task, result: RoundResult) -> None:
        adopted = self.state.adopted.pop(result.round, {})
        datasets = adopted.pop("datasets", {})
        line: dict[str, Any] = {"round": result.round, "status": result.status, "participant": self.key,
                                "org": self.msp, **adopted, "reward": result.rewards.get(self.key, 0),
                                "slashed": list(result.slashed), "missing": list(result.missing),
                                "disagreeing": list(result.disagreeing)}  # fmt: skip
        if result.status == "FINALIZED":
            line["aggregateDigest"] = result.aggregate_digest
        else:
            line["reason"] = result.reason
        registrar = min(result.agreeing, default="") == self.msp  # the first agreeing org, by MSP ID
        if result.status == "FINALIZED" and registrar and self._poster_of(task, result.round) and datasets:
            self._queue_registration(task, result, line, datasets)
        self.files.metric(line)
        self.state.settled_read = result.round
        self.files.save(self.state)
        self.log(_round_line(result, line))
        self._register_pending()  # while the next round trains elsewhere: off the critical path

    def _poster_of(self, task: Task, round_: int) -> bool:
        ours = [p for p in task.participants if p.msp_id == self.msp and p.active_in(round_)]
        return bool(ours) and ours[0].key == self.key

    def _queue_registration(
        self, task: Task, result: RoundResult, line: dict[str, Any], datasets: dict[str, dict[str, Any]]
    ) -> None:
        """This org is the round's registrar (the first agreeing org): its poster registers
        the round's model with its lineage."""
        metrics: dict[str, float] = {k: line[k] for k in ("heldoutLoss", "heldoutAccuracy") if k in line}
        parent = parent_of(self.files.metrics(), task, result.round)
        entry = RoundModel(
            result.round, task.rule, datasets, result.aggregate_digest, result.tx_id, parent, metrics
        )
        self.state.to_register.append(entry)
        line["registered"] = round_ref(task.id, result.round)

    def _register_pending(self) -> None:
        while self.state.to_register:
            entry = self.state.to_register[0]
            if not self.links.registrar.register(entry, self.model.kept(entry.round), self.model.config):
                return  # the previous round's registrar has not registered yet: later
            self.state.to_register.pop(0)
            self.files.save(self.state)

    def summary(self) -> dict[str, Any]:
        metrics = self.files.metrics()
        return {"participant": self.key, "task": self.opt.task, "rounds": metrics,
                "rewards": sum(int(m.get("reward", 0)) for m in metrics),
                "epsilon": self.participant.epsilon if self.participant else 0.0,
                "stateDir": str(self.files.dir)}  # fmt: skip


def _round_line(result: RoundResult, line: dict[str, Any]) -> str:
    final = result.status == "FINALIZED"
    return (
        f"round {result.round}: {result.status}"
        + (f" ({result.reason})" if not final else "")
        + (f"; held-out accuracy {line['heldoutAccuracy']:.3f}" if "heldoutAccuracy" in line else "")
        + (f"; reward {line.get('reward', 0)}" if final else "")
        + (f"; slashed {', '.join(result.slashed)}" if result.slashed else "")
        + (f"; privacy spent: epsilon {line['epsilon']:.2f}" if line.get("epsilon") else "")
        + (f"; {line['samplesPerSecond']:.0f} samples/s on {line['device']}" if "device" in line else "")
    )


def _wrong(digest: str) -> str:
    import hashlib

    return hashlib.sha256(digest.encode() + b"wrong").hexdigest()


def passed_for_certain(deadline: str, skew_seconds: int) -> bool:
    """Whether every honest clock is past a deadline (ours plus two skews), as the
    contract requires before it lets anyone act on it."""
    if not deadline:
        return False
    when = datetime.datetime.fromisoformat(deadline.replace("Z", "+00:00"))
    return datetime.datetime.now(datetime.UTC) > when + datetime.timedelta(seconds=2 * skew_seconds)


def update_context(task_id: str, round_: int, author: str, data: Dataset) -> dict[str, Any]:
    """What an update's bytes are bound to: every org refuses them for any other task,
    round or participant."""
    fingerprint = data.fingerprint().to_json()
    return {"task": task_id, "round": round_, "participant": author, "dataset": fingerprint,
            "nonce": secrets.token_hex(8)}  # fmt: skip


def _participant(
    key: str, data: Dataset, config: dict[str, Any], opt: AgentOptions, dp_rounds: int
) -> Participant:
    return Participant(key, data, config, opt.training, opt.device, opt.privacy, opt.attack, dp_rounds)
