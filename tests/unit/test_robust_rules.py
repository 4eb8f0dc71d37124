"""The robust rules: exact, deterministic, checked against an independent implementation,
and never failing because participants dropped out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fabricml.federation import rulebook
from fabricml.federation.exact import ONE
from fabricml.federation.rulebook import DEFAULT_RULE, aggregate, parse
from fabricml.federation.rules.mixing import buckets

RULES = [
    "fedavg", "median", "trimmed:2", "krum:2:3", "cc", "cc:1", "fltrust", "nnm+median", "nnm+cc",
    "bucket:2+cc", "trust+cc", "trust+nnm+cc", "trust+nnm+cc+normbound", "trust+bucket:2+fltrust",
]  # fmt: skip


def _vectors(n: int = 7, size: int = 300, seed: int = 5) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    mean = rng.normal(0, 1 << 18, size)
    return [np.rint(mean + rng.normal(0, 1 << 19, size)).astype(np.int64) for _ in range(n)]


@pytest.mark.parametrize("rule", RULES)
def test_every_rule_is_deterministic_and_symmetric_under_negation(rule: str) -> None:
    vs, samples = _vectors(), [50, 60, 70, 80, 90, 100, 110]
    ref = vs[0] + vs[1]
    first = aggregate(parse(rule), vs, samples, ref, b"seed")
    again = aggregate(parse(rule), [v.copy() for v in vs], samples, ref.copy(), b"seed")
    assert first.vector.tolist() == again.vector.tolist() and first.influence == again.influence
    negated = aggregate(parse(rule), [-v for v in vs], samples, -ref, b"seed")
    assert negated.vector.tolist() == (-first.vector).tolist(), "rounding must not favour a sign"
    assert len(first.influence) == len(vs) and all(0 <= i <= ONE for i in first.influence)


def test_the_grammar_names_what_is_allowed() -> None:
    assert parse("trust+nnm+cc:2+normbound") == rulebook.Rule("nnm", 0, "cc", (2,), True, True)
    assert parse("bucket:3+krum:1:2").bucket_size == 3
    parse(DEFAULT_RULE)
    for bad in ("mean", "trimmed:x", "krum:1", "nnm+nnm+cc", "cc+trust", "median+normbound+x", "cc:123"):
        with pytest.raises(ValueError, match="allowed"):
            parse(bad)


@pytest.mark.parametrize("rule", RULES)
def test_few_participants_degrade_to_the_documented_fallback(rule: str) -> None:
    for n in (1, 2, 3):
        vs = _vectors(n)
        out = aggregate(parse(rule), vs, [10] * n, None, b"s")
        assert out.vector.shape == vs[0].shape
    one = _vectors(1)
    assert aggregate(parse("trimmed:3"), one, [1], None, b"").vector.tolist() == one[0].tolist()


def test_fedavg_bounds_self_reported_sample_counts() -> None:
    honest = [np.full(4, 100, dtype=np.int64) for _ in range(4)]
    liar = np.full(4, -(10**6), dtype=np.int64)
    out = aggregate(parse("fedavg"), [*honest, liar], [100, 120, 90, 110, 2**62], None, b"")
    # Capped at the median claim, the liar weighs no more than an honest participant.
    assert out.vector.tolist() == [round((100 * (100 + 110 + 90 + 110) - 10**6 * 110) / 520)] * 4


def test_buckets_are_a_permutation_fixed_by_the_seed() -> None:
    a, b = buckets(10, 2, b"x"), buckets(10, 2, b"y")
    assert sorted(i for g in a for i in g) == list(range(10)) and all(len(g) == 2 for g in a)
    assert a == buckets(10, 2, b"x") and a != b


# ---- an independent implementation of the default rule, in plain Python integers ------


def _round(num: int, den: int) -> int:
    q = (abs(num) + den // 2) // den
    return q if num >= 0 else -q


def _dot(a: list[int], b: list[int]) -> int:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _lower_median(xs: list[int]) -> int:
    return sorted(xs)[(len(xs) - 1) // 2]


def _mean(vs: list[list[int]]) -> list[int]:
    return [_round(sum(col), len(vs)) for col in zip(*vs, strict=True)]


def _mix(vs: list[list[int]]) -> list[list[int]]:
    """Nearest-neighbour mixing: each replaced by the mean of its n - (n - 1) // 3 nearest."""
    n = len(vs)
    k = n - (n - 1) // 3

    def sq(a: list[int], b: list[int]) -> int:
        return sum((x - y) * (x - y) for x, y in zip(a, b, strict=True))

    def closest(i: int) -> list[int]:
        return sorted(range(n), key=lambda j: (sq(vs[i], vs[j]), j != i, j))[:k]

    return [_mean([vs[j] for j in closest(i)]) for i in range(n)]


def _reference_trust_cc(vs: list[list[int]], ref: list[int], mixing: bool) -> list[int]:
    kept = [v for v in vs if ONE * _dot(v, ref) // math.isqrt(_dot(v, v) * _dot(ref, ref)) > 0] or vs
    mixed = _mix(kept) if mixing else kept
    v = list(ref)
    for _ in range(3):
        diffs = [[x - c for x, c in zip(m, v, strict=True)] for m in mixed]
        norms = [math.isqrt(_dot(d, d)) for d in diffs]
        radius = _lower_median(norms)
        clipped = []
        for d, nd in zip(diffs, norms, strict=True):
            f = ONE if nd <= radius else (radius << 24) // nd
            clipped.append([_round(x * f, ONE) for x in d])
        v = [c + s for c, s in zip(v, _mean(clipped), strict=True)]
    return v


@pytest.mark.parametrize("rule", [DEFAULT_RULE, "trust+nnm+cc"])
def test_the_default_rule_agrees_with_an_independent_implementation_on_a_test_vector(rule: str) -> None:
    assert DEFAULT_RULE == "trust+cc"
    vs = _vectors(n=8, size=40, seed=11)
    vs[6], vs[7] = -3 * vs[0], vs[1] * 0 - (1 << 20)  # two that point away or nowhere
    ref = _vectors(1, 40, 12)[0] // 4 + vs[2]
    ours = aggregate(parse(rule), vs, [1] * 8, ref, b"").vector.tolist()
    theirs = _reference_trust_cc([v.tolist() for v in vs], ref.tolist(), mixing="nnm" in rule)
    assert ours == theirs
    assert ours != aggregate(parse("cc"), vs, [1] * 8, ref, b"").vector.tolist(), "the gate matters here"


def test_the_contract_accepts_exactly_the_rules_the_rulebook_parses() -> None:
    import re
    from pathlib import Path

    source = (Path(__file__).parents[2] / "chaincode" / "ledgerutil" / "identifiers.go").read_text()
    found = re.search(r"RulePattern = `([^`]+)`", source)
    assert found, "the Federation contract's rule pattern moved"
    contract = re.compile(found[1])  # RE2 syntax this simple reads the same in Python
    good = [*RULES, DEFAULT_RULE, "krum:1:2+normbound", "bucket:3+fedavg", "trust+fltrust", "cc:12"]
    bad = ["mean", "trimmed:x", "nnm+nnm+cc", "cc+trust", "cc:123", "trust+trust+cc", "bucket+cc", ""]
    names = good + bad
    for name in names:
        try:
            parse(name)
            ours = True
        except ValueError:
            ours = False
        assert ours == bool(contract.match(name)), name
