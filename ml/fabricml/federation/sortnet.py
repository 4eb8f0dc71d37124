"""Order statistics of a few updates, coordinate by coordinate, by a sorting network:
each comparator is one np.minimum and one np.maximum over a cache-sized slice of every
input, so no coordinate's values are gathered side by side and sorted one row at a time.

The network is Batcher's odd-even merge sort for the next power of two, without the
comparators that touch the missing inputs (read them as +infinity: such a comparator
changes nothing), and without those whose outputs no wanted rank depends on. A network
sorts any input, so the values at the wanted ranks are exactly np.sort's."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cache

import numpy as np

MAX_INPUTS = 32  # beyond this a network has too many comparators; np.sort it is
SLICE_VALUES = 1 << 13  # coordinates at a time: every input's slice stays in cache


def _batcher(size: int) -> list[tuple[int, int]]:
    """Batcher's odd-even merge sort network for `size` (a power of two) inputs."""
    out: list[tuple[int, int]] = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        out.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return out


@cache
def network(n: int, ranks: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """The comparators, in order, that put the rank-r smallest of n values at position r
    for every r in `ranks`."""
    size = 1 << max(0, (n - 1).bit_length())
    full = [(i, j) for i, j in _batcher(size) if j < n]
    needed, kept = set(ranks), []
    for i, j in reversed(full):  # a comparator matters if a position it writes is needed
        if i in needed or j in needed:
            kept.append((i, j))
            needed |= {i, j}
    return tuple(reversed(kept))


def _check(columns: Sequence[np.ndarray], ranks: Sequence[int]) -> None:
    n = len(columns)
    if not 2 <= n <= MAX_INPUTS or any(not 0 <= r < n for r in ranks):
        raise ValueError(
            f"order statistics of 2 to {MAX_INPUTS} inputs, ranks 0 to n-1; got {n}, {list(ranks)}"
        )
    if any(len(c) != len(columns[0]) for c in columns):
        raise ValueError("order statistics need inputs of one length")


def _sorted_slices(
    columns: Sequence[np.ndarray], ranks: Sequence[int]
) -> Iterator[tuple[int, list[np.ndarray]]]:
    """(start, lanes) for every slice of the coordinates, lanes[r] holding the rank-r
    values for each wanted r (valid until the next slice)."""
    _check(columns, ranks)
    n, length = len(columns), len(columns[0])
    comparators = network(n, tuple(ranks)) if len(ranks) < n else ()  # all ranks: order is moot
    work = [np.empty(min(length, SLICE_VALUES), dtype=np.int64) for _ in range(n + 1)]
    for s in range(0, length, SLICE_VALUES):
        e = min(length, s + SLICE_VALUES)
        lanes = [w[: e - s] for w in work]
        for lane, col in zip(lanes, columns, strict=False):
            np.copyto(lane, col[s:e])
        spare = lanes[n]
        for i, j in comparators:
            np.minimum(lanes[i], lanes[j], out=spare)
            np.maximum(lanes[i], lanes[j], out=lanes[j])
            lanes[i], spare = spare, lanes[i]
        yield s, lanes


def order_statistic(columns: Sequence[np.ndarray], rank: int) -> np.ndarray:
    """The rank-th smallest (from 0) of the columns' values at every coordinate; columns
    are equal-length flat int64 arrays, 2 to MAX_INPUTS of them."""
    out = np.empty(len(columns[0]) if columns else 0, dtype=np.int64)
    for s, lanes in _sorted_slices(columns, [rank]):
        out[s : s + len(lanes[rank])] = lanes[rank]
    return out


def rank_sum(columns: Sequence[np.ndarray], low: int, high: int) -> np.ndarray:
    """The sum of the values of ranks low to high-1 at every coordinate (int64, wrapping
    as np.sum does)."""
    out = np.empty(len(columns[0]) if columns else 0, dtype=np.int64)
    for s, lanes in _sorted_slices(columns, range(low, high)):
        part = out[s : s + len(lanes[0])]
        np.copyto(part, lanes[low])
        for r in range(low + 1, high):
            part += lanes[r]
    return out
