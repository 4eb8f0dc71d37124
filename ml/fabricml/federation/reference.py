"""The direction a round's updates are measured against, which no coalition below the
quorum can choose: the coordinate median of the orgs' root updates (each org trains the
current global model on the consortium's approved root dataset), else the previous global
step (agreed by a quorum last round), else none (the rule then uses the coordinate
median of this round's inputs)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from . import aggregation
from .exact import flatten
from .fixedpoint import Update, bound_violation

Direction = np.ndarray | Callable[[], np.ndarray | None] | None  # a vector, or one made on demand
SAME_CHUNK = 1 << 16  # values compared at a time while looking for a changed coordinate


def resolve(direction: Direction) -> np.ndarray | None:
    """The vector a Direction names (made now, if it is made on demand)."""
    return direction() if callable(direction) else direction


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


def _moved(global_model: Update, previous_global: Update | None) -> bool:
    """Whether previous_step is a vector (not None): same shapes and some value changed,
    found a chunk at a time (the first chunk, for any trained model)."""
    if previous_global is None or [a.shape for a in previous_global] != [a.shape for a in global_model]:
        return False
    for g, p in zip(global_model, previous_global, strict=True):
        gf, pf = np.asarray(g, dtype=np.int64).reshape(-1), np.asarray(p, dtype=np.int64).reshape(-1)
        if any(
            not np.array_equal(gf[s : s + SAME_CHUNK], pf[s : s + SAME_CHUNK])
            for s in range(0, gf.size, SAME_CHUNK)
        ):
            return True
    return False


class Reference:
    """The round's reference and where it came from ("root", "previous step" or ""): the
    previous step (a whole vector of the model's size) is formed only when a screening or
    a rule reads it (`vector`), once; plain FedAvg over one identity per org never does."""

    def __init__(
        self, global_model: Update, previous_global: Update | None, root_updates: Mapping[str, Update]
    ) -> None:
        self._global, self._previous = global_model, previous_global
        self._made: np.ndarray | None = root_direction(root_updates, [a.shape for a in global_model])
        self.source = (
            "root"
            if self._made is not None
            else "previous step"
            if _moved(global_model, previous_global)
            else ""
        )

    def vector(self) -> np.ndarray | None:
        if self._made is None and self.source == "previous step":
            self._made = previous_step(self._global, self._previous)
        return self._made


def reference_direction(
    global_model: Update, previous_global: Update | None, root_updates: Mapping[str, Update]
) -> tuple[np.ndarray | None, str]:
    """The reference and where it came from ("root", "previous step" or "")."""
    found = Reference(global_model, previous_global, root_updates)
    return found.vector(), found.source
