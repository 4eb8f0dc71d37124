"""Trust-weighted averaging against a reference direction (FLTrust, Cao et al., NDSS
2021): each update counts in proportion to its cosine with the reference, zero when it
points away, after being clipped to the median update norm so no one wins by magnitude.

The reference is the round's agreed direction (the consortium's root update, or the
previous global step) or, without one, the coordinate median. With no update pointing
along it the round's step is zero: the documented fallback."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..exact import ONE, clip, cosine, lower_median, norm, weighted_mean
from .result import Aggregated


def trust_weighted(vectors: Sequence[np.ndarray], reference: np.ndarray) -> Aggregated:
    norms = [norm(x) for x in vectors]
    radius = lower_median(norms)
    trust = [max(0, cosine(x, reference, ONE)) for x in vectors]
    clipped = [clip(x, radius, n, copy=False) for x, n in zip(vectors, norms, strict=True)]
    influence = [t * f // ONE for t, (_, f) in zip(trust, clipped, strict=True)]
    if not any(trust):
        return Aggregated(np.zeros_like(reference), [0] * len(vectors))
    return Aggregated(weighted_mean([c for c, _ in clipped], trust), influence)
