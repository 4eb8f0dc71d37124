"""An update file decoded into one flat vector together with, in the same pass, what the
round's screening needs of its values: their payload digest (fixedpoint.digest: replays
and copies) and their bound check (fixedpoint.bound_violation, and whether every value is
zero). Each cache-sized piece is checked while it is hot from decoding and hashed on the
hashing thread (wire.hasher) while the next piece decodes, instead of three more passes
over the whole update in the outcome. The answers are those of the two functions on
exactly these values, so screening gives the same flags and digests either way."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from math import prod

import numpy as np

from . import exact, fixedpoint, wire
from .fixedpoint import Update

PIECE_VALUES = 1 << 16  # a multiple of wire's blocks: every piece decodes as whole batches


@dataclass(frozen=True)
class Screened:
    """fixedpoint.digest and bound_violation of the update whose read-only flat vector is
    `values`, and whether all of its values are zero."""

    values: np.ndarray
    digest: str
    violation: str | None
    empty: bool

    def describes(self, update: Sequence[np.ndarray]) -> bool:
        """Whether `update` is the one these answers were computed from (its views)."""
        return exact.backing(update) is self.values


def _extremes(piece: np.ndarray, start: int, ends: Sequence[int], high: list[int], low: list[int]) -> None:
    """Fold the piece's values (flat positions from `start`) into each tensor's max and min."""
    at, stop = start, start + len(piece)
    for t, end in enumerate(ends):
        if end <= at or at >= stop:
            continue
        part = piece[at - start : min(end, stop) - start]
        if part.size:
            high[t], low[t] = max(high[t], int(part.max())), min(low[t], int(part.min()))
        at = min(end, stop)


def read_screened(reader: wire.UpdateReader) -> tuple[Update, Screened]:
    """The reader's values as one read-only flat vector (exact.backed) and their screening
    answers; raises wire.WireError as reader.read_into does (the last values only after
    the checksum matched)."""
    flat = np.empty(reader.total, dtype=np.int64)
    sizes = [prod(s) for s in reader.shapes]
    ends = list(np.cumsum(sizes, dtype=np.int64).tolist()) if sizes else []
    high, low = [-(1 << 63)] * len(sizes), [(1 << 63) - 1] * len(sizes)
    # the shapes as fixedpoint.digest sees them: np.ascontiguousarray makes a scalar's () a (1,)
    digest = hashlib.sha256(fixedpoint.header_bytes([tuple(sh) or (1,) for sh in reader.shapes]))
    hashed: list[Future[None]] = []
    try:
        for s in range(0, reader.total, PIECE_VALUES):
            piece = flat[s : s + PIECE_VALUES]
            reader.read_into(piece)
            _extremes(piece, s, ends, high, low)
            raw = piece if sys.byteorder == "little" else piece.astype("<i8")
            hashed.append(wire.hasher().submit(digest.update, raw.view(np.uint8).data))
        if reader.total == 0:
            reader.read()  # nothing to decode: this checks the end
    finally:
        for h in hashed:  # the flat vector is not let go while the hashing thread reads it
            h.result()
    violation = next(
        (why for t, n in enumerate(sizes) if n and (why := fixedpoint.beyond_bound(t, high[t], low[t]))), None
    )
    empty = all(high[t] == 0 and low[t] == 0 for t, n in enumerate(sizes) if n)
    update = exact.backed(flat, reader.shapes)
    return update, Screened(flat, digest.hexdigest(), violation, empty)
