"""exact.dot's int64 fast path and its limb path give the exact integer on both sides of
the bound that chooses between them, at the worst case (every product at its maximum, so
partial sums come within one product of 2**63), and equal the earlier limb-only algorithm."""

from __future__ import annotations

import numpy as np
import pytest

from fabricml.federation import exact


def _before(a: np.ndarray, b: np.ndarray) -> int:
    """The implementation before the int64 fast path: 18-bit limbs over chunks of 2**22."""
    total = 0
    for start in range(0, a.size, 1 << 22):
        x, y = a[start : start + (1 << 22)], b[start : start + (1 << 22)]
        xh, xl = np.right_shift(x, 18), np.bitwise_and(x, (1 << 18) - 1)
        yh, yl = np.right_shift(y, 18), np.bitwise_and(y, (1 << 18) - 1)
        middle = int(np.dot(xh, yl)) + int(np.dot(xl, yh))
        total += (int(np.dot(xh, yh)) << 36) + (middle << 18) + int(np.dot(xl, yl))
    return total


def _python(a: np.ndarray, b: np.ndarray) -> int:
    return sum(int(x) * int(y) for x, y in zip(a.tolist(), b.tolist(), strict=True))


@pytest.mark.parametrize(
    "m", [1, 3, (1 << 24) - 1, 1 << 24, 1 << 25, 3 << 24, (1 << 26) + 5, exact.MAX_ABS - 1]
)
def test_the_worst_case_around_each_block_size_is_exact(m: int) -> None:
    block = exact.INT64_MAX // (m * m)
    size = min(3 * block + 7, 200_003)  # several blocks, the last one short
    for sign in (1, -1):
        a = np.full(size, m, dtype=np.int64)
        b = np.full(size, sign * m, dtype=np.int64)
        assert exact.dot(a, b) == sign * size * m * m == _before(a, b)
        assert exact.sum_squares(b) == size * m * m
        assert exact.dot(-a, b) == -sign * size * m * m


def test_random_vectors_of_every_magnitude_equal_python_integers() -> None:
    rng = np.random.default_rng(14)
    for high in (1, 1 << 12, 1 << 20, 1 << 24, 1 << 27, 1 << 33, exact.MAX_ABS - 1):
        for size in (0, 1, 4095, 4097, 70_001):
            a = rng.integers(-high, high + 1, size, dtype=np.int64)
            b = rng.integers(-high, high + 1, size, dtype=np.int64)
            mixed = np.concatenate([a[: size // 2], b[size // 2 :] >> 20])  # one big value decides the path
            for x, y in ((a, b), (a, a), (mixed, b), (b, mixed)):
                assert exact.dot(x, y) == _python(x, y) == _before(x, y)
            assert exact.norm(a) ** 2 <= exact.sum_squares(a) == _python(a, a)
            if high < exact.MAX_ABS // 2:  # differences stay below 2**36
                assert exact.squared_distance(a, b) == _python(a - b, a - b)  # formed block by block


def test_values_at_or_beyond_2_to_the_36_are_refused_on_every_path() -> None:
    far = np.full(70_001, exact.MAX_ABS - 1, dtype=np.int64)
    with pytest.raises(ValueError, match="2\\*\\*36"):
        exact.squared_distance(far, -far)
    for bad in (exact.MAX_ABS, -exact.MAX_ABS, np.iinfo(np.int64).min, np.iinfo(np.int64).max):
        v = np.array([0, 1, bad], dtype=np.int64)
        with pytest.raises(ValueError, match="2\\*\\*36"):
            exact.dot(v, np.ones(3, dtype=np.int64))
        with pytest.raises(ValueError, match="2\\*\\*36"):
            exact.sum_squares(v)


@pytest.mark.parametrize("den", [1, 2, 3, 4, 1 << 23, exact.ONE, (1 << 24) + 1, (1 << 40), (1 << 62)])
def test_division_by_a_power_of_two_rounds_exactly_as_division(den: int) -> None:
    """div_nearest shifts for a power of two: the same values as the floor division it
    did before, at every magnitude, halves and int64's extremes included (where |num| +
    den // 2 wraps, alike), and the rounded rational where nothing wraps."""
    rng = np.random.default_rng(den % 1009)
    edges = [0, 1, -1, den // 2, -(den // 2), den // 2 + 1, 3 * den // 2, -(3 * den // 2), 2**62, -(2**62)]
    extremes = [np.iinfo(np.int64).max, np.iinfo(np.int64).min, np.iinfo(np.int64).min + 1]
    num = np.concatenate([np.array(edges + extremes, dtype=np.int64),
                          rng.integers(-(2**62), 2**62, 5000, dtype=np.int64)])  # fmt: skip
    before = np.abs(num) + np.int64(den // 2)
    before //= np.int64(den)
    np.negative(before, out=before, where=num < 0)
    got = exact.div_nearest(num, den)
    assert got.tolist() == before.tolist()
    for x, q in zip(num.tolist(), got.tolist(), strict=True):
        if abs(x) + den // 2 < 2**63:
            assert q == (1 if x >= 0 else -1) * ((abs(x) + den // 2) // den)
