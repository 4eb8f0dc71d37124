"""Exact integer arithmetic: the products and norms the evidence rests on equal Python's
own integers, signs survive small values, and rounding is symmetric."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fabricml.federation import exact
from fabricml.federation.fixedpoint import BOUND, bound_violation


def _ints(v: np.ndarray) -> list[int]:
    return [int(x) for x in v]


def test_inner_products_equal_python_integers_even_at_the_bound() -> None:
    rng = np.random.default_rng(3)
    for high in (3, 1 << 20, BOUND, 2 * BOUND):  # differences of updates reach 2 * BOUND
        a = rng.integers(-high, high + 1, 5000, dtype=np.int64)
        b = rng.integers(-high, high + 1, 5000, dtype=np.int64)
        assert exact.dot(a, b) == sum(x * y for x, y in zip(_ints(a), _ints(b), strict=True))
        assert exact.norm(a) == math.isqrt(sum(x * x for x in _ints(a)))
    with pytest.raises(ValueError, match="2\\*\\*36"):
        exact.dot(np.array([1 << 40]), np.array([1]))


def test_small_coordinates_keep_their_sign() -> None:
    # The old evidence dropped 16 bits rounding down: -1 became -1 and 1 became 0, so an
    # update pointing against the reference could score a positive inner product.
    honest = np.array([3, 1, 2, 1] * 100, dtype=np.int64)
    against = -honest
    assert exact.dot(honest, against) < 0
    assert exact.cosine(honest, against, 1000) == -1000
    assert exact.cosine(honest, np.zeros_like(honest), 1000) == 0


def test_rounding_is_to_nearest_and_symmetric() -> None:
    num = np.array([5, -5, 4, -4, 6, -6, 0], dtype=np.int64)
    assert exact.div_nearest(num, 2).tolist() == [3, -3, 2, -2, 3, -3, 0]
    assert exact.div_nearest(num, 4).tolist() == [1, -1, 1, -1, 2, -2, 0]
    v = np.array([7, -7, 1, -1], dtype=np.int64)
    assert exact.scale(v, exact.ONE // 2).tolist() == [4, -4, 1, -1]


def test_clipping_and_weighted_means_are_exact_and_bounded() -> None:
    v = np.array([3 << 20, 4 << 20], dtype=np.int64)
    clipped, factor = exact.clip(v, 5 << 19)
    assert factor == exact.ONE // 2 and clipped.tolist() == [3 << 19, 4 << 19]
    same, one = exact.clip(v, 10 << 20)
    assert one == exact.ONE and same.tolist() == v.tolist()
    big = [np.full(3, BOUND, dtype=np.int64), np.full(3, -BOUND, dtype=np.int64)]
    # Weights far beyond the int64-safe total are shifted down, not overflowed.
    assert exact.weighted_mean(big, [1 << 40, 1 << 40]).tolist() == [0, 0, 0]
    assert exact.weighted_mean(big, [3, 1]).tolist() == [BOUND // 2] * 3
    with pytest.raises(ValueError, match="weight"):
        exact.weighted_mean(big, [0, 0])


def test_values_beyond_the_encoding_bound_are_a_provable_violation() -> None:
    assert bound_violation([np.array([BOUND, -BOUND], dtype=np.int64)]) is None
    assert "beyond the bound" in str(bound_violation([np.array([BOUND + 1], dtype=np.int64)]))
    # abs(-2**63) wraps around in int64: the check must not be fooled by it.
    assert bound_violation([np.array([np.iinfo(np.int64).min], dtype=np.int64)]) is not None
    assert "not int64" in str(bound_violation([np.array([1.0])]))


def test_a_backed_update_is_flattened_without_a_copy_and_cannot_be_written() -> None:
    flat = np.arange(10, dtype=np.int64)
    update = exact.backed(flat, [(2, 3), (4,)])
    assert [a.shape for a in update] == [(2, 3), (4,)] and update[1].tolist() == [6, 7, 8, 9]
    whole = exact.flatten(update)
    assert whole is flat and not whole.flags.writeable
    with pytest.raises(ValueError):
        update[0][0, 0] = 1
    with pytest.raises(ValueError, match="do not fill"):
        exact.backed(np.zeros(5, dtype=np.int64), [(2, 3)])


def test_other_updates_are_flattened_into_a_copy() -> None:
    writable = np.arange(6, dtype=np.int64)
    views = [writable[:2], writable[2:]]
    separate = [np.arange(2, dtype=np.int64), np.arange(4, dtype=np.int64)]
    read_only = exact.backed(np.arange(6, dtype=np.int64), [(3,), (3,)])
    for update in (views, separate, read_only[::-1], read_only[:1]):
        whole = exact.flatten(update)
        assert whole.tolist() == np.concatenate(update).tolist()
        assert not any(np.shares_memory(whole, a) for a in update)
