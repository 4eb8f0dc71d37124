"""Robust aggregation rules over fixed-point updates, exact in integer arithmetic.

Framework-free: lists of int64 NumPy arrays in, lists out. Every rule gives the same
bytes on any machine; the rules that measure distances do so on coarsened integers
(COARSE_BITS dropped) so squares and their sums stay inside int64."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .fixedpoint import MAX_TOTAL_WEIGHT, Update

COARSE_BITS = 16


def _check(updates: Sequence[Update]) -> None:
    if not updates:
        raise ValueError("aggregation needs at least one update")
    shapes = [tuple(a.shape) for a in updates[0]]
    for i, u in enumerate(updates):
        if [tuple(a.shape) for a in u] != shapes:
            raise ValueError(f"update {i} has shapes {[a.shape for a in u]}, expected {shapes}")


def _div_round(num: np.ndarray, den: int) -> np.ndarray:
    """num / den rounded half up, exactly."""
    out: np.ndarray = np.floor_divide(num + den // 2, den)
    return out


def fedavg(updates: Sequence[Update], weights: Sequence[int]) -> Update:
    """Sample-weighted mean."""
    _check(updates)
    if len(weights) != len(updates) or any(w < 1 for w in weights):
        raise ValueError("one positive integer weight (sample count) per update is needed")
    total = int(sum(weights))
    if total > MAX_TOTAL_WEIGHT:
        raise ValueError(f"total weight {total} exceeds {MAX_TOTAL_WEIGHT}; scale the sample counts down")
    out = []
    for k in range(len(updates[0])):
        acc = np.zeros_like(updates[0][k], dtype=np.int64)
        for u, w in zip(updates, weights, strict=True):
            acc += u[k] * np.int64(w)
        out.append(_div_round(acc, total))
    return out


def coordinate_median(updates: Sequence[Update]) -> Update:
    _check(updates)
    n = len(updates)
    out = []
    for k in range(len(updates[0])):
        s = np.sort(np.stack([u[k] for u in updates]), axis=0)
        out.append(s[n // 2] if n % 2 else np.floor_divide(s[n // 2 - 1] + s[n // 2], 2))
    return out


def trimmed_mean(updates: Sequence[Update], trim: int) -> Update:
    """Drop the `trim` largest and smallest values of every coordinate, average the rest."""
    _check(updates)
    n = len(updates)
    if not 0 <= trim < n / 2:
        raise ValueError(f"trim must be 0 to {(n - 1) // 2} for {n} updates, got {trim}")
    out = []
    for k in range(len(updates[0])):
        s = np.sort(np.stack([u[k] for u in updates]), axis=0)[trim : n - trim]
        out.append(_div_round(s.sum(axis=0), n - 2 * trim))
    return out


def _coarse(u: Update) -> np.ndarray:
    return np.concatenate([np.right_shift(a, COARSE_BITS).ravel() for a in u])


def _sum_squares(c: np.ndarray) -> int:
    # Chunks of 2**20 coarse values keep every int64 partial sum below 2**56.
    return sum(int(np.dot(chunk, chunk)) for chunk in np.split(c, range(1 << 20, c.size, 1 << 20)))


def squared_distance(a: Update, b: Update) -> int:
    return _sum_squares(_coarse(a) - _coarse(b))


def norm(u: Update) -> int:
    """L2 norm in coarse fixed-point units, exactly (integer square root)."""
    return math.isqrt(_sum_squares(_coarse(u)))


def multi_krum(updates: Sequence[Update], byzantine: int, keep: int) -> tuple[Update, list[int]]:
    """Average of the `keep` updates closest to their n - byzantine - 2 nearest neighbours;
    returns the aggregate and the indices selected."""
    _check(updates)
    n = len(updates)
    if n - byzantine - 2 < 1 or not 1 <= keep <= n - byzantine:
        raise ValueError(f"Multi-Krum with {n} updates needs byzantine <= {n - 3} and keep <= n - byzantine")
    dist = [[squared_distance(updates[i], updates[j]) for j in range(n)] for i in range(n)]
    scores = [sum(sorted(dist[i][j] for j in range(n) if j != i)[: n - byzantine - 2]) for i in range(n)]
    selected = sorted(sorted(range(n), key=lambda i: (scores[i], i))[:keep])
    return fedavg([updates[i] for i in selected], [1] * len(selected)), selected


def bound_norm(u: Update, bound: int) -> Update:
    """Scale an update down, exactly, so its coarse L2 norm is at most `bound`."""
    n = norm(u)
    if n <= bound or n == 0:
        return [a.copy() for a in u]
    return [np.floor_divide(a * np.int64(bound), n) for a in u]


def dot(a: Update, b: Update) -> int:
    """Inner product in coarse fixed-point units, exactly."""
    ca, cb = _coarse(a), _coarse(b)
    bounds = range(1 << 20, ca.size, 1 << 20)
    return sum(int(np.dot(x, y)) for x, y in zip(np.split(ca, bounds), np.split(cb, bounds), strict=True))


RULES = "fedavg, median, trimmed:<k>, krum:<f>:<m>, each optionally followed by +normbound"


def apply_rule(rule: str, updates: Sequence[Update], samples: Sequence[int]) -> Update:
    """Aggregate by a task's rule string (the Federation contract validates the same
    grammar). `+normbound` first scales every update down to the median update norm."""
    base, bound, rest = rule.partition("+normbound")
    if rest:
        raise ValueError(f"rule {rule!r}: nothing may follow +normbound")
    if bound:
        limit = sorted(norm(u) for u in updates)[(len(updates) - 1) // 2]
        updates = [bound_norm(u, limit) for u in updates]
    name, *params = base.split(":")
    try:
        args = [int(p) for p in params]
        if name == "fedavg" and not args:
            return fedavg(updates, list(samples))
        if name == "median" and not args:
            return coordinate_median(updates)
        if name == "trimmed" and len(args) == 1:
            return trimmed_mean(updates, args[0])
        if name == "krum" and len(args) == 2:
            return multi_krum(updates, args[0], args[1])[0]
    except ValueError as exc:
        raise ValueError(f"rule {rule!r}: {exc}") from None
    raise ValueError(f"unknown aggregation rule {rule!r}; allowed: {RULES}")
