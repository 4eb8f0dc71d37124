"""Mixing before a robust rule, which shrinks the spread of honest non-IID updates so the
rule can tell them from attackers: nearest-neighbour mixing (Allouah et al., AISTATS
2023) and bucketing (Karimireddy, He and Jaggi, ICLR 2022)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from ..exact import squared_distance, weighted_mean


def tolerated(n: int) -> int:
    """How many of n inputs mixing assumes may be Byzantine: fewer than a third."""
    return max(0, (n - 1) // 3)


def nearest_neighbours(vectors: Sequence[np.ndarray], keep: int) -> list[list[int]]:
    """For each input, itself and its keep - 1 nearest others (ties broken by index)."""
    n = len(vectors)
    d = [[0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            d[i][j] = d[j][i] = squared_distance(vectors[i], vectors[j])

    def closest(i: int) -> list[int]:
        return sorted(range(n), key=lambda j: (d[i][j], j != i, j))[: max(1, keep)]

    return [closest(i) for i in range(n)]


def nearest_neighbour_mixing(vectors: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[list[int]]]:
    """Each input replaced by the mean of its n - f nearest inputs (itself included)."""
    groups = nearest_neighbours(vectors, len(vectors) - tolerated(len(vectors)))
    return [weighted_mean([vectors[j] for j in g], [1] * len(g)) for g in groups], groups


def buckets(count: int, size: int, seed: bytes) -> list[list[int]]:
    """A permutation of range(count) fixed by `seed` (every org derives the same), cut into
    buckets of `size` (the last one may be smaller)."""
    order = sorted(range(count), key=lambda i: hashlib.sha256(seed + i.to_bytes(4, "big")).digest())
    return [sorted(order[s : s + size]) for s in range(0, count, max(1, size))]


def bucketing(
    vectors: Sequence[np.ndarray], size: int, seed: bytes
) -> tuple[list[np.ndarray], list[list[int]]]:
    groups = buckets(len(vectors), size, seed)
    return [weighted_mean([vectors[j] for j in g], [1] * len(g)) for g in groups], groups
