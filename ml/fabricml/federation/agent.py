"""The training agent of one participant: follows the Federation contract (protocol v2,
docs/federation-protocol-v2.md) and does its part of every round, with no coordinator
to trust.

Round r: train from the model the quorum agreed for r-1, keep the update's bytes, commit
their digest with the URI they will be served at (fabricml.federation.contribution);
settle r-1 beside it, in the background (fabricml.federation.settlement); once every
commitment of r is in (or the commit deadline passed for certain) publish the bytes in
the org's artifact store, fetch everyone's, compute the round's outcome and, one agent
per org, post it (fabricml.federation.round_post); adopt the new global model as soon as
a quorum of orgs posted the digest this agent computed (before the settlement), and go
on to r+1. Once a round is settled, its result is read and the first agreeing org
registers the round's model (fabricml.federation.settled_rounds).

Off the critical path: once this agent computed (and posted) its outcome of round r, it
trains round r+1 from that model while the quorum's block comes (Contribution.prepare),
and commits that update once the quorum agreed on exactly that model; the adopted
model's file is written in the background and its held-out evaluation runs after the
next commit (fabricml.federation.heldout).

Everything the agent did is in its state directory (fabricml.federation.agent_state),
written before the ledger is told, so a restarted agent picks up in any phase. It
branches on refusal codes only: WRONG_PHASE means "not yet" (or "the phase moved on":
look again), a CommitError "look again"."""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabricml.contracts.federation import RoundState, Task
from fabricml.gateway import CommitError, EndorseError, GatewayError, RefusalCode, is_refusal

from .agent_state import AgentError, StateDir
from .collusion import CoalitionLink
from .contribution import Contribution
from .data import Dataset
from .fixedpoint import Update
from .global_model import GlobalModel
from .heldout import HeldoutEvaluations
from .participation import Participation
from .privacy import DifferentialPrivacy
from .retired_rounds import retire
from .reveals import Checked, PublishedUpdates, collect
from .round_ledger import round_state
from .round_post import RoundPost, post_assessment, round_post
from .settled_rounds import SettledRounds
from .settlement import Settlement, is_poster
from .training import LocalTraining

__all__ = ["Agent", "AgentError", "AgentOptions", "passed_for_certain"]

Log = Callable[[str], None]
SOON_SECONDS, SOON_LOOKS = 0.05, 40  # looking again for an update committed, not served yet
FETCH_PARALLEL = 4  # member stores fetched from at once


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
    coalition: CoalitionLink | None = None  # for tests: forge updates with colluders
    wrong_aggregate: bool = False  # for tests: post a digest no one else computes
    poll_seconds: float = 2.0
    train_ahead: bool = True  # train round r+1 from our own outcome of r while the quorum's block comes
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
        self.train_data, self.heldout_data = options.data.split(options.heldout, options.training.seed)
        self.model = GlobalModel(self.files, self.state)  # the agreed global model, as this agent holds it
        background = options.settle_in_background
        self.heldout = HeldoutEvaluations(self.heldout_data, self.model.as_model, self.files, self.state,
                                          self.log, background)  # fmt: skip
        self.heldout.resume(self.model.kept)
        self.contribution = Contribution(links, options, self.files, self.state, self.train_data, self.log)
        self.settlement = Settlement(self.fed, self.key, self.log, self.wake, options.settle_in_background)
        self.settled = SettledRounds(
            self.fed,
            self.key,
            self.files,
            self.state,
            self.model,
            links.registrar,
            self.log,
            options.settle_in_background,
        )
        self._posts: dict[int, RoundPost] = {}  # this agent's outcome of each open round
        self._checked: dict[int, dict[tuple[str, str], Checked]] = {}  # per round: updates fetched so far
        self._soon = 0  # looks in a row that found a published update not served yet

    def log(self, message: str) -> None:
        self._log(f"{self.key} {message}")

    def run(self) -> dict[str, Any]:
        """Take part until the task is done (or this participant is out); returns a summary."""
        try:
            while not self.opt.stop.is_set():
                self.wake.clear()
                try:
                    if self.step():
                        self.files.spares.clear()  # done: nothing left to write over
                        break
                except CommitError as exc:  # e.g. an MVCC conflict with another agent: look again
                    self.log(f"{exc}; trying again")
                except EndorseError as exc:
                    # Uncoded: endorsers a few blocks apart disagreed past the gateway's
                    # retries (many agents writing one task at once), or a peer was away.
                    if is_refusal(exc):
                        raise
                    self.log(f"{str(exc).splitlines()[0]}; looking again")
                self.wake.wait(self._next_look())
            self.settled.register_pending()  # the last round's model
        finally:
            self.settlement.shutdown()
            self.settled.shutdown()
            self.heldout.shutdown()
            self.files.close()
        return self.summary()

    def _next_look(self) -> float:
        """Seconds until the next look without an event: soon while an update committed in
        an open round is not served yet (its author publishes without a ledger event), for
        SOON_LOOKS looks, then the polling interval."""
        return SOON_SECONDS if 0 < self._soon <= SOON_LOOKS else self.opt.poll_seconds

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
        self.heldout.record()
        pending = self.heldout.first_pending()  # rounds not adopted, or not evaluated, wait
        self.settled.read(task, self.state.rounds_done + 1 if pending is None else pending)
        me = task.participant(self.key)
        round_ = self.state.rounds_done + 1
        if (task.status == "done" and not self._to_adopt(task, round_)) or me is None or round_ > task.rounds:
            self.heldout.record(wait=True)
            self.settled.read(task)
            return self.settlement.finish(task)
        if not me.active_in(round_):
            self.heldout.record(wait=True)
            self.settled.read(task)
            self.log(f"is out of the task since round {me.out_round} ({me.out}) and takes no further part")
            return True
        try:
            self._act(task, round_)
        except GatewayError as exc:
            # The phase moved on between our look and our call (a deadline passed, or a
            # quorum's posts or a Settle closed the round): look again instead of stopping.
            # FORBIDDEN: a settlement took this participant out since our look.
            if is_refusal(exc, RefusalCode.FORBIDDEN) and self._out(round_):
                return True
            if not is_refusal(exc, RefusalCode.WRONG_PHASE):
                raise
            self.log(f"round {round_}: the phase moved on before our call; looking again")
        return False

    def _to_adopt(self, task: Task, round_: int) -> bool:
        """Whether a round this agent committed to was settled before it adopted the
        round's model (a settlement can land while the agent trains): adopt it first."""
        settled = task.state.settled_round if task.state else 0
        return round_ <= settled and round_ in self.state.committed

    def _out(self, round_: int) -> bool:
        me = self.fed.get_task(self.opt.task).participant(self.key)
        if me is None or me.active_in(round_):
            return False
        self.log(f"is out of the task since round {me.out_round} ({me.out}) and takes no further part")
        return True

    def _act(self, task: Task, round_: int) -> None:
        self.settlement.behind(task, round_)
        state = round_state(self.fed, task.id, round_)
        if state is None or not state.commits_closed:
            self.contribution.commit(task, round_, self._global(task), self.model.config, self.model.digest)
        retire(self.files, self.state)  # past rounds' files: spares for this round's fetches and model
        self.heldout.start()  # the models adopted before: the cores are free of training now
        if state is not None:
            self._play(task, state)

    def _play(self, task: Task, state: RoundState) -> None:
        """What the round's state asks of this agent once its commitments are known."""
        if state.commits_closed:
            self.contribution.recover(task, state.round)
            self.contribution.publish(state.round)
            post = self._outcome(task, state)
            if post is not None and is_poster(self.key, task, state):
                self._post(task, state, post)
            if post is not None and not (state.agreed_digest or state.settleable or state.phase == "SETTLED"):
                self._prepare_next(task, state, post)
        if state.agreed_digest:
            self._adopt(task, state)
        elif state.phase == "SETTLED" or state.settleable:  # without a quorum: it closes
            self._adopted(task, state.round, {}, "closed without an agreed model")

    def _prepare_next(self, task: Task, state: RoundState, post: RoundPost) -> None:
        """Train the next round from this agent's own outcome while the quorum's block
        comes (our post goes first); committed only if the quorum agrees on that model."""
        unposted = is_poster(self.key, task, state) and state.round not in self.state.posted
        if state.round >= task.rounds or unposted:
            return
        self.model.prepare(post.new_global, state.round, post.digest)
        self.contribution.prepare(task, state.round + 1, post.new_global, post.digest, self.model.config)

    def _global(self, task: Task) -> Update:
        return self.model.weights(task.initial_model, self.links.store.initial_model)

    # ---- assess and post -----------------------------------------------------------------

    def _outcome(self, task: Task, state: RoundState, missing: list[str] | None = None) -> RoundPost | None:
        """This agent's outcome of the round from the published updates; None while an
        update is still unfetched inside the reveal window (then it is not missing yet).
        `missing`: the quorum's, when reproducing its outcome."""
        cached = self._posts.get(state.round)
        if cached is not None and (missing is None or sorted(missing) == cached.missing):
            return cached
        began = time.perf_counter()
        found = self._fetch_all(task, state)
        late = sorted(found.pending)
        self._soon = self._soon + 1 if late else 0
        if missing is not None:
            if set(late) - set(missing):
                return None  # the quorum had bytes we have not fetched yet
            found = found.without(missing)
            late = sorted(missing)
        elif late and not passed_for_certain(state.reveal_deadline, task.clock_skew_seconds):
            return None
        fetched = time.perf_counter()
        post = round_post(state.round, task.rule, self._global(task), found, late, self.state.history,
                          task.min_participants, self.model.before_last_step(state.round))  # fmt: skip
        self._posts = {r: p for r, p in self._posts.items() if r >= state.round - 1}
        self._posts[state.round] = post
        self._checked = {r: c for r, c in self._checked.items() if r > state.round}  # the updates go
        took = time.perf_counter() - fetched
        self.log(f"round {state.round}: outcome {post.digest[:12]} of {len(found.usable)} updates "
                 f"(fetch and check {fetched - began:.2f} s, outcome {took:.2f} s)")  # fmt: skip
        return post

    def _fetch_all(self, task: Task, state: RoundState) -> PublishedUpdates:
        shapes = [tuple(a.shape) for a in self._global(task)]
        folder = self.files.path(f"fetched-{state.round}")
        folder.mkdir(exist_ok=True)
        commitments = self.fed.commitments(task.id, state.round)

        mine = self.contribution.path(state.round)
        size = mine.stat().st_size if mine.exists() else 0  # the others' are about as large

        def fetch(digest: str, uri: str) -> Path:
            return self.links.store.fetch_to(digest, uri, folder / digest, self.files.spares, size)

        checked = self._checked.setdefault(state.round, {})
        return collect(commitments, set(state.participants), task.id, state.round, shapes, fetch, checked,
                       parallel=FETCH_PARALLEL)  # fmt: skip

    def _post(self, task: Task, state: RoundState, post: RoundPost) -> None:
        if state.round in self.state.posted or state.phase == "SETTLED":
            return
        if not post_assessment(self.fed, task, state, post, wrong=self.opt.wrong_aggregate):
            return  # not yet (missing before the reveal window ended), too few, or too late
        self.state.posted.append(state.round)
        self.files.save(self.state)
        flags = "; ".join(f"{k}: {v}" for k, v in sorted(post.reasons.items())) or "none"
        gone = f"; missing: {', '.join(post.missing)}" if post.missing else ""
        self.log(f"round {state.round}: posted aggregate {post.digest[:12]}; outliers: {flags}{gone}")

    # ---- adopt ---------------------------------------------------------------------------

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
            self.model.adopt(post.new_global, state.round, post.digest)
            self.state.history = post.history
        self._adopted(task, state.round, post.datasets, post.note)

    def _adopted(self, task: Task, round_: int, datasets: dict[str, dict[str, Any]], note: str) -> None:
        """Round done: the state says so at its next save, which waits for the model's
        file (a crash before it recomputes the round's outcome from the fetched bytes)."""
        self.model.keep(self._global(task), round_)
        trained = self.state.training.get(round_)
        self.state.adopted[round_] = {"datasets": datasets, **(trained.to_metrics() if trained else {})}
        self.state.rounds_done = round_
        self.heldout.queue(round_, self._global(task))
        self.wake.set()  # the next round's commitment goes at once
        self.log(f"round {round_}: adopted the agreed model{f' ({note})' if note else ''}")

    def summary(self) -> dict[str, Any]:
        metrics = self.files.metrics()
        participant = self.contribution.participant
        return {"participant": self.key, "task": self.opt.task, "rounds": metrics,
                "rewards": sum(int(m.get("reward", 0)) for m in metrics),
                "epsilon": participant.epsilon if participant else 0.0,
                "stateDir": str(self.files.dir)}  # fmt: skip


def passed_for_certain(deadline: str, skew_seconds: int) -> bool:
    """Whether every honest clock is past a deadline (ours plus two skews), as the
    contract requires before it lets anyone act on it."""
    if not deadline:
        return False
    when = datetime.datetime.fromisoformat(deadline.replace("Z", "+00:00"))
    return datetime.datetime.now(datetime.UTC) > when + datetime.timedelta(seconds=2 * skew_seconds)
