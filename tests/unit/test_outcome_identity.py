"""The round's outcome is bit-identical to what the implementation before the vectorised
exact arithmetic computed (a frozen fixture, tests/unit/outcome_cases.py): scores, flags,
reasons, weights, norms, distances, the aggregate step's digest and the new model's."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fabricml.federation import exact
from tests.unit.outcome_cases import FIXTURE, cases, outcome_of, summary

EXPECTED = json.loads(FIXTURE.read_text())


def test_the_fixture_covers_every_case() -> None:
    assert sorted(EXPECTED) == sorted(f"{name} {rule}" for name, rule, _ in cases())
    assert any(e["flagged"] for e in EXPECTED.values()) and any(e["fallback"] for e in EXPECTED.values())


@pytest.mark.parametrize(("name", "rule", "build"), cases(), ids=[f"{n} {r}" for n, r, _ in cases()])
def test_outcome_is_bit_identical_to_the_frozen_one(name: str, rule: str, build: object) -> None:
    got = summary(outcome_of(rule, build()))  # type: ignore[operator]
    assert got == EXPECTED[f"{name} {rule}"]


def _backed(update: list[np.ndarray]) -> list[np.ndarray]:
    """The update as the agent decodes a fetched one: read-only views of one flat vector."""
    return exact.backed(np.concatenate([a.ravel() for a in update]), [a.shape for a in update])


@pytest.mark.parametrize(("name", "rule", "build"), cases(), ids=[f"{n} {r}" for n, r, _ in cases()])
def test_updates_held_in_one_read_only_vector_give_the_same_outcome(
    name: str, rule: str, build: object
) -> None:
    raw = build()  # type: ignore[operator]
    raw["updates"] = {k: _backed(u) for k, u in raw["updates"].items()}
    got = summary(outcome_of(rule, raw))
    assert got == EXPECTED[f"{name} {rule}"]
