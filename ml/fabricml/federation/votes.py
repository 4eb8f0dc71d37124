"""Who votes in a round's aggregate: one voting unit per organization, however many
identities it enrolls, and one unit for a group of near-identical updates.

A participant key is "MSPID/subject"; the part before the slash is the org. An org's
identities are screened one by one before they become its one vote: an identity whose
update does not point along the round's screening direction (the reference, else the
coordinate median over orgs of each org's coordinate median of its identities) is left
out of its org's unit, which is the mean of the survivors. So an identity inside an
honest org that points against the reference cannot drag that org's vote with it, and an
org still has one vote however many identities it enrolls. An org none of whose identities
points along the direction keeps all of them (the rule then judges the whole unit).
Units whose updates are near-duplicates (their distance at most 1/NEAR_DUPLICATE_RATIO
of the median distance from a unit to its nearest other unit) are merged, so colluders
who send nearly the same vector carry one vote, not one per copy. Honest orgs train on
different data: their updates are never that close to each other. Screening and merging
are statistical, so they only change weights, never flag anyone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .aggregation import coordinate_median
from .exact import ONE, cosine, lower_median, weighted_mean
from .gram import Gram
from .reference import Direction, resolve

NEAR_DUPLICATE_RATIO = 10
MAX_UNIT_SAMPLES = 1 << 20  # a sample count is self-reported: bounded before any use


@dataclass(frozen=True)
class Unit:
    """One vote: its participants (sorted keys), the exact mean of their flat updates and
    their bounded, self-reported sample count."""

    members: tuple[str, ...]
    vector: np.ndarray
    samples: int
    left_out: tuple[str, ...] = ()  # the org's identities screened out of this unit's vector


def org_of(key: str) -> str:
    return key.partition("/")[0]


def _merge(units: Sequence[Unit]) -> Unit:
    members = tuple(sorted(m for u in units for m in u.members))
    left_out = tuple(sorted(m for u in units for m in u.left_out))
    vector = (
        units[0].vector if len(units) == 1 else weighted_mean([u.vector for u in units], [1] * len(units))
    )
    return Unit(members, vector, min(MAX_UNIT_SAMPLES, sum(u.samples for u in units)), left_out)


def _mean(vectors: Sequence[np.ndarray]) -> np.ndarray:
    return vectors[0] if len(vectors) == 1 else weighted_mean(list(vectors), [1] * len(vectors))


def org_estimate(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """An org's identities, for the screening direction only: their coordinate median when
    three or more (one poisoning identity cannot move it beyond the others), else their
    mean (with two, neither can be told from the other)."""
    return coordinate_median([[v] for v in vectors])[0] if len(vectors) >= 3 else _mean(vectors)


def _org_unit(identities: Sequence[Unit], direction: np.ndarray | None) -> Unit:
    if direction is None or any(u.vector.shape != direction.shape for u in identities):
        along = list(identities)
    else:
        along = [u for u in identities if cosine(u.vector, direction, ONE) > 0]
    kept = along or list(identities)  # none along it: the direction says nothing about this org
    members = tuple(u.members[0] for u in kept)
    left_out = tuple(sorted(set(u.members[0] for u in identities) - set(members)))
    samples = min(MAX_UNIT_SAMPLES, sum(u.samples for u in kept))
    return Unit(members, _mean([u.vector for u in kept]), samples, left_out)


def by_org(
    vectors: Mapping[str, np.ndarray], samples: Mapping[str, int], reference: Direction = None
) -> list[Unit]:
    """One unit per org, in org order: the mean of its identities that point along
    `reference`, else along the coordinate median over orgs of `org_estimate` (one entry
    per org: enrolling more identities does not give an org more say in it)."""
    orgs: dict[str, list[Unit]] = {}
    for key in sorted(vectors):
        bounded = max(1, min(MAX_UNIT_SAMPLES, int(samples.get(key, 1))))
        orgs.setdefault(org_of(key), []).append(Unit((key,), vectors[key], bounded))
    groups = [units for _, units in sorted(orgs.items())]
    if all(len(g) == 1 for g in groups):  # no org to screen: the direction is not needed
        return [g[0] for g in groups]
    direction = resolve(reference)
    if direction is None:
        estimates = [org_estimate([u.vector for u in g]) for g in groups]
        direction = coordinate_median([[v] for v in estimates])[0]
    if direction is not None and not np.any(direction):
        direction = None
    return [g[0] if len(g) == 1 else _org_unit(g, direction) for g in groups]


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def merge_near_duplicates(units: Sequence[Unit], products: Gram | None = None) -> list[Unit]:
    """`products`: the units' Gram (unit_products), when the caller keeps it; its squared
    distances are exact.squared_distance's, from one pass over the units."""
    n = len(units)
    if n < 2:
        return list(units)
    gram = products if products is not None else unit_products(units)
    dist = {
        (i, j): gram.squared_distance(units[i].vector, units[j].vector)
        for i in range(n)
        for j in range(i + 1, n)
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


def unit_products(units: Sequence[Unit]) -> Gram:
    """Every product of the units' vectors (squares and pairs), in one pass."""
    return Gram([u.vector for u in units])


def voting_units(
    vectors: Mapping[str, np.ndarray], samples: Mapping[str, int], reference: Direction = None
) -> list[Unit]:
    """The round's voting units, in a canonical order (by their first member); identities
    are screened against `reference` (the round's agreed direction), if any."""
    return voting_units_and_products(vectors, samples, reference)[0]


def voting_units_and_products(
    vectors: Mapping[str, np.ndarray], samples: Mapping[str, int], reference: Direction = None
) -> tuple[list[Unit], Gram]:
    """voting_units, and the Gram of the units before merging: a unit that merged with
    none is the same vector, so the outcome's Gram takes its square from it."""
    units = by_org(vectors, samples, reference)
    products = unit_products(units) if len(units) > 1 else Gram([])
    return merge_near_duplicates(units, products), products
