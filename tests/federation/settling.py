"""Settling a round from a test, as an agent would."""

from __future__ import annotations

import time

from fabricml.contracts import FederationClient
from fabricml.contracts.federation import RoundResult
from fabricml.gateway import GatewayError, RefusalCode, is_refusal


def settle_once_seen(fed: FederationClient, task_id: str, round_: int) -> RoundResult:
    """Settle as soon as the endorsing peers have the posts: a peer one block behind the
    submitter's answers WRONG_PHASE (no quorum yet) for a moment, as agents see too."""
    for _ in range(20):
        try:
            return fed.settle(task_id, round_)
        except GatewayError as exc:
            if not is_refusal(exc, RefusalCode.WRONG_PHASE):
                raise
            time.sleep(0.5)
    return fed.settle(task_id, round_)
