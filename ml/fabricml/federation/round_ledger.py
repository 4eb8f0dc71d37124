"""The Federation contract as a round's drivers use it (fabricml.contracts.FederationClient):
the one call posting an assessment needs, the calls that take a round from its
commitments to its settlement, and reading a round that may not have begun. Agents, the
Flower integration and unit-test fakes share these, so the signatures live here once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from fabricml.contracts.federation import AggregatePost, Commitment, RoundResult, RoundState, Task
from fabricml.gateway import GatewayError, RefusalCode, is_refusal


class AssessmentLedger(Protocol):
    """The one Federation call posting needs."""

    def post_aggregate(
        self,
        task_id: str,
        round_: int,
        digest: str,
        scores: Mapping[str, int],
        flagged: Sequence[str],
        missing: Sequence[str] = (),
    ) -> AggregatePost: ...


class RoundLedger(AssessmentLedger, Protocol):
    """A round's calls, from the task to its settlement."""

    def get_task(self, task_id: str) -> Task: ...
    def get_round_state(self, task_id: str, round_: int) -> RoundState: ...
    def get_round(self, task_id: str, round_: int) -> RoundResult: ...
    def commit(self, task_id: str, round_: int, digest: str, samples: int, uri: str) -> Commitment: ...
    def commitments(self, task_id: str, round_: int) -> tuple[Commitment, ...]: ...
    def aggregates(self, task_id: str, round_: int) -> tuple[AggregatePost, ...]: ...
    def settle(self, task_id: str, round_: int) -> RoundResult: ...


def round_state(ledger: RoundLedger, task_id: str, round_: int) -> RoundState | None:
    """The round's state; None while the round before is not settled (WRONG_PHASE)."""
    try:
        return ledger.get_round_state(task_id, round_)
    except GatewayError as exc:
        if is_refusal(exc, RefusalCode.WRONG_PHASE):
            return None
        raise
