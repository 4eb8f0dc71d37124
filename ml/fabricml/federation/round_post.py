"""What one org posts for a round, from the updates it could use: the round's outcome
(fabricml.federation.outcome) when enough of them are usable, else the unchanged global
model, which makes the round close. Scores name exactly the usable updates (fetched,
whether valid or flagged), never the missing ones, as the Federation contract requires.

`assess_and_post` is the whole step for any driver of a round (the agent, or a Flower
strategy): given the round's state and the fetched updates, compute the post and send it."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fabricml.contracts.federation import RoundState, Task
from fabricml.gateway import GatewayError, RefusalCode, is_refusal

from . import fixedpoint
from .evidence import Assessment, History, assess
from .fixedpoint import Update
from .outcome import RoundInputs, compute_outcome
from .reveals import PublishedUpdates
from .round_ledger import AssessmentLedger


@dataclass(frozen=True)
class RoundPost:
    """What an org posts (digest, scores, flagged, missing) and keeps once the round is adopted."""

    round: int
    digest: str  # of the new global model (the current one when unchanged)
    scores: dict[str, int]
    flagged: list[str]
    missing: list[str]
    reasons: dict[str, str]
    new_global: Update
    history: History  # to keep once the round is adopted
    changed: bool  # False: too few usable updates (or a rule that cannot run): the model stays
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)  # of the usable updates
    note: str = ""  # why the model stays

    def same_as(self, digest: str, scores: dict[str, int], flagged: list[str], missing: list[str]) -> bool:
        """Whether a post on the ledger says exactly what this assessment says."""
        return (digest, scores, sorted(flagged), sorted(missing)) == (
            self.digest, self.scores, sorted(self.flagged), sorted(self.missing),
        )  # fmt: skip


def round_post(
    round_: int,
    rule: str,
    global_model: Update,
    found: PublishedUpdates,
    missing: Sequence[str],
    history: History,
    min_participants: int,
    previous_global: Update | None = None,
) -> RoundPost:
    """The post for a round whose pending updates are `missing` (none may stay pending).
    Deterministic: every honest org with the same bytes (and the same agreed models
    before: `previous_global`, the global model before the last round's step) posts the same."""
    usable = len(found.usable)
    inputs = RoundInputs(round_, rule, global_model, found.updates, found.samples, found.invalid, history,
                         previous_global, screened=found.screened)  # fmt: skip
    if usable >= min_participants and found.updates:
        try:
            outcome = compute_outcome(inputs)
        except ValueError as exc:  # a rule that cannot run on these updates: the model stays
            return _unchanged(inputs, missing, found, f"rule {rule}: {exc}")
        a = outcome.assessment
        return RoundPost(round_, outcome.digest, dict(a.scores), list(a.flagged), sorted(missing),
                         dict(a.reasons), outcome.new_global, outcome.history, True,
                         dict(found.datasets))  # fmt: skip
    return _unchanged(inputs, missing, found, f"only {usable} usable updates of {min_participants} needed")


def _unchanged(inputs: RoundInputs, missing: Sequence[str], found: PublishedUpdates, why: str) -> RoundPost:
    """The current model again, with the usable updates scored and the invalid flagged."""
    scratch = History.from_json(inputs.history.to_json())  # not kept: the round closes
    if inputs.updates:
        a = assess(inputs.round, inputs.updates, scratch, inputs.invalid)
    else:
        a = Assessment({k: 0 for k in inputs.invalid}, sorted(inputs.invalid), dict(inputs.invalid), {}, {})
    return RoundPost(inputs.round, fixedpoint.digest(inputs.global_model), dict(a.scores), list(a.flagged),
                     sorted(missing), dict(a.reasons), inputs.global_model, inputs.history, False,
                     dict(found.datasets), f"unchanged: {why}")  # fmt: skip


def post_assessment(
    fed: AssessmentLedger, task: Task, state: RoundState, post: RoundPost, wrong: bool = False
) -> bool:
    """Send the org's assessment; True once the ledger holds it (a retry returns the
    record). False when the round takes none: too few commitments (it closes without
    posts), `missing` before the reveal window ran its full length, or past the aggregate
    deadline (WRONG_PHASE). `wrong`: for tests, a digest no one else computes."""
    if len(state.committed) < task.min_participants:
        return False
    digest = hashlib.sha256(post.digest.encode() + b"wrong").hexdigest() if wrong else post.digest
    try:
        fed.post_aggregate(task.id, state.round, digest, post.scores, post.flagged, post.missing)
    except GatewayError as exc:
        if is_refusal(exc, RefusalCode.WRONG_PHASE):
            return False
        raise
    return True


def assess_and_post(
    fed: AssessmentLedger,
    task: Task,
    state: RoundState,
    global_model: Update,
    found: PublishedUpdates,
    history: History,
    previous_global: Update | None = None,
) -> RoundPost:
    """The org's post of round `state.round` from the updates fetched so far (every one
    still pending is reported missing: call this only once the reveal window passed for
    certain, or with nothing pending), sent to the ledger if the round takes it now.
    `previous_global`: the agreed global model before the last round's step (None in
    round 1), the reference direction's start."""
    post = round_post(state.round, task.rule, global_model, found, sorted(found.pending), history,
                      task.min_participants, previous_global)  # fmt: skip
    post_assessment(fed, task, state, post)
    return post
