"""Settling rounds (protocol v2): anyone may call Settle once a round is settleable; the
org's poster does it for the rounds behind the one it trains, in the background, so the
transaction shares a block with the next round's commitments and delays nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from fabricml.contracts.federation import RoundResult, RoundState, Task
from fabricml.gateway import CommitError, GatewayError, RefusalCode, is_refusal

from .participation import FederationLedger
from .round_ledger import round_state

Log = Callable[[str], None]


def is_poster(key: str, task: Task, state: RoundState) -> bool:
    """One agent per org posts (and settles): the org's first participant of the round,
    in joining order."""
    msp = key.split("/")[0]
    ours = [p.key for p in task.participants if p.msp_id == msp and p.key in state.participants]
    return bool(ours) and ours[0] == key


class Settlement:
    def __init__(
        self, fed: FederationLedger, key: str, log: Log, wake: threading.Event, background: bool = True
    ) -> None:
        self.fed, self.key, self.log, self.wake = fed, key, log, wake
        self._settling: dict[int, Future[RoundResult | None]] = {}
        self._background = ThreadPoolExecutor(1, "fabricml-settle") if background else None

    def behind(self, task: Task, round_: int, anyone: bool = False) -> None:
        """Settle the rounds before `round_` that nobody settled yet: the org's poster does
        (`anyone`: every agent)."""
        for r in range(task.round, min(round_, task.rounds + 1)):
            self._settle_if_ready(task, r, anyone)

    def finish(self, task: Task) -> bool:
        """Every round is adopted (or this agent is not a participant): settle what is
        left; True once the task is done."""
        if task.status == "done":
            return True
        self.behind(task, task.rounds + 1, anyone=True)
        return False

    def shutdown(self) -> None:
        if self._background:
            self._background.shutdown(wait=True)

    def _settle_if_ready(self, task: Task, round_: int, anyone: bool) -> None:
        state = round_state(self.fed, task.id, round_)
        if state is None or state.phase == "SETTLED" or not state.settleable:
            return
        if not (anyone or is_poster(self.key, task, state)) or round_ in self._settling:
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
