"""Where a task's rounds stand on the ledger, as the mod, the strategy and the verifier
need it: waiting for a round's state, the deadlines "passed for certain", and the global
model a round must start from (the quorum's digest of the round before)."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass

from fabricml.contracts.federation import RoundState, Task
from fabricml.federation.round_ledger import round_state
from fabricml.gateway import GatewayError, RefusalCode, is_refusal

from .links import FederationLedger

DEFAULT_SKEW = 30  # the contract's clockSkewSeconds when a task leaves it 0


class NotYet(TimeoutError):
    """The ledger did not reach the awaited state in time (says what was awaited)."""


@dataclass(frozen=True)
class Clock:
    """Wall time and sleeping, replaceable in tests."""

    now: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep


def passed_for_certain(task: Task, deadline: str, clock: Clock) -> bool:
    """True once `deadline` (RFC 3339) is behind every honest clock: 2 x the task's skew later."""
    if not deadline:
        return False
    when = datetime.datetime.fromisoformat(deadline.replace("Z", "+00:00")).timestamp()
    return clock.now() > when + 2 * (task.clock_skew_seconds or DEFAULT_SKEW)


def wait_for(
    look: Callable[[], RoundState | None],
    until: Callable[[RoundState], bool],
    what: str,
    timeout: float,
    clock: Clock,
    pause: float = 0.5,
) -> RoundState:
    """Poll until `until(state)` holds; NotYet after `timeout` seconds."""
    end = clock.now() + timeout
    while True:
        state = look()
        if state is not None and until(state):
            return state
        if clock.now() >= end:
            raise NotYet(f"gave up after {timeout:g} s waiting for {what}")
        clock.sleep(pause)


def agreed_base(
    ledger: FederationLedger, task_id: str, round_: int, initial: str, timeout: float, clock: Clock
) -> str:
    """The digest of the global model round `round_` trains from: the quorum's digest of
    the round before (waiting up to `timeout` for it), the model before that when the round
    before closed unchanged, and `initial` (the task's initial model) for round 1."""
    for before in range(round_ - 1, 0, -1):
        try:
            result = ledger.get_round(task_id, before)
        except GatewayError as exc:
            if not is_refusal(exc, RefusalCode.NOT_FOUND):
                raise
        else:
            if result.status == "FINALIZED":
                return result.aggregate_digest
            continue  # closed: the model stayed what it was before that round
        state = wait_for(
            lambda b=before: round_state(ledger, task_id, b),  # type: ignore[misc]
            lambda s: bool(s.agreed_digest) or s.settleable,
            f"a quorum's digest of round {before}",
            timeout,
            clock,
        )
        if state.agreed_digest:
            return state.agreed_digest
        # settleable without a quorum: the round closes and the model stays
    return initial
