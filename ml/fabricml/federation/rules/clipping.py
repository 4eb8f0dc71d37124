"""Centered clipping (Karimireddy, He and Jaggi, ICML 2021): start from a center, add the
mean of every update's difference to it clipped to a radius, repeat.

The center is the round's reference (the previous global step or the root update, which
no coalition below the quorum chose) or, without one, the coordinate median. The radius
is the median distance to the center, so a minority can neither widen nor narrow it
beyond what the honest majority's distances allow; each update moves the result by at
most that radius over the number of updates, however far away it is."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..exact import ONE, clip, lower_median, norm, weighted_mean
from .result import Aggregated

ITERATIONS = 3


def centered_clipping(
    vectors: Sequence[np.ndarray], center: np.ndarray, iterations: int = ITERATIONS
) -> Aggregated:
    v = center.copy()
    factors = [ONE] * len(vectors)
    diffs = [np.empty_like(v, dtype=np.int64) for _ in vectors]  # reused by every iteration
    for _ in range(max(1, iterations)):
        for x, d in zip(vectors, diffs, strict=True):
            np.subtract(x, v, out=d)
        norms = [norm(d) for d in diffs]
        radius = lower_median(norms)
        clipped = [clip(d, radius, n, copy=False, out=d) for d, n in zip(diffs, norms, strict=True)]
        factors = [f for _, f in clipped]
        v += weighted_mean([c for c, _ in clipped], [1] * len(clipped))
    return Aggregated(v, factors)
