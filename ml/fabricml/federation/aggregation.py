"""The classic aggregation rules over fixed-point updates, exact in integer arithmetic:
FedAvg, coordinate median, trimmed mean, Multi-Krum and norm bounding.

Framework-free: lists of int64 NumPy arrays in, lists out. Every rule gives the same
bytes on any machine. Distances and norms are exact integers (fabricml.federation.exact);
divisions round to nearest, halves away from zero."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import exact, sortnet
from .fixedpoint import MAX_TOTAL_WEIGHT, Update


def _check(updates: Sequence[Update]) -> None:
    if not updates:
        raise ValueError("aggregation needs at least one update")
    shapes = [tuple(a.shape) for a in updates[0]]
    for i, u in enumerate(updates):
        if [tuple(a.shape) for a in u] != shapes:
            raise ValueError(f"update {i} has shapes {[a.shape for a in u]}, expected {shapes}")


SLICE_VALUES = 1 << 15  # coordinates summed at a time: the temporaries stay in cache


class WeightedMean:
    """FedAvg's arithmetic on flat int64 arrays: updates of equal weight summed, then
    multiplied once (no multiplication at all when every weight is equal: sum(w * x) /
    (n * w) is exactly sum(x) / n), rounded to nearest; a cache-sized slice of every input
    at a time, into the caller's buffer. int64 sums wrap alike in any order."""

    def __init__(self, weights: Sequence[int]) -> None:
        groups: dict[int, list[int]] = {}
        for i, w in enumerate(weights):
            groups.setdefault(int(w), []).append(i)
        self.weights, self.total = list(weights), int(sum(weights))
        if len(groups) == 1:
            groups, self.total = {1: list(range(len(weights)))}, len(weights)
        self.groups = list(groups.items())
        self._spare = np.empty(0, dtype=np.int64)

    def into(self, xs: Sequence[np.ndarray], out: np.ndarray) -> np.ndarray:
        """The weighted mean of the flat arrays `xs` (one per weight), into `out`."""
        n = len(out)
        if len(self._spare) < min(n, SLICE_VALUES):
            self._spare = np.empty(min(n, SLICE_VALUES), dtype=np.int64)
        for s in range(0, n, SLICE_VALUES):
            e = min(n, s + SLICE_VALUES)
            self._sum([x[s:e] for x in xs], out[s:e], self._spare[: e - s])
            exact.div_nearest(out[s:e], self.total, out=out[s:e])
        return out

    def _sum(self, xs: list[np.ndarray], acc: np.ndarray, spare: np.ndarray) -> None:
        first = True
        for w, members in self.groups:
            part = acc if first or w == 1 else spare
            if w != 1 and len(members) == 1:
                np.multiply(xs[members[0]], np.int64(w), out=part)
            else:
                if first or w != 1:
                    np.copyto(part, xs[members[0]])
                else:
                    np.add(part, xs[members[0]], out=part)
                for i in members[1:]:
                    np.add(part, xs[i], out=part)
                if w != 1:
                    np.multiply(part, np.int64(w), out=part)
            if part is spare:
                np.add(acc, spare, out=acc)
            first = False


def _columns(updates: Sequence[Update], k: int) -> list[np.ndarray]:
    return [np.asarray(u[k], dtype=np.int64).reshape(-1) for u in updates]


def fedavg(updates: Sequence[Update], weights: Sequence[int]) -> Update:
    """Weighted mean (weights: bounded sample counts)."""
    _check(updates)
    if len(weights) != len(updates) or any(w < 1 for w in weights):
        raise ValueError("one positive integer weight (sample count) per update is needed")
    total = int(sum(weights))
    if total > MAX_TOTAL_WEIGHT:
        raise ValueError(f"total weight {total} exceeds {MAX_TOTAL_WEIGHT}; scale the sample counts down")
    mean = WeightedMean(weights)
    out = []
    for k in range(len(updates[0])):
        xs = _columns(updates, k)
        out.append(mean.into(xs, np.empty(len(xs[0]), dtype=np.int64)).reshape(np.shape(updates[0][k])))
    return out


def _sorted(updates: Sequence[Update], k: int) -> np.ndarray:
    """Tensor k of every update, each coordinate's values sorted along the last axis (the
    updates side by side in memory: sorting n neighbours is faster than n strided rows)."""
    s = np.stack([u[k] for u in updates], axis=-1)
    s.sort(axis=-1)
    return s


def _median_of_three(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The middle value of each coordinate, without sorting: max(min(a, b), min(max(a, b), c))."""
    low: np.ndarray = np.minimum(a, b)
    high: np.ndarray = np.maximum(a, b)
    np.minimum(high, c, out=high)
    np.maximum(low, high, out=low)
    return low


def coordinate_median(updates: Sequence[Update]) -> Update:
    _check(updates)
    n = len(updates)
    if n == 3:  # the common round: three orgs
        return [
            _median_of_three(*(np.asarray(u[k], dtype=np.int64) for u in updates))
            for k in range(len(updates[0]))
        ]
    out = []
    for k in range(len(updates[0])):
        if 2 <= n <= sortnet.MAX_INPUTS:  # the same values as sorting, a few times faster
            columns = _columns(updates, k)
            middle = (
                sortnet.order_statistic(columns, n // 2)
                if n % 2
                else sortnet.rank_sum(columns, n // 2 - 1, n // 2 + 1)
            )
            out.append(
                (middle if n % 2 else exact.div_nearest(middle, 2, out=middle)).reshape(updates[0][k].shape)
            )
            continue
        s = _sorted(updates, k)
        out.append(
            s[..., n // 2].copy() if n % 2 else exact.div_nearest(s[..., n // 2 - 1] + s[..., n // 2], 2)
        )
    return out


def trimmed_mean(updates: Sequence[Update], trim: int) -> Update:
    """Drop the `trim` largest and smallest values of every coordinate, average the rest."""
    _check(updates)
    n = len(updates)
    if not 0 <= trim < n / 2:
        raise ValueError(f"trim must be 0 to {(n - 1) // 2} for {n} updates, got {trim}")
    out = []
    for k in range(len(updates[0])):
        if 2 <= n <= sortnet.MAX_INPUTS:  # the same sums as sorting, a few times faster
            total = sortnet.rank_sum(_columns(updates, k), trim, n - trim)
            out.append(exact.div_nearest(total, n - 2 * trim, out=total).reshape(updates[0][k].shape))
            continue
        s = _sorted(updates, k)[..., trim : n - trim]
        out.append(exact.div_nearest(s.sum(axis=-1), n - 2 * trim))
    return out


def squared_distance(a: Update, b: Update) -> int:
    return exact.squared_distance(exact.flatten(a), exact.flatten(b))


def norm(u: Update) -> int:
    """L2 norm in fixed-point units, exactly (integer square root, rounded down)."""
    return exact.norm(exact.flatten(u))


def dot(a: Update, b: Update) -> int:
    """Inner product in fixed-point units squared, exactly."""
    return exact.dot(exact.flatten(a), exact.flatten(b))


def krum_selection(updates: Sequence[Update], byzantine: int, keep: int) -> list[int]:
    """The `keep` updates closest to their n - byzantine - 2 nearest neighbours."""
    _check(updates)
    n = len(updates)
    if n - byzantine - 2 < 1 or not 1 <= keep <= n - byzantine:
        raise ValueError(f"Multi-Krum with {n} updates needs byzantine <= {n - 3} and keep <= n - byzantine")
    flat = [exact.flatten(u) for u in updates]
    dist = [[exact.squared_distance(flat[i], flat[j]) for j in range(n)] for i in range(n)]
    scores = [sum(sorted(dist[i][j] for j in range(n) if j != i)[: n - byzantine - 2]) for i in range(n)]
    return sorted(sorted(range(n), key=lambda i: (scores[i], i))[:keep])


def multi_krum(updates: Sequence[Update], byzantine: int, keep: int) -> tuple[Update, list[int]]:
    """Average of the Multi-Krum selection; returns the aggregate and the indices selected."""
    selected = krum_selection(updates, byzantine, keep)
    return fedavg([updates[i] for i in selected], [1] * len(selected)), selected


def bound_norm(u: Update, bound: int) -> Update:
    """Scale an update down, exactly, so its L2 norm is at most `bound` (fixed-point units)."""
    clipped, _ = exact.clip(exact.flatten(u), bound)
    return exact.unflatten(clipped, u)


def apply_rule(rule: str, updates: Sequence[Update], samples: Sequence[int]) -> Update:
    """Aggregate by a task's rule string, each update its own vote and no reference
    direction (fabricml.federation.outcome.compute_outcome is the full round). Raises
    ValueError for a rule outside the grammar (fabricml.federation.rulebook.RULES)."""
    from .rulebook import aggregate, parse  # the rulebook builds on this module

    _check(updates)
    parsed = parse(rule)
    flat = [exact.flatten(u) for u in updates]
    return exact.unflatten(aggregate(parsed, flat, list(samples), None, b"").vector, updates[0])
