"""Scores and flags for a round's participants, from evidence that holds under non-IID
data: a single unusual round is not enough to be slashed.

Per round an update is an *outlier* when its norm or its distance to the coordinate
median of all updates is more than OUTLIER_RATIO times the median of those figures, or
when it points against the median (negative inner product). A participant is *flagged*
(and the Federation contract slashes it when a majority of orgs agree) when it was an
outlier in this round and in STRIKES - 1 of the previous HISTORY rounds, or at once when
its update replays an earlier one or is empty: a free rider has nothing to gain.
Everything is integer arithmetic on fixed-point updates, so every org reaches the same
scores and flags."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .aggregation import coordinate_median, dot, norm, squared_distance
from .fixedpoint import Update
from .fixedpoint import digest as payload_digest  # values only: equal updates, equal digests

OUTLIER_RATIO = 3
HISTORY = 2  # rounds looked back on
STRIKES = 2  # outlier rounds within HISTORY + 1 that make a flag
# With fewer updates "far from the others" says nothing: of three non-IID participants one
# is always far from the other two. Replays and empty updates are flagged at any size.
MIN_FOR_OUTLIERS = 4
SCORE_SCALE = 1000


@dataclass
class History:
    """What an org remembers across rounds: outlier rounds per participant and the
    payload digests of every update seen so far."""

    outliers: dict[str, list[int]] = field(default_factory=dict)
    seen: dict[str, str] = field(default_factory=dict)  # payload digest -> "participant@round"

    def to_json(self) -> dict[str, Any]:
        return {"outliers": self.outliers, "seen": self.seen}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> History:
        return cls({k: list(v) for k, v in raw.get("outliers", {}).items()}, dict(raw.get("seen", {})))


@dataclass(frozen=True)
class Assessment:
    scores: dict[str, int]
    flagged: list[str]
    reasons: dict[str, str]  # why each outlier or flagged participant was singled out
    norms: dict[str, int]
    distances: dict[str, int]


def _median(values: list[int]) -> int:
    s = sorted(values)
    return s[(len(s) - 1) // 2]


def assess(
    round_: int, updates: Mapping[str, Update], history: History, invalid: Mapping[str, str] | None = None
) -> Assessment:
    """Score and flag one round's revealed updates (participant key -> update); updates
    `history` in place. Call once per round, in round order. `invalid` names participants
    whose revealed bytes could not be used (wrong binding or shapes): flagged at once."""
    keys = sorted(updates)
    reference = coordinate_median([updates[k] for k in keys])
    norms = {k: norm(updates[k]) for k in keys}
    dists = {k: squared_distance(updates[k], reference) for k in keys}
    med_norm, med_dist = _median(list(norms.values())), _median(list(dists.values()))
    reasons: dict[str, str] = {}
    flagged: list[str] = []
    statistical = len(keys) >= MIN_FOR_OUTLIERS
    for k in keys:
        why = []
        if statistical and norms[k] > OUTLIER_RATIO * med_norm + 1:
            why.append(f"norm {norms[k]} > {OUTLIER_RATIO}x median {med_norm}")
        # Squared distances: compare against the squared ratio.
        if statistical and dists[k] > OUTLIER_RATIO**2 * med_dist + 1:
            why.append(f"distance to median {dists[k]} > {OUTLIER_RATIO**2}x median {med_dist} (squared)")
        if statistical and dot(updates[k], reference) < 0:
            why.append("points against the median")
        payload = payload_digest(updates[k])
        replay = history.seen.get(payload)
        if norms[k] == 0:
            reasons[k] = "empty update (free rider)"
            flagged.append(k)
        elif replay is not None:
            reasons[k] = f"replays the update of {replay} (free rider)"
            flagged.append(k)
        elif why:
            past = [r for r in history.outliers.get(k, []) if round_ - HISTORY <= r < round_]
            reasons[k] = "; ".join(why) + (f"; also an outlier in round(s) {past}" if past else "")
            if len(past) + 1 >= STRIKES:
                flagged.append(k)
        if why:
            history.outliers.setdefault(k, []).append(round_)
    for k in keys:
        history.seen.setdefault(payload_digest(updates[k]), f"{k}@{round_}")
    scores = {}
    for k in keys:
        if k in reasons:
            scores[k] = 0
        else:
            # Closer to the robust reference than the median participant earns the full score.
            scores[k] = SCORE_SCALE if dists[k] <= med_dist else SCORE_SCALE * max(med_dist, 1) // dists[k]
    for k, reason in sorted((invalid or {}).items()):
        reasons[k], scores[k] = reason, 0
        flagged.append(k)
    return Assessment(scores, sorted(flagged), reasons, norms, dists)
