"""What an agent does with a settled round: one metrics line (rewards, slashes, what it
measured when it adopted the round's model), and, when its org is the round's registrar
(the first agreeing org, by MSP ID) and it is the org's poster, the registration of the
round's model with its lineage, off the critical path: in a background thread, so the
org's next publication never waits for it (the state is changed only in the agent's
own thread, once the registration returned)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from fabricml.contracts.federation import RoundResult, Task

from .agent_state import AgentState, RoundModel, StateDir
from .global_model import GlobalModel
from .participation import FederationLedger, Registrar
from .round_models import parent_of, round_ref

Log = Callable[[str], None]


class SettledRounds:
    def __init__(
        self, fed: FederationLedger, key: str, files: StateDir, state: AgentState, model: GlobalModel,
        registrar: Registrar, log: Log, background: bool = True,
    ) -> None:  # fmt: skip
        self.fed, self.key, self.msp, self.files, self.state = fed, key, key.split("/")[0], files, state
        self.model, self.registrar, self.log = model, registrar, log
        self._pool = ThreadPoolExecutor(1, "fabricml-register") if background else None
        self._registering: Future[bool] | None = None  # of self.state.to_register[0]

    def read(self, task: Task, before: int | None = None) -> None:
        """One metrics line per round settled since the last look; `before`: not yet
        for that round or later (not adopted by this agent yet, or its held-out metrics
        still being computed: the line and the registration need them)."""
        settled = task.state.settled_round if task.state else 0
        if before is not None:
            settled = min(settled, before - 1)
        while self.state.settled_read < settled:
            self._record(task, self.fed.get_round(task.id, self.state.settled_read + 1))

    def register_pending(self, wait: bool = True) -> None:
        """Register the queued round models, in order; stops at one whose parent is not
        registered yet (another org registers it). `wait=False`: start the next one in the
        background and return; a later call takes its result."""
        while self.state.to_register:
            if self._registering is None:
                entry = self.state.to_register[0]
                self.files.flush()  # the round's model file is whole (the state naming it was saved)
                if self._pool is None:
                    done: Future[bool] = Future()
                    done.set_result(self._register(entry))
                    self._registering = done
                else:
                    self._registering = self._pool.submit(self._register, entry)
            if not (wait or self._registering.done()):
                return
            registered, self._registering = self._registering.result(), None
            if not registered:
                return
            self.state.to_register.pop(0)
            self.files.save(self.state)

    def _register(self, entry: RoundModel) -> bool:
        """In the background thread: the model read there too (90 MB for 11 M parameters)."""
        return self.registrar.register(entry, self.model.kept(entry.round, flushed=True), self.model.config)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

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
        registrar = min(result.agreeing, default="") == self.msp
        if result.status == "FINALIZED" and registrar and self._poster_of(task, result.round) and datasets:
            self._queue(task, result, line, datasets)
        self.files.metric(line)
        self.state.settled_read = result.round
        self.files.save(self.state)
        self.log(round_line(result, line))
        self.register_pending(wait=False)  # while this agent goes on

    def _poster_of(self, task: Task, round_: int) -> bool:
        ours = [p for p in task.participants if p.msp_id == self.msp and p.active_in(round_)]
        return bool(ours) and ours[0].key == self.key

    def _queue(
        self, task: Task, result: RoundResult, line: dict[str, Any], datasets: dict[str, dict[str, Any]]
    ) -> None:
        metrics: dict[str, float] = {k: line[k] for k in ("heldoutLoss", "heldoutAccuracy") if k in line}
        parent = parent_of(self.files.metrics(), task, result.round)
        entry = RoundModel(
            result.round, task.rule, datasets, result.aggregate_digest, result.tx_id, parent, metrics
        )
        self.state.to_register.append(entry)
        line["registered"] = round_ref(task.id, result.round)


def round_line(result: RoundResult, line: dict[str, Any]) -> str:
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
