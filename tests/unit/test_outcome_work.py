"""Less work per outcome, the same bits: the shortcuts give the same integers as the
formulas they replace (exact.div_nearest's one floor division and the weighted means
through it, training.next_global through float32) at random values and at every boundary
of their proofs; the merge's and the step's products are reused by the outcome's Gram;
the previous step is formed only when something reads it; no check is weaker."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fabricml.federation import exact, fixedpoint, gram, reference, training, votes
from fabricml.federation.aggregation import WeightedMean
from fabricml.federation.evidence import History
from fabricml.federation.fixedpoint import MAX_TOTAL_WEIGHT, Update
from fabricml.federation.gram import Gram
from fabricml.federation.outcome import RoundInputs, compute_outcome

INT64 = np.iinfo(np.int64)


def _rounded(a: int, den: int) -> int:
    """a / den, halves away from zero, in Python integers."""
    q = (abs(a) + den // 2) // den
    return q if a >= 0 else -q


def _adversarial(den: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Halves, their neighbours and values up to the floor division's limit; and values
    past it (where |a| + den // 2 wraps)."""
    h = den // 2
    limit = int(INT64.max) - h
    k = rng.integers(0, max(1, limit // den), 200).tolist()
    halves = [q * den + h + d for q in k for d in (-1, 0, 1)] + [q * den + d for q in k for d in (-1, 0, 1)]
    edges = [0, 1, -1, h, h + 1, den - 1, den, limit, limit - 1, limit - h, 2**52, 2**53, 2**62]
    inside = [v for v in halves + edges if abs(v) <= limit]
    past = [v for v in (limit + 1, limit + h, int(INT64.max)) if v <= INT64.max]
    return (
        np.array(inside + [-v for v in inside], dtype=np.int64),
        np.array(past + [-v for v in past] + [int(INT64.min)], dtype=np.int64),
    )


DENS = [2, 3, 4, 5, 6, 7, 10, 300, 901, 1 << 23, exact.ONE, (1 << 24) + 1, 3 << 25, MAX_TOTAL_WEIGHT - 1]
DENS += [
    MAX_TOTAL_WEIGHT,
    MAX_TOTAL_WEIGHT + 1,
    (1 << 51) + 3,
    1 << 52,
    (1 << 52) + 1,
    1 << 62,
    int(INT64.max),
]


@pytest.mark.parametrize("den", DENS)
def test_div_nearest_by_one_floor_division_equals_int64(monkeypatch: pytest.MonkeyPatch, den: int) -> None:
    """Values inside the limit take the floor division alone (no slice falls back) and equal
    both _div_int and the rounded rational; values past it wrap as _div_int does."""
    rng = np.random.default_rng(den % 10007)
    inside, past = _adversarial(den, rng)
    random = rng.integers(INT64.min, INT64.max, 20_000, dtype=np.int64, endpoint=True) >> rng.integers(
        0, 63, 20_000
    )
    random = random[np.abs(random.astype(np.float64)) < float(INT64.max - den // 2) / 2]
    wrapped = [exact._div_int(x, den) for x in (inside, random, np.sort(random), past)]
    real, fallbacks = exact._div_int, []

    def counted(num: np.ndarray, d: int, out: np.ndarray | None = None) -> np.ndarray:
        fallbacks.append(num.size)
        return real(num, d, out)

    monkeypatch.setattr(exact, "_div_int", counted)
    for num, want in zip((inside, random, np.sort(random), past), wrapped, strict=True):
        assert exact.div_nearest(num, den).tolist() == want.tolist()
        into = num.copy()
        assert exact.div_nearest(into, den, out=into) is into and into.tolist() == want.tolist()
    assert fallbacks == [past.size, past.size] or den > INT64.max // 2
    monkeypatch.undo()
    assert exact.div_nearest(inside, den).tolist() == [_rounded(a, den) for a in inside.tolist()]


def test_div_nearest_slices_past_the_limit_wrap_alike() -> None:
    """A slice holding a value past the limit takes the wrapping formula, its neighbours
    the floor division: both as _div_int, wrapping extremes included."""
    rng = np.random.default_rng(7)
    num = rng.integers(-(2**40), 2**40, 3 * exact.DIV_SLICE + 5, dtype=np.int64)
    num[exact.DIV_SLICE + 9] = INT64.min
    num[-1] = INT64.max
    for den in (3, 1000003):
        assert exact.div_nearest(num, den).tolist() == exact._div_int(num, den).tolist()
    strided = num[::2]
    assert exact.div_nearest(strided, 7).tolist() == exact._div_int(strided, 7).tolist()


def test_div_nearest_still_refuses_a_non_positive_divisor() -> None:
    for den in (0, -3):
        with pytest.raises(ValueError, match="division by"):
            exact.div_nearest(np.arange(4, dtype=np.int64), den)


def test_weighted_means_equal_the_int64_division() -> None:
    """exact.weighted_mean and aggregation.WeightedMean at values near the fixed-point bound
    and weights up to MAX_TOTAL_WEIGHT: the same as summing in Python and dividing."""
    rng = np.random.default_rng(11)
    bound = 1 << 32
    vectors = [rng.integers(-bound, bound, 2 * exact.MEAN_SLICE + 3, dtype=np.int64) for _ in range(3)]
    vectors[0][:10] = bound - 1
    vectors[1][:10] = bound - 1
    vectors[2][:10] = -(bound - 1)
    for weights in ([1, 1, 1], [300, 300, 299], [1, 2, 1 << 20], [MAX_TOTAL_WEIGHT // 3] * 3):
        ws = list(weights)
        while sum(ws) > exact.MAX_WEIGHT_TOTAL:
            ws = [w >> 1 for w in ws]
        sums = [sum(w * int(v[i]) for v, w in zip(vectors, ws, strict=True)) for i in range(len(vectors[0]))]
        want = [_rounded(s, sum(ws)) for s in sums]
        assert exact.weighted_mean(vectors, weights).tolist() == want
    for weights in ([1, 1, 1], [300, 7, 299], [3, 3, 5]):
        total, size = sum(weights), len(vectors[0])
        sums = [sum(w * int(v[i]) for v, w in zip(vectors, weights, strict=True)) for i in range(size)]
        got = WeightedMean(weights).into(vectors, np.empty(len(vectors[0]), dtype=np.int64))
        assert got.tolist() == [_rounded(s, total) for s in sums]


def test_weighted_mean_still_refuses_a_value_past_the_bound_in_any_slice() -> None:
    """The bound check moved into the slices: a value of 2**36 (or int64's minimum) in the
    last slice of one input is refused as before, by the same error."""
    rng = np.random.default_rng(31)
    for bad in (exact.MAX_ABS, -exact.MAX_ABS, int(INT64.min), int(INT64.max)):
        vectors = [
            rng.integers(-(1 << 20), 1 << 20, 2 * exact.MEAN_SLICE + 3, dtype=np.int64) for _ in range(3)
        ]
        vectors[2][-1] = bad
        with pytest.raises(ValueError, match="2\\*\\*36"):
            exact.weighted_mean(vectors, [1, 2, 3])


def _next_global_cases(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Global values and steps whose sums sit at the clip, just inside and outside it, at
    float32 rounding ties (odd multiples of half an ulp) at 2**24..2**33, and at random."""
    bound = int(fixedpoint.CLIP) << fixedpoint.SCALE_BITS
    sums = [0, 1, -1, bound, bound - 1, bound + 1, bound - 256, bound - 255, bound + 2**40, 2**53 + 1, 2**60]
    for e in range(24, 34):
        ulp = 1 << (e - 23)
        for k in rng.integers(1 << 23, 1 << 24, 30).tolist():
            base = k * ulp
            sums += [base + ulp // 2, base + ulp // 2 - 1, base + ulp // 2 + 1, base, base + ulp - 1]
    sums += [-s for s in sums]
    total = np.array(sums, dtype=np.int64)
    g = rng.integers(-bound, bound + 1, total.size, dtype=np.int64)
    a = total - g
    g = np.concatenate([g, rng.integers(-bound, bound + 1, 50_000, dtype=np.int64), [bound, -bound]])
    a = np.concatenate([a, rng.integers(-(2**34), 2**34, 50_000, dtype=np.int64), [bound, -bound]])
    return g, a


def test_next_global_equals_the_formula_through_float32() -> None:
    rng = np.random.default_rng(3)
    g, a = _next_global_cases(rng)
    shapes = [(g.size - 7,), (7,)]  # two tensors, one shorter than a chunk
    gs, as_ = exact.views(g, [np.empty(s) for s in shapes]), exact.views(a, [np.empty(s) for s in shapes])
    got, want = training.next_global(gs, as_), training._next_global_before(gs, as_)
    assert [x.tolist() for x in got] == [x.tolist() for x in want]
    assert [x.dtype for x in got] == [np.dtype(np.int64)] * 2
    again = fixedpoint.encode(training.global_parameters(got))  # the registry's round trip
    assert [x.tolist() for x in again] == [x.tolist() for x in got]


def test_gram_with_known_products_equals_a_fresh_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The outcome's Gram taking the merge's products gives exactly exact's answers, and
    computes only the products the earlier Gram lacks."""
    rng = np.random.default_rng(5)
    us = [rng.integers(-(1 << 21), 1 << 21, 3 * gram.BLOCK + 11, dtype=np.int64) for _ in range(3)]
    us[2][:100] = exact.MAX_ABS - 1  # a vector past the int64 bound in one block: limbs there
    step = exact.weighted_mean(us, [1, 1, 1])
    first = Gram(us)
    pairs: list[list[tuple[int, int]]] = []
    real = Gram._pass

    def spy(self: Gram, size: int, todo: list[tuple[int, int]]) -> None:
        pairs.append(list(todo))
        real(self, size, todo)

    monkeypatch.setattr(Gram, "_pass", spy)
    reused = Gram([step, *us], [(0, i) for i in range(1, 4)], first)
    monkeypatch.undo()
    assert pairs == [[(0, 0), (0, 1), (0, 2), (0, 3)]]
    for a in [step, *us]:
        assert reused.sum_squares(a) == exact.sum_squares(a)
        assert reused.dot(step, a) == exact.dot(step, a)
    for a in us:
        for b in us:
            if a is not b:
                assert reused.dot(a, b) == exact.dot(a, b)  # from `first`, not computed again
    assert reused.magnitudes[1:] == first.magnitudes


def test_many_vectors_take_the_float_path_exactly() -> None:
    """Eight vectors (36 products): the float64 matrix product, at its worst case, equals
    exact's integers."""
    rows = 1 << 11
    m = int(np.sqrt(gram.EXACT_FLOAT // rows))
    rng = np.random.default_rng(9)
    vs = [np.where(rng.random(gram.BLOCK) < 0.5, m, -m).astype(np.int64) for _ in range(8)]
    vs[0][:] = m
    g = Gram(vs)
    for a in vs:
        for b in vs:
            assert g.dot(a, b) == exact.dot(a, b)


def test_merge_with_products_merges_alike() -> None:
    """merge_near_duplicates with the units' Gram merges exactly as with exact distances."""
    rng = np.random.default_rng(13)
    base = rng.integers(-(1 << 20), 1 << 20, 5000, dtype=np.int64)
    vectors = {
        f"Org{i}MSP/t": base + rng.integers(-(1 << 18), 1 << 18, 5000, dtype=np.int64) for i in range(4)
    }
    vectors["Org8MSP/t"] = vectors["Org1MSP/t"] + 1  # a near-copy
    units = votes.by_org(vectors, {})
    merged, products = votes.voting_units_and_products(vectors, {})
    assert [u.members for u in merged] == [u.members for u in votes.voting_units(vectors, {})]
    assert sorted(len(u.members) for u in merged) == [1, 1, 1, 2]
    for u in units:
        for w in units:
            assert products.squared_distance(u.vector, w.vector) == exact.squared_distance(u.vector, w.vector)


def _round_inputs(rule: str, identities: int = 1) -> RoundInputs:
    rng = np.random.default_rng(17)
    shapes = [(30, 40), (40,)]
    glob = [rng.integers(-(1 << 22), 1 << 22, s, dtype=np.int64) for s in shapes]
    previous = [g - rng.integers(0, 1 << 16, g.shape, dtype=np.int64) for g in glob]
    updates = {
        f"Org{o}MSP/t{i}": [rng.integers(-(1 << 18), 1 << 18, s, dtype=np.int64) for s in shapes]
        for o in range(1, 4)
        for i in range(identities)
    }
    return RoundInputs(2, rule, glob, updates, {k: 10 for k in updates}, {}, History(), previous)


@pytest.mark.parametrize(("rule", "identities", "made"), [("fedavg", 1, 0), ("fedavg", 2, 1), ("cc", 1, 1)])
def test_the_previous_step_is_made_only_when_read(
    monkeypatch: pytest.MonkeyPatch, rule: str, identities: int, made: int
) -> None:
    """Plain FedAvg over one identity per org never forms the previous step; a screening
    of an org's identities or a rule centred on the reference forms it once; the outcome
    is the one the eager reference gives."""
    inputs = _round_inputs(rule, identities)
    calls: list[int] = []
    real = reference.previous_step

    def counted(g: Update, p: Update | None) -> np.ndarray | None:
        calls.append(1)
        return real(g, p)

    monkeypatch.setattr(reference, "previous_step", counted)
    lazy = compute_outcome(inputs)
    assert len(calls) == made and lazy.reference == "previous step"
    monkeypatch.undo()
    eager, source = reference.reference_direction(inputs.global_model, inputs.previous_global, {})
    assert source == "previous step" and eager is not None
    units = votes.voting_units(
        {k: exact.flatten(u) for k, u in inputs.updates.items()}, inputs.samples, eager
    )
    lazy_units = votes.voting_units(
        {k: exact.flatten(u) for k, u in inputs.updates.items()}, inputs.samples, lambda: eager
    )
    assert [(u.members, u.vector.tolist()) for u in units] == [
        (u.members, u.vector.tolist()) for u in lazy_units
    ]
    unmoved = dataclasses.replace(inputs, previous_global=inputs.global_model)
    assert compute_outcome(unmoved).reference == ""


def test_the_step_feed_holds_exact_products_of_the_mean_it_was_shown() -> None:
    """A weighted mean shows its slices to a StepFeed: the feed's Gram holds exactly
    exact's products of the step with each unit and itself (values near 2**35 too, where
    the limb path runs), and outcome_gram then computes nothing more."""
    rng = np.random.default_rng(23)
    size = 3 * exact.MEAN_SLICE + 17
    units = [rng.integers(-(1 << 21), 1 << 21, size, dtype=np.int64) for _ in range(3)]
    units[1][: exact.MEAN_SLICE] = rng.integers(-(1 << 35), 1 << 35, exact.MEAN_SLICE)
    products = Gram(units)
    feed = gram.StepFeed(units, products)
    step = exact.weighted_mean(units, [3, 1, 2], feed)
    fed = feed.gram(step)
    assert fed is not None
    for u in [step, *units]:
        assert fed.dot(step, u) == exact.dot(step, u) and fed.sum_squares(u) == exact.sum_squares(u)
    assert fed.magnitudes == [max(int(step.max()), -int(step.min())), *products.magnitudes]


def test_the_step_feed_answers_none_unless_shown_exactly_the_step() -> None:
    """Another vector, slices out of order, part of the step, or no slices at all: None
    (outcome_gram then computes the products itself)."""
    rng = np.random.default_rng(29)
    units = [rng.integers(-(1 << 20), 1 << 20, 2 * exact.MEAN_SLICE + 5, dtype=np.int64) for _ in range(2)]
    products = Gram(units)
    feed = gram.StepFeed(units, products)
    step = exact.weighted_mean(units, [1, 1], feed)
    assert feed.gram(step.copy()) is None  # same values, another array
    assert gram.StepFeed(units, products).gram(step) is None  # shown nothing
    backwards = gram.StepFeed(units, products)
    backwards(exact.MEAN_SLICE, step[exact.MEAN_SLICE : 2 * exact.MEAN_SLICE])
    backwards(0, step[: exact.MEAN_SLICE])
    assert backwards.gram(step) is None
    partial = gram.StepFeed(units, products)
    partial(0, step[: exact.MEAN_SLICE])
    assert partial.gram(step) is None
    assert gram.StepFeed(units, Gram([])).gram(step) is None  # no known bounds for the units


@pytest.mark.parametrize(
    "rule", ["fedavg", "median", "trust+cc", "trust+fedavg", "krum:0:2+normbound", "bucket:2+fedavg"]
)
def test_outcomes_with_and_without_the_feed_are_identical(monkeypatch: pytest.MonkeyPatch, rule: str) -> None:
    """compute_outcome with the feed equals compute_outcome whose feed never completes."""
    inputs = _round_inputs(rule)
    made: list[bool] = []
    real = gram.StepFeed.gram

    def seen(self: gram.StepFeed, step: np.ndarray) -> Gram | None:
        out = real(self, step)
        made.append(out is not None)
        return out

    monkeypatch.setattr(gram.StepFeed, "gram", seen)
    with_feed = compute_outcome(inputs)
    assert made == [rule.rpartition("+")[2] not in ("median", "cc")]  # the rules ending in a mean
    monkeypatch.setattr(gram.StepFeed, "gram", lambda self, step: None)
    without = compute_outcome(inputs)
    a, b = with_feed.assessment, without.assessment
    assert with_feed.digest == without.digest
    assert (a.scores, a.norms, a.distances, a.weights, a.reasons) == (
        b.scores,
        b.norms,
        b.distances,
        b.weights,
        b.reasons,
    )
