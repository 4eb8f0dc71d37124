"""Sorting networks give exactly np.sort's order statistics and rank sums."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fabricml.federation import sortnet

I64 = np.iinfo(np.int64)


@pytest.mark.parametrize("n", range(2, 13))
def test_every_network_sorts_every_zero_one_input(n: int) -> None:
    # The 0-1 principle: a comparator network that sorts all 2**n inputs of zeros and
    # ones sorts every input.
    cases = np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.int64)
    columns = [cases[:, i].copy() for i in range(n)]
    expected = np.sort(cases, axis=1)
    for r in range(n):
        assert np.array_equal(sortnet.order_statistic(columns, r), expected[:, r]), r


@pytest.mark.parametrize("n", [2, 3, 5, 8, 10, 16, 17, 31, 32])
def test_order_statistics_and_rank_sums_equal_sorting(n: int) -> None:
    rng = np.random.default_rng(n)
    length = sortnet.SLICE_VALUES * 2 + 3  # several slices, the last one short
    columns = [rng.integers(-4, 4, length) for _ in range(n)]  # many ties
    columns[0][:4] = [I64.min, I64.max, 0, -1]
    columns[-1][:4] = [I64.max, I64.min, -1, 0]
    ordered = np.sort(np.stack(columns), axis=0)
    for r in {0, n // 2, n - 1}:
        assert np.array_equal(sortnet.order_statistic(columns, r), ordered[r])
    for low, high in {(0, n), (n // 4, n - n // 4), (n // 2 - 1, n // 2 + 1), (0, 1)}:
        assert np.array_equal(sortnet.rank_sum(columns, low, high), ordered[low:high].sum(axis=0))


def test_networks_keep_only_the_comparators_wanted_ranks_need() -> None:
    assert len(sortnet.network(10, tuple(range(10)))) == 32  # Batcher's for 16, pruned
    assert len(sortnet.network(10, (4, 5))) < 32
    assert len(sortnet.network(2, (0,))) == 1


@pytest.mark.parametrize(
    ("count", "rank"), [(1, 0), (sortnet.MAX_INPUTS + 1, 0), (4, 4), (4, -1)]
)  # fmt: skip
def test_bad_arguments_are_refused(count: int, rank: int) -> None:
    with pytest.raises(ValueError, match="order statistics of 2 to"):
        sortnet.order_statistic([np.zeros(3, np.int64)] * count, rank)


def test_inputs_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="one length"):
        sortnet.rank_sum([np.zeros(3, np.int64), np.zeros(4, np.int64)], 0, 1)
