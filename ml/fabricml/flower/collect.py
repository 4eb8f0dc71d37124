"""A round's committed updates, as an org gathers them before it assesses the round: the
bytes it already holds (a Flower reply, re-encoded) or else fetched from the owner's store,
each checked against its commitment on the ledger. Unfetchable until the reveal window ran
its full length: missing. Bytes that arrive but are bound elsewhere or misshapen: invalid
(flagged, not missing), as docs/federation-protocol-v2.md says."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fabricml.contracts.federation import Commitment, RoundState, Task
from fabricml.federation.fixedpoint import Update
from fabricml.registry.artifacts import ArtifactError

from .links import UpdateStore
from .rounds import Clock, passed_for_certain
from .updates import UnusableUpdate, digest, read_update


@dataclass
class RoundUpdates:
    """What one org could use of a round's commitments."""

    committed: list[str] = field(default_factory=list)  # participant keys, the round's participants only
    updates: dict[str, Update] = field(default_factory=dict)  # usable and well-formed
    samples: dict[str, int] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)  # fetched but unusable: why
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)  # fingerprints from the headers
    missing: list[str] = field(default_factory=list)  # never fetched within the reveal window

    @property
    def usable(self) -> int:
        """Committed and not missing, as the contract counts them."""
        return len(self.committed) - len(self.missing)


def round_commitments(commitments: Sequence[Commitment], state: RoundState) -> dict[str, Commitment]:
    """The commitments of the round's participants (anyone else's are ignored), by key."""
    allowed = set(state.participants)
    return {c.participant.key: c for c in commitments if c.participant.key in allowed}


def _take(
    out: RoundUpdates, task: Task, state: RoundState, c: Commitment, raw: bytes, shapes: list[tuple[int, ...]]
) -> None:
    key = c.participant.key
    try:
        update, context = read_update(raw, task.id, state.round, key, shapes)
    except UnusableUpdate as exc:
        out.invalid[key] = f"committed an unusable update: {exc}"
        return
    out.updates[key], out.samples[key] = update, c.samples
    dataset = context.get("dataset")
    out.datasets[key] = dict(dataset) if isinstance(dataset, dict) else {}


def gather(
    task: Task,
    state: RoundState,
    commitments: Mapping[str, Commitment],
    shapes: list[tuple[int, ...]],
    store: UpdateStore,
    held: Mapping[str, bytes] | None = None,
    clock: Clock | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> RoundUpdates:
    """Every committed update: from `held` (participant key -> bytes) when they match the
    commitment, else from the stores, retried until the reveal deadline passed for certain."""
    clock = clock or Clock()
    out = RoundUpdates(committed=sorted(commitments))
    pending = dict(commitments)
    for key, raw in (held or {}).items():
        c = pending.get(key)
        if c is not None and digest(raw) == c.digest:
            _take(out, task, state, pending.pop(key), raw, shapes)
    while pending:
        for key, c in sorted(pending.items()):
            try:
                raw = store.fetch(c.digest)
            except (ArtifactError, OSError) as exc:
                log(f"round {state.round}: {key}'s update {c.digest[:12]} not fetched yet: {exc}")
                continue
            if digest(raw) == c.digest:
                _take(out, task, state, pending.pop(key), raw, shapes)
        if pending and passed_for_certain(task, state.reveal_deadline, clock):
            out.missing = sorted(pending)
            break
        if pending:
            clock.sleep(1.0)
    return out
