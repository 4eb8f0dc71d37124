"""A round's revealed updates, each fetched from its owner's store and checked against its
commitment before any org uses it; what cannot be used is set apart with the reason."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fabricml.contracts.federation import Commitment

from . import fixedpoint
from .fixedpoint import Update


class UnfetchableUpdate(RuntimeError):
    """No store served the bytes of a revealed update."""


@dataclass
class RevealedUpdates:
    updates: dict[str, Update] = field(default_factory=dict)  # participant key -> usable update
    samples: dict[str, int] = field(default_factory=dict)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)  # fingerprints from the bytes
    invalid: dict[str, str] = field(default_factory=dict)  # participant key -> why it is unusable


def collect(
    commitments: Sequence[Commitment],
    task_id: str,
    round_: int,
    shapes: list[tuple[int, ...]],
    fetch: Callable[[str], bytes],
) -> RevealedUpdates:
    """Every revealed update whose bytes are bound to this task, round and participant and
    have the model's shapes. `fetch(digest)` returns bytes already checked against the
    digest, or raises UnfetchableUpdate."""
    out = RevealedUpdates()
    for c in commitments:
        if not c.revealed:
            continue
        key = c.participant.key
        try:
            raw = fetch(c.digest)
            context = fixedpoint.header(raw).get("context", {})
            expected = {"task": task_id, "round": round_, "participant": key}
            if {k: context.get(k) for k in expected} != expected:
                raise ValueError(f"its bytes are bound to {context}, not to {expected}")
            update = fixedpoint.from_bytes(raw)
            if [tuple(a.shape) for a in update] != shapes:
                raise ValueError(f"its shapes {[a.shape for a in update]} are not the model's {shapes}")
        except (UnfetchableUpdate, ValueError) as exc:
            out.invalid[key] = f"revealed an unusable update: {exc}"
            continue
        out.updates[key], out.samples[key] = update, c.samples
        out.datasets[key] = context.get("dataset", {})
    return out
