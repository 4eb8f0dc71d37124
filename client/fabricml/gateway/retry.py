"""One retry policy for the ledger layer: which failures are transient, and how long to keep trying.

Every Gateway call of this client (evaluate, endorse, submit, commit status, event
streams) goes through a Budget made from the gateway's RetryPolicy, so agents,
services, the API, the demo and the CLI ride out a node restart without code of
their own. A chaincode refusal, an invalid commit or a malformed request is never
retried: the same call would get the same answer."""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import grpc

from .errors import CommitError, GatewayError
from .refusals import refusal_of

T = TypeVar("T")
log = logging.getLogger(__name__)


class Failure(enum.Enum):
    PERMANENT = "permanent"  # the same call would fail the same way
    TRANSIENT = "transient"  # a node down, restarting, or electing a leader
    MISMATCH = "mismatch"  # endorsers disagreed: a block apart, or a non-deterministic chaincode
    STALE = "stale"  # committed invalid because it read a key another transaction changed first


# An invalid transaction has no effect; these two mean it read state that changed before it
# was ordered, so the same call endorsed again (a new proposal) is safe and usually succeeds.
_STALE_READS = ("MVCC_READ_CONFLICT", "PHANTOM_READ_CONFLICT")


# Fabric and gRPC say "a node is down" only in words (in a peer's ErrorDetail, or for a
# dropped connection); these are Fabric's and gRPC's own words, never a chaincode's.
_TRANSPORT = (
    "code = Unavailable",  # a peer's gRPC client could not reach another peer or orderer
    "code = DeadlineExceeded",
    "connection refused",
    "Connection refused",
    "transport is closing",
    "Stream removed",  # grpc: the connection dropped mid-call
    "Socket closed",
    "chaincode stream terminated",  # the chaincode server died mid-call
    "could not launch chaincode",  # the chaincode server is not (yet) accepting connections
)
# Discovery (FAILED_PRECONDITION) before gossip has found the other peers again.
_DISCOVERY = (
    "no peer combination can satisfy the endorsement policy",
    "due to unavailability of peers",
    "required chaincodes are not installed on sufficient peers",
)
_MISMATCH = "ProposalResponsePayloads do not match"
_CHAINCODE_ANSWERED = "chaincode response "  # the chaincode ran and refused: not transport


def classify(exc: BaseException) -> Failure:
    """Whether a failed call is worth trying again."""
    if isinstance(exc, CommitError):
        return Failure.STALE if exc.code_name in _STALE_READS else Failure.PERMANENT
    if not isinstance(exc, GatewayError) or refusal_of(exc) is not None:
        return Failure.PERMANENT
    texts = [str(exc.args[0]) if exc.args else "", *(d.message for d in exc.details)]
    if any(_CHAINCODE_ANSWERED in t for t in texts):
        return Failure.PERMANENT
    if any(_MISMATCH in t for t in texts):
        return Failure.MISMATCH
    if exc.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return Failure.TRANSIENT
    signs = _TRANSPORT + (_DISCOVERY if exc.code == grpc.StatusCode.FAILED_PRECONDITION else ())
    if any(sign in t for t in texts for sign in signs):
        return Failure.TRANSIENT
    return Failure.PERMANENT


@dataclass(frozen=True)
class RetryPolicy:
    """The budget of one call: at most `attempts` tries and no new try after
    `total_seconds`, whatever failed; between tries a delay starting at `first_delay`,
    doubling up to `max_delay`, with equal jitter (half fixed, half random) so that
    clients which lost the same node do not come back in lockstep.

    Two failures also have a budget of their own inside that one, because trying again
    means something different for each:
    - `mismatch_attempts`: endorsers disagreed. Peers a block apart agree within a
      block; a non-deterministic chaincode never does, so a few tries tell them apart.
    - `stale_attempts`: the transaction committed invalid on a stale read (another
      transaction changed what it read before it was ordered). It had no effect, so
      endorsing it again is safe; one that reads a busy record (a running task's, while
      every participant posts) can lose many races in a row, so it gets more tries than
      a disagreement, and still a bound: a record that never settles ends in its
      CommitError.

    A submitted transaction not in a block after `resubmit_after` seconds is sent again
    (the same signed envelope, so it can take effect only once); `status_probe` bounds
    the question "did it commit?" asked before sending again a transaction whose submit
    failed."""

    attempts: int = 40
    total_seconds: float = 120.0
    first_delay: float = 0.25
    max_delay: float = 4.0
    mismatch_attempts: int = 6
    stale_attempts: int = 12
    resubmit_after: float = 10.0
    status_probe: float = 3.0

    def __post_init__(self) -> None:
        if min(self.attempts, self.mismatch_attempts, self.stale_attempts) < 1:
            raise ValueError(f"attempts, mismatch_attempts and stale_attempts must be at least 1, got {self}")
        if min(self.total_seconds, self.first_delay, self.max_delay) < 0:
            raise ValueError(f"total_seconds, first_delay and max_delay must not be negative, got {self}")
        if self.resubmit_after <= 0 or self.status_probe <= 0:
            raise ValueError(f"resubmit_after and status_probe must be positive, got {self}")

    @property
    def retries(self) -> bool:
        return self.attempts > 1

    def delays(self, rng: Callable[[], float] = random.random) -> Iterator[float]:
        """The pause before the 2nd, 3rd, ... try."""
        delay = self.first_delay
        while True:
            yield delay / 2 + rng() * delay / 2
            delay = min(self.max_delay, delay * 2)

    def budget(self) -> Budget:
        return Budget(self)


NO_RETRY = RetryPolicy(attempts=1)
DEFAULT = RetryPolicy()

# gRPC reconnects a channel by itself, but after a few failures it waits up to two
# minutes between attempts and fails calls at once meanwhile: a restarted peer would
# look dead long after it is back. Keep those waits short.
RECONNECT_OPTIONS: list[tuple[str, int]] = [
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


class Budget:
    """What is left of one call's RetryPolicy; shared by the steps of one convenience call."""

    def __init__(
        self,
        policy: RetryPolicy,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.policy = policy
        self.tries = 0
        self.mismatches = 0  # tries that failed on disagreeing endorsements
        self.stale_reads = 0  # transactions that committed invalid on a stale read
        self._clock = clock
        self._sleep = sleep
        self._deadline = clock() + policy.total_seconds
        self._delays = policy.delays()

    async def pause(self, exc: BaseException, step: str) -> bool:
        """After a failed try: wait and return True to try again, or False to give up."""
        self.tries += 1
        kind = classify(exc)
        self.mismatches += kind is Failure.MISMATCH
        self.stale_reads += kind is Failure.STALE
        if (
            kind is Failure.PERMANENT
            or self.tries >= self.policy.attempts
            or self.mismatches >= self.policy.mismatch_attempts
            or self.stale_reads >= self.policy.stale_attempts
        ):
            return False
        delay = next(self._delays)
        if self._clock() + delay > self._deadline:
            return False
        # an invalid commit's status name (its code is a bare number), else the gRPC code
        code = getattr(exc, "code_name", None) or getattr(exc, "code", None)
        log.warning(
            "%s failed (%s: %s); try %d in %.2fs",
            step, getattr(code, "name", code), _first_line(exc), self.tries + 1, delay,
        )  # fmt: skip
        await self._sleep(delay)
        return True

    async def run(self, step: str, call: Callable[[], Awaitable[T]]) -> T:
        """call() until it succeeds or the budget says stop (then its last error is raised)."""
        while True:
            try:
                return await call()
            except GatewayError as exc:
                if not await self.pause(exc, step):
                    raise


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
