"""One org's assessment of a round from the updates it gathered: the round's outcome
(fabricml.federation.outcome.compute_outcome, the task's rule) when enough updates are
usable, else the unchanged global model, which makes the round close. Deterministic:
every honest org that gathered the same bytes posts exactly the same."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fabricml.federation import fixedpoint
from fabricml.federation.evidence import Assessment, History, assess
from fabricml.federation.fixedpoint import Update
from fabricml.federation.outcome import RoundInputs, compute_outcome

from .collect import RoundUpdates


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
    history: History
    changed: bool  # False: too few usable updates, the model stays
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def same_as(self, digest: str, scores: dict[str, int], flagged: list[str], missing: list[str]) -> bool:
        """Whether a post on the ledger says exactly what this assessment says."""
        return (digest, scores, sorted(flagged), sorted(missing)) == (
            self.digest, self.scores, sorted(self.flagged), sorted(self.missing),
        )  # fmt: skip


def assess_round(
    round_: int,
    rule: str,
    min_participants: int,
    global_model: Update,
    previous_global: Update | None,
    found: RoundUpdates,
    history: History,
) -> RoundPost:
    """The post for a round whose updates were gathered; `history` is not changed."""
    inputs = RoundInputs(
        round_, rule, global_model, found.updates, found.samples, found.invalid, history, previous_global
    )
    if found.usable >= min_participants and found.updates:
        outcome = compute_outcome(inputs)  # never raises on what participants send
        a = outcome.assessment
        return RoundPost(
            round_, outcome.digest, dict(a.scores), list(a.flagged), list(found.missing), dict(a.reasons),
            outcome.new_global, outcome.history, True, dict(found.datasets),
        )  # fmt: skip
    scratch = history.copy()  # not kept: the round closes
    if found.updates:
        a = assess(round_, found.updates, scratch, found.invalid)
    else:
        a = Assessment({k: 0 for k in found.invalid}, sorted(found.invalid), dict(found.invalid), {}, {})
    return RoundPost(
        round_, fixedpoint.digest(global_model), dict(a.scores), list(a.flagged), list(found.missing),
        dict(a.reasons), global_model, history, False, dict(found.datasets),
    )  # fmt: skip
