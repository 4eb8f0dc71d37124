"""The held-out evaluation of each model an agent adopted, off the round's critical path:
queued at adoption, started once the next round's update is committed (so it never
competes with that training for the cores), and read when its round's metrics line is
written. The metrics are the agent's own report; nothing on the ledger depends on them."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from torch import nn

from .agent_state import AgentState, StateDir
from .data import Dataset
from .fixedpoint import Update
from .training import evaluate

Metrics = tuple[float, float]  # (loss, accuracy) on the held-out data
Log = Callable[[str], None]


class HeldoutEvaluations:
    """Each adopted round's held-out loss and accuracy, into AgentState.adopted."""

    def __init__(
        self, data: Dataset, as_model: Callable[[Update], nn.Module], files: StateDir, state: AgentState,
        log: Log, background: bool = True,
    ) -> None:  # fmt: skip
        self.data, self.as_model, self.files, self.state, self.log = data, as_model, files, state, log
        self._pool = ThreadPoolExecutor(1, "fabricml-heldout") if background else None
        self._queued: dict[int, Update] = {}
        self._running: dict[int, Future[Metrics]] = {}

    def queue(self, round_: int, weights: Update) -> None:
        self._queued[round_] = weights

    def start(self) -> None:
        """Start every queued evaluation (at once, in this thread, without a background)."""
        for round_, weights in sorted(self._queued.items()):
            if self._pool is None:
                done: Future[Metrics] = Future()
                done.set_result(self._evaluate(weights))
                self._running[round_] = done
            else:
                self._running[round_] = self._pool.submit(self._evaluate, weights)
        self._queued.clear()

    def first_pending(self) -> int | None:
        """The first round whose metrics are not taken yet."""
        return min([*self._queued, *self._running], default=None)

    def resume(self, kept: Callable[[int], Update]) -> None:
        """After a restart: the last adopted model's, if the agent died before it took them."""
        done = self.state.rounds_done
        if done and "heldoutLoss" not in self.state.adopted.get(done, {"heldoutLoss": 0}):
            self.queue(done, kept(done))

    def record(self, wait: bool = False) -> None:
        """The metrics of the evaluations finished since the last call (of all, when
        `wait`) into the state, saved."""
        done = self.take(wait)
        for round_, (loss, accuracy) in done.items():
            self.state.adopted.setdefault(round_, {}).update(heldoutLoss=loss, heldoutAccuracy=accuracy)
            self.log(f"round {round_}: held-out accuracy {accuracy:.3f}, loss {loss:.3f}")
        if done:
            self.files.save(self.state)

    def take(self, wait: bool = False) -> dict[int, Metrics]:
        """The metrics of the finished evaluations (of all, started now if need be, when
        `wait`); each round's once."""
        if wait:
            self.start()
        out = {r: f.result() for r, f in sorted(self._running.items()) if wait or f.done()}
        for r in out:
            del self._running[r]
        return out

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _evaluate(self, weights: Update) -> Metrics:
        return evaluate(self.as_model(weights), self.data)
