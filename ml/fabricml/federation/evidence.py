"""Flags and scores for a round's participants. A flag (the Federation contract slashes a
participant a majority of orgs flag) needs proof anyone can check from the revealed bytes
and the ledger: an unusable reveal, shapes that are not the model's, a value outside the
fixed-point bound, an empty update, a replay of an earlier round's update or aggregate, or
the same values as another participant in the same round (commitments are made before
anyone reveals, so equal values mean a copy arranged in advance). Statistical suspicion
(pointing away from the aggregate, being clipped or left out by the rule) only lowers a
participant's weight and score, never its stake: under non-IID data an honest org can
look unusual in any round. Everything is integer arithmetic on the same bytes, so every
honest org posts the same flags and scores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import exact
from .aggregation import coordinate_median
from .exact import ONE, fraction, lower_median
from .fixedpoint import Update, bound_violation
from .fixedpoint import digest as payload_digest  # values only: equal updates, equal digests
from .gram import Gram
from .payload import Screened
from .votes import Unit, voting_units

SCORE_SCALE = 1000


@dataclass
class History:
    """What an org remembers across rounds: the rounds each participant was down-weighted
    in (for the record; never a reason to flag) and the payload digest of every update and
    aggregate seen so far."""

    outliers: dict[str, list[int]] = field(default_factory=dict)
    seen: dict[str, str] = field(default_factory=dict)  # payload digest -> "participant@round"

    def to_json(self) -> dict[str, Any]:
        return {"outliers": self.outliers, "seen": self.seen}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> History:
        return cls({k: list(v) for k, v in raw.get("outliers", {}).items()}, dict(raw.get("seen", {})))

    def copy(self) -> History:
        return History.from_json(self.to_json())


@dataclass(frozen=True)
class Assessment:
    scores: dict[str, int]  # 0..SCORE_SCALE, an org's participants share one unit's score
    flagged: list[str]  # provable misbehaviour only
    reasons: dict[str, str]  # why each flagged or down-weighted participant was singled out
    norms: dict[str, int]  # exact L2 norms, fixed-point units
    distances: dict[str, int]  # exact squared distance to the round's aggregate step
    weights: dict[str, int] = field(default_factory=dict)  # 0..SCORE_SCALE: how much each counted
    fallback: str = ""  # why the rule could not be applied (the round then takes a zero step)


def _violation(
    update: Update, shapes: Sequence[tuple[int, ...]] | None, known: Screened | None = None
) -> str | None:
    """Why the update is provably bad, or None; `known`: its answers found while decoding."""
    if shapes is not None and [tuple(a.shape) for a in update] != list(shapes):
        return f"its shapes {[a.shape for a in update]} are not the model's {list(shapes)}"
    why = known.violation if known is not None else bound_violation(update)
    if why:
        return why
    empty = known.empty if known is not None else not any(np.any(a) for a in update)
    return "empty update (free rider)" if empty else None


def _answers(updates: Mapping[str, Update], screened: Mapping[str, Screened] | None) -> dict[str, Screened]:
    """The screening answers that describe exactly these updates (others are recomputed)."""
    return {k: s for k, s in (screened or {}).items() if k in updates and s.describes(updates[k])}


def screen(
    round_: int,
    updates: Mapping[str, Update],
    history: History,
    invalid: Mapping[str, str] | None = None,
    shapes: Sequence[tuple[int, ...]] | None = None,
    payloads: dict[str, str] | None = None,
    screened: Mapping[str, Screened] | None = None,
) -> tuple[dict[str, Update], dict[str, str]]:
    """Split a round's updates into the usable ones and the provably bad ones (with why).
    `payloads` receives the payload digest of each update within the bound, for remember;
    `screened`: digests and bound checks found while decoding (payload.read_screened)."""
    payloads = {} if payloads is None else payloads
    known = _answers(updates, screened)
    flags = dict(invalid or {})
    digests: dict[str, list[str]] = {}
    for k in sorted(updates):
        why = _violation(updates[k], shapes, known.get(k))
        if why:
            flags[k] = why
            continue
        d = payloads[k] = known[k].digest if k in known else payload_digest(updates[k])
        if d in history.seen:
            flags[k] = f"replays the update of {history.seen[d]} (free rider)"
        digests.setdefault(d, []).append(k)
    for same in digests.values():
        for k in same if len(same) > 1 else []:
            flags.setdefault(
                k, f"sends the same values as {', '.join(o for o in same if o != k)} this round (a copy)"
            )
    return {k: u for k, u in updates.items() if k not in flags}, flags


def remember(
    history: History,
    round_: int,
    updates: Mapping[str, Update],
    step: np.ndarray | None,
    digests: Mapping[str, str] | None = None,
    step_digest: str | None = None,
) -> None:
    """Record this round's payload digests (and its aggregate step's) in `history`.
    `digests`: the payload digests screen computed (of the updates within the bound);
    `step_digest`: the step's, fixedpoint.digest([step]), if the caller computed it."""
    known = digests or {}
    for k in sorted(updates):
        if k in known:
            history.seen.setdefault(known[k], f"{k}@{round_}")
        elif bound_violation(updates[k]) is None:
            history.seen.setdefault(payload_digest(updates[k]), f"{k}@{round_}")
    if step is not None and np.any(step):
        found = step_digest if step_digest is not None else payload_digest([step])
        history.seen.setdefault(found, f"the aggregate of round {round_}")


def _alignment(units: Sequence[Unit], step: np.ndarray, gram: Gram) -> list[int]:
    """Per unit, in [0, ONE]: full when its cosine with the step is at least half the
    median unit's, proportionally less below, zero when it points away."""
    cos = [gram.cosine(u.vector, step, ONE) for u in units]
    if not cos:
        return []
    typical = lower_median(cos)
    if typical <= 0:
        return [ONE if c >= 0 else 0 for c in cos]
    return [fraction(2 * max(c, 0), typical) for c in cos]


def judge(
    round_: int,
    units: Sequence[Unit],
    influence: Sequence[int],
    step: np.ndarray,
    flags: Mapping[str, str],
    history: History,
    gram: Gram | None = None,
) -> tuple[dict[str, int], dict[str, int], dict[str, str]]:
    """Scores, weights and reasons for the usable participants. A unit counted at least as
    much as the median unit has full weight; its score is that weight times its alignment
    with the step, split among the identities it kept (those screened out of it get 0).
    Down-weighted rounds are noted in `history.outliers` for the record. `gram`: the
    units' and the step's products, when the caller computed them (outcome_gram)."""
    scores, weights, reasons = {}, {}, {}
    typical = lower_median(list(influence)) if influence else 0
    relative = [fraction(i, typical) if typical else (ONE if i else 0) for i in influence]
    alignment = _alignment(units, step, gram if gram is not None else Gram([]))
    for unit, inf, align in zip(units, relative, alignment, strict=True):
        share = len(unit.members)
        for k in unit.members:
            weights[k] = SCORE_SCALE * inf // ONE // share
            scores[k] = SCORE_SCALE * inf * align // (ONE * ONE) // share
            if scores[k] * 2 * share < SCORE_SCALE:
                reasons[k] = (
                    f"counted {SCORE_SCALE * inf // ONE}/{SCORE_SCALE} in the aggregate, aligned "
                    f"{SCORE_SCALE * align // ONE}/{SCORE_SCALE} with it"
                    + (f", one vote with {', '.join(m for m in unit.members if m != k)}" if share > 1 else "")
                    + " (lowers weight and reward, not stake)"
                )
                history.outliers.setdefault(k, []).append(round_)
        for k in unit.left_out:
            scores[k], weights[k] = 0, 0
            reasons[k] = (
                "left out of its org's vote: its update does not point along the round's reference "
                "(lowers weight and reward, not stake)"
            )
            history.outliers.setdefault(k, []).append(round_)
    for k, why in flags.items():
        scores[k], weights[k], reasons[k] = 0, 0, why
    return scores, weights, reasons


def assess(
    round_: int, updates: Mapping[str, Update], history: History, invalid: Mapping[str, str] | None = None
) -> Assessment:
    """Flags and scores against the coordinate median of the round's voting units, for
    callers that aggregate on their own; updates `history` in place. Prefer
    fabricml.federation.outcome.compute_outcome, which scores against the rule's result."""
    usable, flags = screen(round_, updates, history, invalid)
    units = voting_units({k: exact.flatten(u) for k, u in usable.items()}, {})
    vectors = [u.vector for u in units]
    median = coordinate_median([[v] for v in vectors])[0] if units else np.zeros(0, dtype=np.int64)
    scores, weights, reasons = judge(round_, units, [ONE] * len(units), median, flags, history)
    remember(history, round_, updates, None)
    return describe(usable, median, scores, weights, reasons, sorted(flags))


def describe(
    usable: Mapping[str, Update],
    step: np.ndarray,
    scores: dict[str, int],
    weights: dict[str, int],
    reasons: dict[str, str],
    flagged: list[str],
    fallback: str = "",
    flat: Mapping[str, np.ndarray] | None = None,
    gram: Gram | None = None,
) -> Assessment:
    """`flat`: the usable updates flattened (exact.flatten), when the caller holds them;
    `gram`: their and the step's products (outcome_gram)."""
    flat = flat if flat is not None else {k: exact.flatten(u) for k, u in usable.items()}
    g = gram if gram is not None else Gram([])
    norms = {k: g.norm(v) for k, v in flat.items()}
    distances = {k: g.squared_distance(v, step) for k, v in flat.items() if v.shape == step.shape}
    return Assessment(scores, flagged, reasons, norms, distances, weights, fallback)


def outcome_gram(
    units: Sequence[Unit], flat: Mapping[str, np.ndarray], step: np.ndarray, known: Gram | None = None
) -> Gram:
    """Every product judge and describe take, in one pass: the squares of the units, the
    usable updates and the step, and each of them with the step. `known`: products
    computed before (votes.voting_units_and_products), not computed again."""
    vectors = [step, *(u.vector for u in units), *(flat[k] for k in sorted(flat))]
    return Gram(vectors, [(0, i) for i in range(1, len(vectors))], known)
