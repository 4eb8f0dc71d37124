"""Who votes in a round's aggregate: one voting unit per organization, however many
identities it enrolls, and one unit for a group of near-identical updates.

A participant key is "MSPID/subject"; the part before the slash is the org. An org's
participants are averaged into one unit. Units whose updates are near-duplicates (their
distance at most 1/NEAR_DUPLICATE_RATIO of the median distance from a unit to its nearest
other unit) are merged, so colluders who send nearly the same vector carry one vote, not
one per copy. Honest orgs train on different data: their updates are never that close to
each other. Merging is statistical, so it only changes weights, never flags anyone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .exact import lower_median, squared_distance, weighted_mean

NEAR_DUPLICATE_RATIO = 10
MAX_UNIT_SAMPLES = 1 << 20  # a sample count is self-reported: bounded before any use


@dataclass(frozen=True)
class Unit:
    """One vote: its participants (sorted keys), the exact mean of their flat updates and
    their bounded, self-reported sample count."""

    members: tuple[str, ...]
    vector: np.ndarray
    samples: int


def org_of(key: str) -> str:
    return key.partition("/")[0]


def _merge(units: Sequence[Unit]) -> Unit:
    members = tuple(sorted(m for u in units for m in u.members))
    vector = (
        units[0].vector if len(units) == 1 else weighted_mean([u.vector for u in units], [1] * len(units))
    )
    return Unit(members, vector, min(MAX_UNIT_SAMPLES, sum(u.samples for u in units)))


def by_org(vectors: Mapping[str, np.ndarray], samples: Mapping[str, int]) -> list[Unit]:
    orgs: dict[str, list[Unit]] = {}
    for key in sorted(vectors):
        bounded = max(1, min(MAX_UNIT_SAMPLES, int(samples.get(key, 1))))
        orgs.setdefault(org_of(key), []).append(Unit((key,), vectors[key], bounded))
    return [_merge(units) for _, units in sorted(orgs.items())]


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def merge_near_duplicates(units: Sequence[Unit]) -> list[Unit]:
    n = len(units)
    if n < 2:
        return list(units)
    dist = {
        (i, j): squared_distance(units[i].vector, units[j].vector) for i in range(n) for j in range(i + 1, n)
    }
    # The median over units of the distance to their nearest other unit: attackers far from
    # everyone cannot raise it (a median over all pairs they can, and make honest units look
    # like copies of each other).
    nearest = [min(d for pair, d in dist.items() if i in pair) for i in range(n)]
    typical = lower_median(nearest)
    parent = list(range(n))
    for (i, j), d in sorted(dist.items()):
        if d * NEAR_DUPLICATE_RATIO**2 <= typical:
            parent[_find(parent, j)] = _find(parent, i)
    groups: dict[int, list[Unit]] = {}
    for i in range(n):
        groups.setdefault(_find(parent, i), []).append(units[i])
    return sorted((_merge(g) for g in groups.values()), key=lambda u: u.members)


def voting_units(vectors: Mapping[str, np.ndarray], samples: Mapping[str, int]) -> list[Unit]:
    """The round's voting units, in a canonical order (by their first member)."""
    return merge_near_duplicates(by_org(vectors, samples))
