"""The direction a round's updates are measured against, which no coalition below the
quorum can choose: the coordinate median of the orgs' root updates (each org trains the
current global model on the consortium's approved root dataset), else the previous global
step (agreed by a quorum last round), else none (the rule then uses the coordinate
median of this round's inputs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from . import aggregation
from .exact import flatten
from .fixedpoint import Update, bound_violation


def previous_step(global_model: Update, previous_global: Update | None) -> np.ndarray | None:
    if previous_global is None or [a.shape for a in previous_global] != [a.shape for a in global_model]:
        return None
    step = np.empty(sum(a.size for a in global_model), dtype=np.int64)
    at = 0
    for g, p in zip(global_model, previous_global, strict=True):  # one pass, no flattened copies
        np.subtract(np.asarray(g, dtype=np.int64).reshape(-1), np.asarray(p, dtype=np.int64).reshape(-1),
                    out=step[at : at + g.size])  # fmt: skip
        at += g.size
    return step if np.any(step) else None


def root_direction(
    root_updates: Mapping[str, Update], shapes: Sequence[tuple[int, ...]]
) -> np.ndarray | None:
    """The coordinate median over orgs (one root update per org MSP ID) of the usable ones."""
    usable = [
        u
        for _, u in sorted(root_updates.items())
        if [a.shape for a in u] == list(shapes) and bound_violation(u) is None
    ]
    if not usable:
        return None
    median = flatten(aggregation.coordinate_median(usable))
    return median if np.any(median) else None


def reference_direction(
    global_model: Update, previous_global: Update | None, root_updates: Mapping[str, Update]
) -> tuple[np.ndarray | None, str]:
    """The reference and where it came from ("root", "previous step" or "")."""
    root = root_direction(root_updates, [a.shape for a in global_model])
    if root is not None:
        return root, "root"
    step = previous_step(global_model, previous_global)
    return (step, "previous step") if step is not None else (None, "")
