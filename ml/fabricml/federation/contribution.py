"""One participant's contribution to a round (protocol v2 steps 1, 2 and 4): train from
the global model, keep the update's bytes in the state directory, commit their digest
with the URI they will be served at, and publish them only once the round's commitments
are closed. The bytes are kept before the ledger hears of them, so a restarted agent
commits and publishes these same bytes.

Training may start before the quorum agreed on its base (`prepare`, from the outcome this
agent computed): the update is kept aside with the digest of the model it was trained
from, and committed only once the round is the agent's current one and the model it
starts from has exactly that digest; otherwise it is dropped and training starts again.
Training is a function of the base, the data and the seed, so the update is the one
training after the agreement would have made."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fabricml.contracts.federation import Task
from fabricml.gateway import GatewayError, RefusalCode, is_refusal
from fabricml.registry.digests import sha256_file

from .agent_state import AgentError, AgentState, StateDir, TrainingRecord
from .data import Dataset
from .fixedpoint import Update
from .participant import Participant
from .participation import Participation
from .reveals import encoded, read_update

if TYPE_CHECKING:
    from .agent import AgentOptions

Log = Callable[[str], None]
MAX_SAMPLES = 1 << 22  # the contract's bound on the advisory sample count


@dataclass(frozen=True)
class Prepared:
    """An update trained before its base was agreed: usable only on a base of that digest."""

    round: int
    base: str  # fixedpoint.digest of the model it was trained from
    training: TrainingRecord


class Contribution:
    def __init__(
        self, links: Participation, opt: AgentOptions, files: StateDir, state: AgentState,
        train_data: Dataset, log: Log,
    ) -> None:  # fmt: skip
        self.fed, self.key, self.links, self.opt = links.federation, links.key, links, opt
        self.files, self.state, self.train_data, self.log = files, state, train_data, log
        self.wake: threading.Event = links.wake
        self.participant: Participant | None = None
        self.prepared: Prepared | None = None
        for stale in files.dir.glob("prepared-*.bin"):  # trained ahead by a process that died
            stale.unlink(missing_ok=True)

    def path(self, round_: int) -> Path:
        return self.files.path(f"update-{round_}.bin")

    def commit(
        self, task: Task, round_: int, global_fp: Update, config: dict[str, Any], base: Callable[[], str]
    ) -> None:
        """Commit this round's update, trained from `global_fp` (whose digest `base`
        returns) unless it was kept already or prepared from a base of that digest."""
        if round_ in self.state.committed:
            return
        path = self.path(round_)
        if not path.exists() and not self._take_prepared(round_, base):
            self._train(task, round_, path, global_fp, config)
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

    def recover(self, task: Task, round_: int) -> None:
        """A commitment the ledger holds but this agent did not note (it died between the
        two) is ours if its digest is that of the bytes kept: publish those."""
        path = self.path(round_)
        if round_ in self.state.committed or not path.exists():
            return
        mine = [c.digest for c in self.fed.commitments(task.id, round_) if c.participant.key == self.key]
        if not mine:
            return
        if mine[0] != sha256_file(path):
            raise AgentError(
                f"round {round_}: this participant committed {mine[0]}, not the update kept in "
                f"{self.files.dir}; restart with the state directory that committed it"
            )
        self.state.committed[round_] = mine[0]
        self.files.save(self.state)
        self.log(f"round {round_}: found our commitment {mine[0][:12]} on the ledger")

    def publish(self, round_: int) -> None:
        """Serve the committed bytes, only now that the round's commitments are closed."""
        if round_ in self.state.published or round_ not in self.state.committed:
            return
        if self.opt.attack == "never_reveals":
            return
        path = self.path(round_)
        if not path.exists():
            raise AgentError(f"the update committed for round {round_} is missing from {self.files.dir}")
        self.links.store.publish(path)
        self.state.published.append(round_)
        self.files.save(self.state)
        self.wake.set()
        self.log(f"round {round_}: published")

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

    def prepare(self, task: Task, round_: int, base_fp: Update, base: str, config: dict[str, Any]) -> None:
        """Train round `round_`'s update from `base_fp` (digest `base`) before the quorum
        agreed on it; `commit` takes it if the agreed base has that digest. Not with
        differential privacy, a coalition or a replaying attacker (their training
        changes the participant's state: a discarded update would leave a trace)."""
        opt = self.opt
        stateful = opt.privacy is not None or opt.coalition is not None or opt.attack == "free_rider"
        if stateful or not opt.train_ahead:
            return
        if round_ in self.state.committed or self.path(round_).exists():
            return
        if self.prepared is not None and (self.prepared.round, self.prepared.base) == (round_, base):
            return
        self.prepared = None
        why = f"(before the quorum agreed on {base[:12]})"
        raw, record = self._trained(task, round_, base_fp, config, why)
        self.files.put(self._prepared_name(round_), raw)
        self.prepared = Prepared(round_, base, record)

    def _prepared_name(self, round_: int) -> str:
        return f"prepared-{round_}.bin"

    def _take_prepared(self, round_: int, base: Callable[[], str]) -> bool:
        """The prepared update becomes the round's if it was trained from this base."""
        ready, self.prepared = self.prepared, None
        if ready is None or ready.round != round_:
            return False
        if ready.base != base():
            self.files.give(self.files.path(self._prepared_name(round_)))
            self.log(f"round {round_}: the quorum agreed on another base than {ready.base[:12]}: "
                     "training again")  # fmt: skip
            return False
        self.state.training[round_] = ready.training
        os.replace(self.files.path(self._prepared_name(round_)), self.path(round_))
        self.files.save(self.state)
        return True

    def _train(self, task: Task, round_: int, path: Path, global_fp: Update, config: dict[str, Any]) -> None:
        raw, record = self._trained(task, round_, global_fp, config)
        self.state.training[round_] = record
        self.state.dp_rounds += 1 if self.opt.privacy else 0
        self.files.put(path.name, raw)
        self.files.save(self.state)

    def _trained(
        self, task: Task, round_: int, global_fp: Update, config: dict[str, Any], why: str = ""
    ) -> tuple[bytes, TrainingRecord]:
        """The round's update bytes, trained from global_fp, and the training's record."""
        opt = self.opt
        if self.participant is None:
            self.participant = Participant(self.key, self.train_data, config, opt.training, opt.device,
                                           opt.privacy, opt.attack, self.state.dp_rounds)  # fmt: skip
        self.log(f"round {round_}: training on {len(self.train_data)} rows ({opt.device}) {why}".rstrip())
        hook = opt.progress
        update, report = self.participant.update(
            global_fp, round_, (lambda done, total: hook(round_, done, total)) if hook else None
        )
        if opt.coalition is not None:  # for tests: a colluding attacker forges its update
            update = opt.coalition.forge(self.key, round_, update)
        # For tests: an update bound to someone else must be refused, not crash anyone.
        author = self.key if opt.attack != "misbound" else f"{self.key}-other"
        raw = encoded(update, update_context(task.id, round_, author, opt.data))
        return raw, TrainingRecord.of(report, self.participant.epsilon)


def update_context(task_id: str, round_: int, author: str, data: Dataset) -> dict[str, Any]:
    """What an update's bytes are bound to: every org refuses them for any other task,
    round or participant."""
    fingerprint = data.fingerprint().to_json()
    return {"task": task_id, "round": round_, "participant": author, "dataset": fingerprint,
            "nonce": secrets.token_hex(8)}  # fmt: skip
