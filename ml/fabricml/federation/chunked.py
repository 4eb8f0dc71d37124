"""Aggregation that reads updates coordinate-chunk by chunk, so memory stays bounded by
(updates x chunk) values however large the model: FedAvg, coordinate median and trimmed
mean, each bit-identical to the whole-array rule (fabricml.federation.aggregation and the
rulebook's fedavg / median / trimmed:<k>), and the aggregate's fixed-point digest
(fixedpoint.digest) computed over its bytes as they stream past.

Every one of these rules is coordinate-wise (each output value depends only on the inputs'
values at that coordinate), so applying the whole-array function to aligned slices and
joining the results gives the same values; weights and trims are fixed before the first
chunk. The rulebook's influence (the share of coordinates each input kept) is a sum of
per-chunk counts, finished once at the end."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

import numpy as np

from . import aggregation, exact, fixedpoint, wire
from .fixedpoint import MAX_TOTAL_WEIGHT, Update
from .rulebook import parse

CHUNK_VALUES = 1 << 20  # per update: 8 MiB of int64 in flight per input
Shapes = list[tuple[int, ...]]
ValueStream = Iterable[np.ndarray]  # one update's flat int64 values, in order, any pieces
# Aligned chunks in, aggregate chunk out. A chunk read from a file is overwritten by the
# next one; a rule may hand back one of two buffers in turn (the sink hashes one while
# the rule fills the other).
ChunkRule = Callable[[list[np.ndarray]], np.ndarray]


@runtime_checkable
class ValueReader(Protocol):
    """A stream that decodes straight into the caller's buffer (wire.UpdateReader)."""

    def read_into(self, out: np.ndarray) -> int: ...


def rechunk(stream: ValueStream, size: int) -> Iterator[np.ndarray]:
    """The stream's values in chunks of exactly `size` (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"chunks need at least one value, got {size}")
    pending: list[np.ndarray] = []
    held = 0
    for piece in stream:
        flat = np.asarray(piece, dtype=np.int64).ravel()
        while len(flat):
            take = min(size - held, len(flat))
            pending.append(flat[:take])
            held += take
            flat = flat[take:]
            if held == size:
                yield pending[0] if len(pending) == 1 else np.concatenate(pending)
                pending, held = [], 0
    if held:
        yield np.concatenate(pending)


def in_memory(update: Update) -> Iterator[np.ndarray]:
    """An update held in memory, as a value stream (no copy)."""
    for a in update:
        yield np.asarray(a).ravel()


def _chunks_of(stream: ValueStream | ValueReader, size: int) -> Iterator[np.ndarray]:
    """Chunks of exactly `size` values; a reader's all land in one buffer, reused."""
    if not isinstance(stream, ValueReader):
        yield from rechunk(stream, size)
        return
    if size < 1:
        raise ValueError(f"chunks need at least one value, got {size}")
    buffer = np.empty(size, dtype=np.int64)
    while n := stream.read_into(buffer):
        yield buffer[:n]


def lockstep(streams: Sequence[ValueStream | ValueReader], size: int) -> Iterator[list[np.ndarray]]:
    """One chunk of every stream at a time, all covering the same coordinates (valid until
    the next row: a reader's chunks are decoded into one buffer each)."""
    if not streams:
        raise ValueError("aggregation needs at least one update")
    chunked = [_chunks_of(s, size) for s in streams]
    while True:
        row = [next(c, None) for c in chunked]
        if all(r is None for r in row):
            return
        if any(r is None or len(r) != len(row[0]) for r in row):  # type: ignore[arg-type]
            raise ValueError("the updates hold different numbers of values")
        yield row  # type: ignore[misc]


@dataclass
class WireStream:
    """An update file's values: iterated, chunks of `values` (new arrays); to lockstep, a
    reader decoding straight into its reused buffer."""

    reader: wire.UpdateReader
    values: int = CHUNK_VALUES

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.reader.chunks(self.values)

    def read_into(self, out: np.ndarray) -> int:
        return self.reader.read_into(out)


@contextlib.contextmanager
def wire_files(
    paths: Sequence[Path], values: int = CHUNK_VALUES
) -> Iterator[tuple[Shapes, list[WireStream]]]:
    """The shapes and value streams of update files in the wire format, all of one shape;
    each stream's last values come only after that file's checksum matched."""
    with contextlib.ExitStack() as stack:
        readers = [wire.UpdateReader(stack.enter_context(Path(p).open("rb"))) for p in paths]
        if not readers:
            raise ValueError("aggregation needs at least one update")
        for p, r in zip(paths, readers, strict=True):
            if r.shapes != readers[0].shapes:
                raise ValueError(f"{p} has shapes {r.shapes}, expected {readers[0].shapes}")
        yield readers[0].shapes, [WireStream(r, values) for r in readers]


@dataclass
class AggregateSink:
    """Where aggregate chunks go: the fixed-point digest of the whole, and optionally the
    aggregate itself, written to `out` in the wire format as it comes."""

    shapes: Shapes
    out: BinaryIO | None = None
    context: dict[str, object] | None = None
    values: int = 0
    _hash: hashlib._Hash = field(init=False)
    _writer: wire.UpdateWriter | None = field(init=False, default=None)
    _hashing: Future[None] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._hash = hashlib.sha256(fixedpoint.header_bytes(self.shapes))
        if self.out is not None:
            self._writer = wire.UpdateWriter(self.out, self.shapes, self.context)

    def write(self, chunk: np.ndarray) -> None:
        """Hash `chunk` on the hashing thread; it must stay unchanged until the next write
        returns (this one waits for the previous chunk's hash)."""
        view = np.ascontiguousarray(chunk, dtype="<i8").reshape(-1).view(np.uint8).data
        hashing = wire.hasher().submit(self._hash.update, view) if len(view) >= 1 << 16 else None
        if self._hashing is not None:
            self._hashing.result()
        if hashing is None:  # small: at once, cheaper than a trip to the thread
            self._hash.update(view)
        self._hashing = hashing
        self.values += len(chunk)
        if self._writer is not None:
            self._writer.write(chunk)

    def close(self) -> str:
        """The digest fixedpoint.digest gives the whole aggregate."""
        total = sum(prod(s) for s in self.shapes)
        if self.values != total:
            raise ValueError(f"the aggregate has {self.values} values; the shapes hold {total}")
        if self._writer is not None:
            self._writer.close()
        if self._hashing is not None:
            self._hashing.result()
        return self._hash.hexdigest()


def _one(rule: Callable[[list[Update]], Update]) -> ChunkRule:
    return lambda chunks: rule([[c] for c in chunks])[0]


class _FedAvg:
    """aggregation.WeightedMean into one of two output buffers, handed back in turn."""

    def __init__(self, weights: Sequence[int]) -> None:
        if any(w < 1 for w in weights) or sum(weights) > MAX_TOTAL_WEIGHT:
            raise ValueError(f"one positive weight per update is needed, {MAX_TOTAL_WEIGHT} in total at most")
        self.mean = aggregation.WeightedMean(weights)
        self._outs = [np.empty(0, dtype=np.int64)] * 2

    def __call__(self, chunks: list[np.ndarray]) -> np.ndarray:
        if len(chunks) != len(self.mean.weights):
            raise ValueError(f"{len(chunks)} updates for {len(self.mean.weights)} weights")
        n = len(chunks[0])
        out = self._outs.pop(0)
        if len(out) < n:
            out = np.empty(n, dtype=np.int64)
        self._outs.append(out)
        return self.mean.into(chunks, out[:n])


def fedavg(weights: Sequence[int]) -> ChunkRule:
    """aggregation.fedavg, chunk by chunk."""
    return _FedAvg(weights)


def coordinate_median() -> ChunkRule:
    return _one(aggregation.coordinate_median)


def trimmed_mean(trim: int) -> ChunkRule:
    return _one(lambda u: aggregation.trimmed_mean(u, trim))


@dataclass
class RulebookChunks:
    """The rulebook's fedavg, median and trimmed:<k> (no mixing, gate or normbound: those
    need whole-vector norms or distances first), chunk by chunk, with their influence."""

    rule: str
    samples: Sequence[int]
    kept: np.ndarray = field(init=False)
    size: int = 0

    def __post_init__(self) -> None:
        r = parse(self.rule)
        if r.mixing or r.gate or r.normbound or r.base not in ("fedavg", "median", "trimmed"):
            raise ValueError(
                f"rule {self.rule!r} is not coordinate-wise; chunked rules: fedavg, median, trimmed:<k>"
            )
        n = len(self.samples)
        self.base = r.base
        self.trim = n // 4 if r.base == "median" else min(r.params[0], (n - 1) // 2) if r.params else 0
        cap = exact.lower_median(self.samples)
        self.weights = [max(1, min(s, cap)) for s in self.samples]
        self.kept = np.zeros(n, dtype=np.int64)

    def __call__(self, chunks: list[np.ndarray]) -> np.ndarray:
        n = len(chunks)
        self.size += len(chunks[0])
        if self.base == "fedavg":
            return exact.weighted_mean(chunks, self.weights)
        if self.trim and n > 2 * self.trim:  # rulebook._kept's ranks, counted per chunk
            ranks = np.argsort(np.argsort(np.stack(chunks), axis=0, kind="stable"), axis=0, kind="stable")
            self.kept += ((ranks >= self.trim) & (ranks < n - self.trim)).sum(axis=1)
        if self.base == "median":
            return aggregation.coordinate_median([[c] for c in chunks])[0]
        return aggregation.trimmed_mean([[c] for c in chunks], self.trim)[0]

    def influence(self) -> list[int]:
        n = len(self.samples)
        if self.base == "fedavg":
            return [exact.fraction(w, max(self.weights)) for w in self.weights]
        if self.trim == 0 or n <= 2 * self.trim:
            return [exact.ONE] * n
        return [exact.fraction(int(k) * n, (self.size or 1) * (n - 2 * self.trim)) for k in self.kept]


def aggregate(
    streams: Sequence[ValueStream | ValueReader],
    rule: ChunkRule,
    sink: AggregateSink,
    size: int = CHUNK_VALUES,
) -> str:
    """Apply `rule` to the streams chunk by chunk into `sink`; returns the aggregate's digest."""
    for chunks in lockstep(streams, size):
        sink.write(rule(chunks))
    return sink.close()
