"""A round's published updates: each commitment's bytes, fetched from the URI it names
(any member's store may serve them: they are content-addressed), checked against the
commitment's digest and bound to this task, round and participant before any org uses
them. What arrives but cannot be used is flagged with the reason; what cannot be
fetched stays pending until the reveal window has run its full length, then is missing."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from fabricml.contracts.federation import Commitment

from . import wire
from .fixedpoint import Update
from .payload import Screened, read_screened


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
    screened: dict[str, Screened] = field(default_factory=dict)  # digest and bounds, found while decoding

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
                                kept(self.invalid), kept(self.pending), kept(self.screened))  # fmt: skip


def read_update(path: Path, shapes: list[tuple[int, ...]] | None = None) -> tuple[dict[str, Any], Update]:
    """(header, values) of an update file in the wire format (streamed in chunks) or
    fixedpoint's int64 one. With the model's `shapes`, a wire update of other shapes is
    refused (ValueError) before any value is read, and one of these shapes is decoded
    into one flat vector (exact.backed)."""
    header, update, _ = _read(path, shapes)
    return header, update


def _read(path: Path, shapes: list[tuple[int, ...]] | None) -> tuple[dict[str, Any], Update, Screened | None]:
    """read_update, and for a wire update of the model's shapes its screening answers."""
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
            if shapes is None:
                return reader.header, reader.read(), None
            if reader.shapes != shapes:
                raise ValueError(f"its shapes {reader.shapes} are not the model's {shapes}")
            # straight into one flat vector, held once (flatten returns it without a copy)
            update, screened = read_screened(reader)
            return reader.header, update, screened
        return *wire.decode_any(f.read()), None


def _check(
    path: Path, task_id: str, round_: int, key: str, shapes: list[tuple[int, ...]]
) -> tuple[Update, dict[str, Any], Screened | None]:
    header, update, screened = _read(path, shapes)
    context = header.get("context", {})
    expected = {"task": task_id, "round": round_, "participant": key}
    if not isinstance(context, dict) or {k: context.get(k) for k in expected} != expected:
        raise ValueError(f"its bytes are bound to {context}, not to {expected}")
    if [tuple(a.shape) for a in update] != shapes:
        raise ValueError(f"its shapes {[a.shape for a in update]} are not the model's {shapes}")
    dataset = context.get("dataset", {})
    return update, dataset if isinstance(dataset, dict) else {}, screened


# (update, dataset fingerprint, screening answers if found while decoding), or why it is unusable
Checked = tuple[Update, dict[str, Any], Screened | None] | str


def _fetch_and_check(
    c: Commitment, task_id: str, round_: int, shapes: list[tuple[int, ...]], fetch: Fetch
) -> Checked:
    """One commitment's update, fetched and checked; UnfetchableUpdate passes through."""
    path = fetch(c.digest, c.uri)
    try:
        return _check(path, task_id, round_, c.participant.key, shapes)
    except (ValueError, OSError) as exc:  # WireError is a ValueError
        return f"published an unusable update: {exc}"


def collect(
    commitments: Sequence[Commitment],
    participants: Collection[str],
    task_id: str,
    round_: int,
    shapes: list[tuple[int, ...]],
    fetch: Fetch,
    checked: dict[tuple[str, str], Checked] | None = None,
    parallel: int = 1,
) -> PublishedUpdates:
    """Every commitment of the round's participants (others are ignored), fetched and
    checked. `fetch` returns a file already checked against the digest, or raises
    UnfetchableUpdate. `checked` ((participant, digest) -> result) keeps what an earlier call fetched
    and checked, so a second look fetches only what was pending; `parallel` fetches from
    that many stores at once (each update is checked as soon as its bytes are in, while
    the others still arrive). The result does not depend on `parallel`."""
    memo: dict[tuple[str, str], Checked] = {} if checked is None else checked
    ours = sorted(
        (c for c in commitments if c.participant.key in participants), key=lambda c: c.participant.key
    )
    todo = [c for c in ours if (c.participant.key, c.digest) not in memo]
    pending: dict[str, str] = {}

    def one(c: Commitment) -> None:
        try:
            memo[c.participant.key, c.digest] = _fetch_and_check(c, task_id, round_, shapes, fetch)
        except UnfetchableUpdate as exc:
            pending[c.participant.key] = str(exc)

    if parallel > 1 and len(todo) > 1:
        with ThreadPoolExecutor(min(parallel, len(todo)), "fabricml-fetch") as pool:
            list(pool.map(one, todo))
    else:
        for c in todo:
            one(c)
    out = PublishedUpdates()
    for c in ours:
        key = c.participant.key
        if key in pending:
            out.pending[key] = pending[key]
            continue
        got = memo[key, c.digest]
        if isinstance(got, str):
            out.invalid[key] = got
            continue
        out.updates[key], out.samples[key], out.datasets[key] = got[0], c.samples, got[1]
        if got[2] is not None:
            out.screened[key] = got[2]
    return out


def encoded(update: Update, context: dict[str, Any]) -> bytes:
    """An update's bytes as they travel: the compact wire format with its binding header."""
    buf = io.BytesIO()
    wire.encode_to(update, buf, context)
    return buf.getvalue()
