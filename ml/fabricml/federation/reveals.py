"""A round's published updates: each commitment's bytes, fetched from the URI it names
(any member's store may serve them: they are content-addressed), checked against the
commitment's digest and bound to this task, round and participant before any org uses
them. What arrives but cannot be used is flagged with the reason; what cannot be
fetched stays pending until the reveal window has run its full length, then is missing."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from fabricml.contracts.federation import Commitment

from . import wire
from .fixedpoint import Update


class UnfetchableUpdate(RuntimeError):
    """No store served the bytes of a committed update (yet)."""


V = TypeVar("V")

# fetch(digest, uri) -> the path of a local file holding exactly those bytes.
Fetch = Callable[[str, str], Path]


@dataclass
class PublishedUpdates:
    updates: dict[str, Update] = field(default_factory=dict)  # participant key -> usable update
    samples: dict[str, int] = field(default_factory=dict)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)  # fingerprints from the bytes
    invalid: dict[str, str] = field(default_factory=dict)  # arrived, unusable: flagged, with why
    pending: dict[str, str] = field(default_factory=dict)  # not fetched (yet), with why

    @property
    def usable(self) -> list[str]:
        """Keys of the updates that count as usable for the contract: fetched ones."""
        return sorted([*self.updates, *self.invalid])

    def without(self, keys: Iterable[str]) -> PublishedUpdates:
        """The same with `keys` left out: the updates a quorum reported missing."""
        gone = set(keys)

        def kept(d: Mapping[str, V]) -> dict[str, V]:
            return {k: v for k, v in d.items() if k not in gone}

        return PublishedUpdates(kept(self.updates), kept(self.samples), kept(self.datasets),
                                kept(self.invalid), kept(self.pending))  # fmt: skip


def read_update(path: Path) -> tuple[dict[str, Any], Update]:
    """(header, values) of an update file in the wire format (streamed in chunks) or
    fixedpoint's int64 one."""
    with path.open("rb") as f:
        head = f.read(4)
        n = int.from_bytes(head, "little") if len(head) == 4 else 0
        try:
            kind = json.loads(f.read(min(n, wire.MAX_HEADER_BYTES))).get("format")
        except (ValueError, UnicodeDecodeError, AttributeError):
            kind = None
        f.seek(0)
        if kind in wire.FORMATS:
            reader = wire.UpdateReader(f)
            return reader.header, reader.read()
        return wire.decode_any(f.read())


def _check(
    path: Path, task_id: str, round_: int, key: str, shapes: list[tuple[int, ...]]
) -> tuple[Update, dict[str, Any]]:
    header, update = read_update(path)
    context = header.get("context", {})
    expected = {"task": task_id, "round": round_, "participant": key}
    if not isinstance(context, dict) or {k: context.get(k) for k in expected} != expected:
        raise ValueError(f"its bytes are bound to {context}, not to {expected}")
    if [tuple(a.shape) for a in update] != shapes:
        raise ValueError(f"its shapes {[a.shape for a in update]} are not the model's {shapes}")
    dataset = context.get("dataset", {})
    return update, dataset if isinstance(dataset, dict) else {}


def collect(
    commitments: Sequence[Commitment],
    participants: Collection[str],
    task_id: str,
    round_: int,
    shapes: list[tuple[int, ...]],
    fetch: Fetch,
) -> PublishedUpdates:
    """Every commitment of the round's participants (others are ignored), fetched and
    checked. `fetch` returns a file already checked against the digest, or raises
    UnfetchableUpdate."""
    out = PublishedUpdates()
    for c in sorted(commitments, key=lambda c: c.participant.key):
        key = c.participant.key
        if key not in participants:
            continue
        try:
            path = fetch(c.digest, c.uri)
        except UnfetchableUpdate as exc:
            out.pending[key] = str(exc)
            continue
        try:
            update, dataset = _check(path, task_id, round_, key, shapes)
        except (ValueError, OSError) as exc:  # WireError is a ValueError
            out.invalid[key] = f"published an unusable update: {exc}"
            continue
        out.updates[key], out.samples[key], out.datasets[key] = update, c.samples, dataset
    return out


def encoded(update: Update, context: dict[str, Any]) -> bytes:
    """An update's bytes as they travel: the compact wire format with its binding header."""
    buf = io.BytesIO()
    wire.encode_to(update, buf, context)
    return buf.getvalue()
