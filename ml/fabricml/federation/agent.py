"""The training agent of one participant: follows the Federation contract and does its
part of every round, with no coordinator to trust.

COMMIT: train from the agreed global model, commit the digest of the encoded update.
REVEAL: put the update in the org's artifact store (mutual TLS, members only) and reveal.
AGGREGATE: fetch every revealed update from its owner's store, check it against the
commitment, compute the round's outcome (fabricml.federation.outcome) and, one agent per
org, post it. When a round is FINALIZED the new global model is adopted only if it has the
quorum's digest; the first agreeing org registers it (fabricml.federation.round_models).

Everything the agent did is in its state directory (fabricml.federation.agent_state),
written before the ledger is told, so a restarted agent picks up in any phase."""

from __future__ import annotations

import datetime
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabricml.contracts.federation import RoundResult, Task
from fabricml.gateway import CommitError, GatewayError, RefusalCode, is_refusal
from fabricml.registry.digests import sha256_bytes

from . import fixedpoint
from .agent_state import RoundModel, StateDir, TrainingRecord
from .data import Dataset
from .fixedpoint import Update
from .global_model import GlobalModel
from .outcome import RoundInputs, RoundOutcome, compute_outcome
from .participant import Participant
from .participation import Participation
from .privacy import DifferentialPrivacy
from .reveals import RevealedUpdates, collect
from .round_models import parent_of, round_ref
from .training import LocalTraining, evaluate

Log = Callable[[str], None]


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
        self._outcomes: dict[int, tuple[RoundOutcome, RevealedUpdates]] = {}

    def log(self, message: str) -> None:
        self._log(f"{self.key} {message}")

    def run(self) -> dict[str, Any]:
        """Take part until the task is done (or this participant is slashed); returns a summary."""
        while not self.opt.stop.is_set():
            self.wake.clear()
            try:
                if self.step(self.fed.get_task(self.opt.task)):
                    break
            except CommitError as exc:  # e.g. an MVCC conflict with another agent: look again
                self.log(f"{exc}; trying again")
            self.wake.wait(self.opt.poll_seconds)
        self._register_pending()  # the last round's model
        return self.summary()

    def step(self, task: Task) -> bool:
        """Act on the task as it stands; True when there is nothing left to do."""
        if task.status == "enrolling":
            if self.opt.join and task.participant(self.key) is None:
                self.fed.join(task.id)
                self.log(f"joined task {task.id} (stake {task.stake})")
            return False
        self._catch_up(task)
        me = task.participant(self.key)
        if task.status == "done" or me is None or me.slashed:
            if me is not None and me.slashed:
                self.log("was slashed and takes no further part")
            return True
        try:
            self._act(task)
        except GatewayError as exc:
            # The phase moved on between our look and our call (another org's Advance, or a
            # quorum finalized the round): look again instead of stopping.
            if not is_refusal(exc, RefusalCode.WRONG_PHASE):
                raise
            self.log(f"round {task.round}: the {task.phase} phase ended before our call; looking again")
        return False

    def _act(self, task: Task) -> None:
        if task.phase == "COMMIT":
            self._commit(task)
            self._advance_if(task, len(self.fed.commitments(task.id, task.round)) >= len(task.active))
        elif task.phase == "REVEAL":
            self._reveal(task.round)
            self._advance_if(task, all(c.revealed for c in self.fed.commitments(task.id, task.round)))
        elif task.phase == "AGGREGATE":
            self._post(task)
            self._advance_if(task, self._quorum_posted(task))
            self._register_pending()  # while the other orgs post: it delays no phase of ours

    def _advance_if(self, task: Task, everyone_acted: bool) -> None:
        """Ask the ledger to move on; its state and clock decide (our clock only says when to ask)."""
        if not (everyone_acted or _past(task.phase_deadline)):
            return
        try:
            self.fed.advance(task.id)
        except CommitError:
            pass  # another agent's Advance won
        except GatewayError as exc:
            if not is_refusal(exc, RefusalCode.WRONG_PHASE):  # not yet, or someone moved it on
                raise

    def _quorum_posted(self, task: Task) -> bool:
        digests = [p.digest for p in self.fed.aggregates(task.id, task.round)]
        orgs = {p.msp_id for p in task.active}
        return any(digests.count(d) >= len(orgs) // 2 + 1 for d in digests)

    def _poster(self, task: Task) -> bool:
        """One agent per org posts: the org's first active participant."""
        ours = sorted(p.subject for p in task.active if p.msp_id == self.msp)
        return bool(ours) and self.key == f"{self.msp}/{ours[0]}"

    def _global(self, task: Task) -> Update:
        return self.model.weights(task.initial_model, self.links.store.initial_model)

    # ---- COMMIT and REVEAL --------------------------------------------------------------

    def _commit(self, task: Task) -> None:
        if task.round in self.state.committed:
            return
        raw = self.files.read(f"update-{task.round}.bin") or self._train(task)
        digest = sha256_bytes(raw)
        # Committing the same digest again (after a crash) returns the existing commitment.
        self.fed.commit(task.id, task.round, digest, len(self.train_data))
        self.state.committed[task.round] = digest
        self.files.save(self.state)
        self.log(f"round {task.round}: committed {digest[:12]}")

    def _train(self, task: Task) -> bytes:
        """Local training from the global model; the update's bytes are kept before the
        ledger hears of them, so a restarted agent commits and reveals these same bytes."""
        round_, global_fp = task.round, self._global(task)
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
        raw = fixedpoint.to_bytes(update, update_context(task.id, round_, author, self.opt.data))
        self.state.training[round_] = TrainingRecord.of(report, self.participant.epsilon)
        self.state.dp_rounds += 1 if self.opt.privacy else 0
        self.files.put(f"update-{round_}.bin", raw)
        self.files.save(self.state)
        return raw

    def _reveal(self, round_: int) -> None:
        if round_ in self.state.revealed or round_ not in self.state.committed:
            return
        if self.opt.attack == "never_reveals":
            return
        raw = self.files.read(f"update-{round_}.bin")
        if raw is None:
            raise AgentError(f"the update committed for round {round_} is missing from {self.files.dir}")
        digest = self.links.store.put(raw)
        self.fed.reveal(
            self.opt.task, round_, digest, f"{self.links.blob_url}/v1/blobs/{digest}"
        )  # idempotent
        self.state.revealed.append(round_)
        self.files.save(self.state)
        self.log(f"round {round_}: revealed")

    # ---- AGGREGATE ----------------------------------------------------------------------

    def _outcome(self, task: Task, round_: int) -> tuple[RoundOutcome, RevealedUpdates]:
        """The round's outcome from the revealed updates, computed once per round (the
        poster's result is adopted when the round ends)."""
        if round_ not in self._outcomes:
            global_fp = self._global(task)
            shapes = [tuple(a.shape) for a in global_fp]
            commitments = self.fed.commitments(task.id, round_)
            found = collect(commitments, task.id, round_, shapes, self.links.store.fetch)
            inputs = RoundInputs(
                round_, task.rule, global_fp, found.updates, found.samples, found.invalid, self.state.history
            )
            try:
                outcome = compute_outcome(inputs)
            except ValueError as exc:
                raise AgentError(f"round {round_}: {exc} (unusable reveals: {found.invalid})") from exc
            self._outcomes = {round_: (outcome, found)}
        return self._outcomes[round_]

    def _post(self, task: Task) -> None:
        if task.round in self.state.posted or not self._poster(task):
            return
        outcome, _ = self._outcome(task, task.round)
        found, digest = outcome.assessment, outcome.digest
        if self.opt.wrong_aggregate:
            digest = sha256_bytes(digest.encode() + b"wrong")
        self.fed.post_aggregate(task.id, task.round, digest, found.scores, found.flagged)  # idempotent
        self.state.posted.append(task.round)
        self.files.save(self.state)
        flags = "; ".join(f"{k}: {v}" for k, v in sorted(found.reasons.items())) or "none"
        self.log(f"round {task.round}: posted aggregate {digest[:12]}; outliers: {flags}")

    # ---- after a round ------------------------------------------------------------------

    def _catch_up(self, task: Task) -> None:
        """Adopt the outcome of every round that ended since we last looked."""
        last = task.round - 1 if task.status == "running" else task.round
        while self.state.rounds_done < last:
            round_ = self.state.rounds_done + 1
            self._adopt(task, self.fed.get_round(task.id, round_))

    def _adopt(self, task: Task, result: RoundResult) -> None:
        trained = self.state.training.get(result.round)
        line: dict[str, Any] = {"round": result.round, "status": result.status, "participant": self.key,
                                "org": self.msp, **(trained.to_metrics() if trained else {})}  # fmt: skip
        if result.status == "FINALIZED":
            line.update(self._adopt_final(task, result))
        else:
            line["reason"] = result.reason
        line["heldoutLoss"], line["heldoutAccuracy"] = evaluate(
            self.model.as_model(self._global(task)), self.heldout
        )
        if result.status == "FINALIZED" and result.agreeing[:1] == (self.msp,) and self._poster(task):
            self._queue_registration(task, result, line)
        self.files.metric(line)
        self.state.rounds_done = result.round
        self.files.save(self.state)
        self.log(_round_line(result, line))

    def _adopt_final(self, task: Task, result: RoundResult) -> dict[str, Any]:
        """Adopt the quorum's model, which must be the one this agent computes."""
        outcome, _ = self._outcome(task, result.round)
        if outcome.digest != result.aggregate_digest:
            raise AgentError(
                f"round {result.round}: the quorum agreed on {result.aggregate_digest}, "
                f"we compute {outcome.digest}"
            )
        self.model.adopt(outcome.new_global, result.round)
        self.state.history = outcome.history
        return {"aggregateDigest": outcome.digest, "reward": result.rewards.get(self.key, 0),
                "slashed": list(result.slashed), "disagreeing": list(result.disagreeing),
                "outliers": outcome.assessment.reasons}  # fmt: skip

    def _queue_registration(self, task: Task, result: RoundResult, line: dict[str, Any]) -> None:
        """This org registers the round's model, while the next round waits for other orgs'
        posts: off the critical path."""
        _, found = self._outcome(task, result.round)
        self.model.keep(self._global(task), result.round)
        metrics = {"heldoutLoss": line["heldoutLoss"], "heldoutAccuracy": line["heldoutAccuracy"]}
        parent = parent_of(self.files.metrics(), task, result.round)
        entry = RoundModel(
            result.round, task.rule, found.datasets, result.aggregate_digest, result.tx_id, parent, metrics
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
        + f"; held-out accuracy {line['heldoutAccuracy']:.3f}, loss {line['heldoutLoss']:.3f}"
        + (f"; reward {line.get('reward', 0)}" if final else "")
        + (f"; privacy spent: epsilon {line['epsilon']:.2f}" if line.get("epsilon") else "")
        + (f"; {line['samplesPerSecond']:.0f} samples/s on {line['device']}" if "device" in line else "")
    )


def _past(deadline: str) -> bool:
    """Whether the ledger will consider a phase over; our clock only decides when to ask."""
    if not deadline:
        return False
    when = datetime.datetime.fromisoformat(deadline.replace("Z", "+00:00"))
    return datetime.datetime.now(datetime.UTC) > when


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
