"""gram.Gram gives exactly what fabricml.federation.exact gives, on its float64 path, its
int64 path and its limb path, and refuses what exact refuses with the same error."""

from __future__ import annotations

import numpy as np
import pytest

from fabricml.federation import exact, gram
from fabricml.federation.gram import Gram


def _vectors(high: int, size: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-high, high + 1, size, dtype=np.int64) for _ in range(4)]


HIGHS = [0, 1, 1 << 12, 1 << 20, 1 << 22, 1 << 24, 1 << 27, 1 << 33, exact.MAX_ABS - 1]


@pytest.mark.parametrize("high", HIGHS)
@pytest.mark.parametrize("size", [0, 1, 4095, gram.BLOCK + 7, 3 * gram.BLOCK])
def test_every_product_norm_cosine_and_distance_equals_exact(high: int, size: int) -> None:
    vs = _vectors(high, size, high % 97 + size)
    vs[1][: size // 2] >>= 20  # small and large values in one vector: the block decides the path
    g = Gram(vs)
    for a in vs:
        assert g.sum_squares(a) == exact.sum_squares(a)
        assert g.norm(a) == exact.norm(a)
        for b in vs:
            assert g.dot(a, b) == exact.dot(a, b)
            assert g.cosine(a, b, exact.ONE) == exact.cosine(a, b, exact.ONE)
            if high < exact.MAX_ABS // 2:
                assert g.squared_distance(a, b) == exact.squared_distance(a, b)


def test_the_worst_case_of_the_float_path_is_exact() -> None:
    """Every product at the largest magnitude a float block allows: sums reach 2**53."""
    rows = 1 << 11
    m = int(np.sqrt(gram.EXACT_FLOAT // rows))  # m*m*rows <= 2**53
    assert gram._float_rows(m, gram.BLOCK) == rows
    a = np.full(gram.BLOCK, m, dtype=np.int64)
    b = np.full(gram.BLOCK, -m, dtype=np.int64)
    g = Gram([a, b])
    assert g.dot(a, b) == -gram.BLOCK * m * m == exact.dot(a, b)
    assert g.sum_squares(a) == gram.BLOCK * m * m
    odd = np.full(gram.BLOCK, m + 1, dtype=np.int64)  # one more: the int64 path, still exact
    assert Gram([odd, a]).dot(odd, a) == gram.BLOCK * (m + 1) * m


def test_only_the_pairs_asked_for_are_computed_and_the_rest_falls_back() -> None:
    a, b, c, _ = _vectors(1 << 20, 5000, 1)
    g = Gram([a, b, c], [(0, 1)])
    assert set(g._sums) == {(0, 0), (1, 1), (2, 2), (0, 1)}
    assert g.dot(b, c) == exact.dot(b, c)  # not computed: exact's answer
    other = a.copy()  # equal values, another vector: not in the Gram, answered by exact
    assert g.dot(other, b) == exact.dot(a, b)


def test_a_vector_given_twice_is_one_and_pairs_name_positions() -> None:
    a, b, _, _ = _vectors(1 << 20, 5000, 2)
    g = Gram([a, b, a], [(2, 1)])
    assert len(g.vectors) == 2 and g._sums[0, 1] == exact.dot(a, b)


def test_values_of_2_to_the_36_are_refused_as_exact_refuses_them() -> None:
    far = np.full(70_001, exact.MAX_ABS, dtype=np.int64)
    near = np.full(70_001, exact.MAX_ABS - 1, dtype=np.int64)
    g = Gram([far, near])
    with pytest.raises(ValueError, match="2\\*\\*36"):
        g.dot(far, near)
    with pytest.raises(ValueError, match="2\\*\\*36"):
        g.norm(far)
    with pytest.raises(ValueError, match="2\\*\\*36"):
        g.cosine(near, far, exact.ONE)
    assert g.sum_squares(near) == exact.sum_squares(near)
    with pytest.raises(ValueError, match="2\\*\\*36"):  # the difference would reach 2**36
        g.squared_distance(near, -near)
    minimum = np.full(10, np.iinfo(np.int64).min, dtype=np.int64)  # abs would wrap
    with pytest.raises(ValueError, match="2\\*\\*36"):
        Gram([minimum]).sum_squares(minimum)


def test_vectors_of_other_sizes_or_types_are_answered_by_exact() -> None:
    a = np.arange(10, dtype=np.int64)
    short = np.arange(9, dtype=np.int64)
    g = Gram([a, short, a.astype(np.int32)])
    assert g.sum_squares(a) == exact.sum_squares(a) and g.sum_squares(short) == exact.sum_squares(short)
    with pytest.raises(ValueError, match="no inner product"):
        g.dot(a, short)
