"""A compact, exact wire format for fixed-point updates: what travels between orgs.

fixedpoint.to_bytes spends 8 bytes on every value; updates need about 20 bits. Every
block of BLOCK_VALUES values is stored in the fewest units that hold its values:
  v2 (what writers produce): whole bytes, two's complement (fabricml.federation.bytewidth),
     decoded by a sign-extending cast or two NumPy passes: about 3 bytes a value for a
     trained update;
  v1 (still read): zigzag-mapped (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...), the fewest bits
     that hold the block's largest value: the low whole bytes of each value, then one
     bit-plane (LSB first) for each remaining high bit: about 2.6 bytes a value, a dozen
     NumPy passes to decode.
The bytes are a pure function of the values (no compressor whose output could change
between library versions), so a commitment to them is well defined, and decoding refuses
any other spelling of the same values. Encode and decode stream block by block in
bounded memory; UpdateReader.read_into decodes straight into the caller's buffer.

Layout (integers little-endian):
  u32 n | n bytes of canonical JSON header {"format", "scaleBits", "shapes", "blockValues",
  "context"?} | per block of m values: u8 code, body | checksum of all before
    (v1: 32-byte SHA-256; v2: 4-byte CRC-32)
  v1 code: bits; body: m*(bits//8) bytes, then (bits%8) planes of ceil(m/8) bytes
  v2 code: bytes per value w; body: m*w bytes (bytewidth)
The header carries the same binding context as fixedpoint's (task, round, participant,
dataset, nonce), so the bytes stay bound to who committed them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from math import prod
from typing import Any, BinaryIO

import numpy as np

from . import bitplanes, bytewidth, fixedpoint
from .fixedpoint import SCALE_BITS, Update

FORMAT = "fabricml.wire/v2"  # what writers produce
FORMAT_V1 = "fabricml.wire/v1"
FORMATS = (FORMAT_V1, FORMAT)  # what readers accept
INT64_FORMAT = "fabricml.fixedpoint/v1"  # fixedpoint.to_bytes
BLOCK_VALUES = 4096
MAX_HEADER_BYTES = 1 << 20
CHUNK_VALUES = 1 << 20
READ_AHEAD = 1 << 21  # bytes read from the input at a time, into each of two buffers
BATCH_BLOCKS = 16  # blocks decoded together: 64 Ki values, whose temporaries stay in cache


class WireError(ValueError):
    """The bytes are not a well-formed, intact update in this format (says what is wrong)."""


def pack_blocks(values: np.ndarray, kind: str = FORMAT) -> bytes:
    """Blocks of BLOCK_VALUES values (the last may be shorter), each as a u8 code (v1:
    bits, v2: bytes per value) and its body."""
    v = np.ascontiguousarray(values, dtype=np.int64).ravel()
    full = len(v) // BLOCK_VALUES
    rows = [v[: full * BLOCK_VALUES].reshape(full, BLOCK_VALUES)]
    if len(v) % BLOCK_VALUES:
        rows.append(v[full * BLOCK_VALUES :].reshape(1, -1))
    out: list[bytes] = []
    for r in rows:
        if kind == FORMAT_V1:
            r = bitplanes.zigzag(r)
            codes = bitplanes.bit_lengths(r) if r.size else np.zeros(len(r), dtype=np.int64)
        else:
            codes = bytewidth.widths(r)
        bodies: list[bytes] = [b""] * len(r)
        for c in np.unique(codes):
            idx = np.flatnonzero(codes == c)
            packed = (bitplanes if kind == FORMAT_V1 else bytewidth).pack_rows(r[idx], int(c))
            for k, body in zip(idx, packed, strict=True):
                bodies[k] = bytes([int(c)]) + body.tobytes()
        out += bodies
    return b"".join(out)


def _header_bytes(
    shapes: Sequence[Sequence[int]], context: dict[str, Any] | None, kind: str = FORMAT
) -> bytes:
    head: dict[str, Any] = {
        "format": kind, "scaleBits": SCALE_BITS, "shapes": [list(map(int, s)) for s in shapes],
        "blockValues": BLOCK_VALUES,
    }  # fmt: skip
    if context:
        head["context"] = context
    raw = json.dumps(head, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    if len(raw) > MAX_HEADER_BYTES:
        raise WireError(f"update header is {len(raw)} bytes; at most {MAX_HEADER_BYTES}")
    return len(raw).to_bytes(4, "little") + raw


def _check_header(head: Any) -> dict[str, Any]:
    if not isinstance(head, dict) or head.get("format") not in FORMATS:
        raise WireError(f"not an update in {' or '.join(FORMATS)}")
    if head.get("scaleBits") != SCALE_BITS or head.get("blockValues") != BLOCK_VALUES:
        raise WireError(
            f"{head['format']} with scale 2**{SCALE_BITS} and {BLOCK_VALUES}-value blocks expected"
        )
    shapes = head.get("shapes")
    ok = isinstance(shapes, list) and all(
        isinstance(s, list) and all(type(d) is int and 0 <= d < 1 << 40 for d in s) for s in shapes
    )
    if not ok:
        raise WireError("update header's shapes must be lists of non-negative integers")
    return head


class UpdateWriter:
    """Writes an update's values in order, as they come (any number at a time)."""

    def __init__(
        self,
        out: BinaryIO,
        shapes: Sequence[Sequence[int]],
        context: dict[str, Any] | None = None,
        kind: str = FORMAT,
    ):
        if kind not in FORMATS:
            raise WireError(f"cannot write {kind}; formats: {', '.join(FORMATS)}")
        self.out, self.hash, self.kind = out, checksum(kind), kind
        self.total = sum(prod(s) for s in shapes)
        self.written = 0
        self._pending = np.empty(0, dtype=np.int64)
        self._emit(_header_bytes(shapes, context, kind))

    def _emit(self, data: bytes) -> None:
        self.out.write(data)
        self.hash.update(data)

    def write(self, values: np.ndarray) -> None:
        v = np.ascontiguousarray(values, dtype=np.int64).ravel()
        if self.written + len(v) > self.total:
            raise WireError(f"more values than the shapes hold ({self.total})")
        self.written += len(v)
        if len(self._pending):
            v = np.concatenate([self._pending, v])
        full = len(v) - len(v) % BLOCK_VALUES
        if full:
            self._emit(pack_blocks(v[:full], self.kind))
        self._pending = v[full:].copy()

    def close(self) -> None:
        if self.written != self.total:
            raise WireError(f"{self.written} values written; the shapes hold {self.total}")
        if len(self._pending):
            self._emit(pack_blocks(self._pending, self.kind))
        self.out.write(self.hash.digest())


def hasher() -> ThreadPoolExecutor:
    """One thread checksums every reader's bytes (and chunked's aggregate digests), in the
    order they were submitted (hashlib and zlib let go of the GIL), while the caller's
    thread decodes. A forked child gets its own (the parent's thread is not in it)."""
    global _HASH_THREAD
    with _HASH_LOCK:  # fetch threads ask at once: two pools would hash one reader out of order
        if _HASH_THREAD is None or _HASH_THREAD[0] != os.getpid():
            _HASH_THREAD = os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="wire-checksum")
        return _HASH_THREAD[1]


_HASH_THREAD: tuple[int, ThreadPoolExecutor] | None = None
_HASH_LOCK = threading.Lock()


class Crc32:
    """v2's checksum, with hashlib's update/digest: CRC-32 (zlib's), 4 bytes little-endian."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes | memoryview) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "little")


def checksum(kind: str) -> hashlib._Hash | Crc32:
    """The trailer's checksum for a format. Neither is a signature (anyone can recompute
    it): it catches truncation and corruption; what binds the bytes is the SHA-256 of all
    of them on the ledger. v1's SHA-256 cost more than decoding v2 itself."""
    return hashlib.sha256() if kind == FORMAT_V1 else Crc32()


class _HashedInput:
    """An update's bytes, read ahead into two buffers in turn and hashed as they are
    consumed (never the trailing checksum): while the caller decodes one buffer, the
    hashing thread works through the other's bytes. The checksum is chosen once the
    header is read (it fits in the first read-ahead, so nothing was hashed before)."""

    def __init__(self, inp: BinaryIO) -> None:
        self.inp = inp
        self.check: hashlib._Hash | Crc32 | None = None
        self._spare = bytearray()  # the other buffer, and the hashing of its bytes
        self._spare_hashed: Future[None] | None = None
        self.data, self.pos, self.end, self.eof = bytearray(), 0, 0, False

    def have(self, n: int) -> int:
        """Bytes available from the current position, reading ahead until `n` are or the input ends."""
        if self.end - self.pos < n and not self.eof:
            self._refill(max(n, READ_AHEAD))
        return self.end - self.pos

    def _refill(self, want: int) -> None:
        if self.check is None and self.pos:
            raise WireError("update header does not fit in the first read")  # MAX_HEADER_BYTES < READ_AHEAD
        done = hasher().submit(self.check.update, memoryview(self.data)[: self.pos]) if self.check else None
        if self._spare_hashed is not None:
            self._spare_hashed.result()  # its bytes are hashed: it may be overwritten
        fresh = self._spare if len(self._spare) >= want else bytearray(want)
        tail = self.end - self.pos
        fresh[:tail] = self.data[self.pos : self.end]
        got = tail
        while got < want and not self.eof:
            n = self._read_into(memoryview(fresh)[got:want])
            self.eof, got = n == 0, got + n
        self._spare, self._spare_hashed = self.data, done
        self.data, self.pos, self.end = fresh, 0, got

    def _read_into(self, view: memoryview) -> int:
        readinto = getattr(self.inp, "readinto", None)
        if readinto is not None:
            return int(readinto(view))
        piece = self.inp.read(len(view))
        view[: len(piece)] = piece
        return len(piece)

    def take(self, n: int, what: str) -> bytes:
        if self.have(n) < n:
            raise WireError(f"update bytes end inside the {what} ({self.have(n)} of {n} bytes)")
        data = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return data

    def consume(self, n: int) -> None:
        self.pos += n

    def digest(self) -> bytes:
        assert self.check is not None
        if self._spare_hashed is not None:
            self._spare_hashed.result()
        self.check.update(memoryview(self.data)[: self.pos])
        self.data, self.pos, self.end = self.data[self.pos : self.end], 0, self.end - self.pos
        return self.check.digest()


@dataclass
class Run:
    """Consecutive blocks of one width and length: where the first body starts (past the
    reader's position), bits per value, values per block, blocks."""

    at: int
    bits: int
    count: int
    rows: int


class UpdateReader:
    """Reads an update back, straight into the caller's buffers (read_into) or in chunks;
    the last values come only after the checksum matched, so a tampered or truncated
    stream raises before it ends."""

    def __init__(self, inp: BinaryIO) -> None:
        self.src = _HashedInput(inp)
        self.src.have(4 + MAX_HEADER_BYTES)  # the header is read whole before any hashing
        n = int.from_bytes(self.src.take(4, "header length"), "little")
        if n > MAX_HEADER_BYTES:
            raise WireError(f"update header claims {n} bytes; at most {MAX_HEADER_BYTES}")
        raw = self.src.take(n, "header")
        try:
            head = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise WireError("update header is not JSON") from None
        self.header = _check_header(head)
        self.v1 = self.header["format"] == FORMAT_V1
        self.src.check = checksum(self.header["format"])
        self.shapes: list[tuple[int, ...]] = [tuple(s) for s in self.header["shapes"]]
        self.context: dict[str, Any] = self.header.get("context", {})
        self.total = sum(prod(s) for s in self.shapes)
        self.decoded = self.given = 0  # values decoded from the bytes / handed to the caller
        self._carry = np.empty(0, dtype=np.int64)  # decoded, not yet handed out (< one block)
        self._ended = False

    @property
    def remaining(self) -> int:
        return self.total - self.given

    def read_into(self, out: np.ndarray) -> int:
        """Decode the next values into `out` (flat, int64) and return how many: len(out),
        or what remains if fewer. The update's last values come only after its checksum matched."""
        n = min(len(out), self.remaining)
        filled = self._from_carry(out[:n])
        while filled < n:
            filled += self._decode_some(out[filled:n])
        self.given += n
        if self.given == self.total and not self._ended:
            self._check_end()
        return n

    def _from_carry(self, out: np.ndarray) -> int:
        k = min(len(out), len(self._carry))
        out[:k] = self._carry[:k]
        self._carry = self._carry[k:]
        return k

    def _decode_some(self, out: np.ndarray) -> int:
        """Whole blocks straight into `out` (a block that does not fit goes to the carry)."""
        runs, length = self._next_blocks(len(out))
        if runs[0].count > len(out):
            self._carry = np.empty(runs[0].count, dtype=np.int64)
            self._decode_blocks(runs, self._carry)
            self.src.consume(length)
            return self._from_carry(out)
        written = self._decode_blocks(runs, out)
        self.src.consume(length)
        return written

    def _next_blocks(self, room: int) -> tuple[list[Run], int]:
        """The next blocks, as many as fit in `room` values (at least one, at most
        BATCH_BLOCKS), as runs of one width and length, and their bytes in all."""
        if room >= BATCH_BLOCKS * BLOCK_VALUES and self.total - self.decoded >= BATCH_BLOCKS * BLOCK_VALUES:
            uniform = self._uniform_batch()
            if uniform:
                return uniform
        runs: list[Run] = []
        at, start = 0, self.decoded
        while sum(r.rows for r in runs) < BATCH_BLOCKS and start < self.total:
            count = min(BLOCK_VALUES, self.total - start)
            if runs and count > room:
                break
            bits = self._code_at(at, start)
            size = self._size(count, bits)
            if (got := self.src.have(at + 1 + size) - at - 1) < size:
                raise WireError(
                    f"update bytes end inside the block at value {start} ({got + 1} of {size + 1} bytes)"
                )
            if runs and (runs[-1].bits, runs[-1].count) == (bits, count):
                runs[-1].rows += 1
            else:
                runs.append(Run(at + 1, bits, count, 1))
            at, start, room = at + 1 + size, start + count, room - count
        self.decoded = start
        return runs, at

    def _code_at(self, at: int, start: int) -> int:
        """The block's first byte: bits (v1) or bytes (v2) per value."""
        if self.src.have(at + 1) < at + 1:
            raise WireError(f"update bytes end inside the block at value {start} (0 of 1 bytes)")
        code = self.src.data[self.src.pos + at]
        if self.v1 and code > 64:
            raise WireError(f"the block at value {start} claims {code} bits per value; at most 64 exist")
        if not self.v1 and code not in bytewidth.WIDTHS:
            raise WireError(
                f"the block at value {start} claims {code} bytes per value; widths: {bytewidth.WIDTHS}"
            )
        return code

    def _size(self, count: int, code: int) -> int:
        return bitplanes.block_size(count, code) if self.v1 else count * code

    def _decode_rows(self, bodies: np.ndarray, count: int, code: int, out: np.ndarray) -> None:
        if why := (bitplanes if self.v1 else bytewidth).decode_rows(bodies, count, code, out):
            raise WireError(why)

    def _uniform_batch(self) -> tuple[list[Run], int] | None:
        """BATCH_BLOCKS full blocks of the width of the next one, if they all are (found by
        one look at their width bytes, not block by block)."""
        bits = self._code_at(0, self.decoded)
        step = 1 + self._size(BLOCK_VALUES, bits)
        if self.src.have(BATCH_BLOCKS * step) < BATCH_BLOCKS * step:
            return None
        data = np.frombuffer(self.src.data, dtype=np.uint8)[self.src.pos :]
        heads = np.ndarray((BATCH_BLOCKS,), np.uint8, data, strides=(step,))
        if (heads != bits).any():
            return None
        self.decoded += BATCH_BLOCKS * BLOCK_VALUES
        return [Run(1, bits, BLOCK_VALUES, BATCH_BLOCKS)], BATCH_BLOCKS * step

    def _decode_blocks(self, runs: list[Run], out: np.ndarray) -> int:
        """Decode consecutive runs into `out` (a run's bodies are the rows of a strided view
        of the bytes: no copy)."""
        data = np.frombuffer(self.src.data, dtype=np.uint8)[self.src.pos :]
        written = 0
        for run in runs:
            size = self._size(run.count, run.bits)
            rows = np.ndarray((run.rows, size), np.uint8, data, run.at, (size + 1, 1))
            self._decode_rows(
                rows,
                run.count,
                run.bits,
                out[written : written + run.rows * run.count].reshape(run.rows, run.count),
            )
            written += run.rows * run.count
        return written

    def _check_end(self) -> None:
        self._ended = True
        digest = self.src.digest()
        available = self.src.have(len(digest) + 1)
        if self.src.data[self.src.pos : self.src.pos + len(digest)] != digest:
            raise WireError("update bytes are tampered or truncated: their checksum does not match")
        if available > len(digest):
            raise WireError("update bytes go on after their checksum")

    def chunks(self, values: int = CHUNK_VALUES) -> Iterator[np.ndarray]:
        """Flat int64 chunks of `values` values (the last may be shorter), in order, each a
        new array; the last one only after the checksum matched."""
        if values < 1:
            raise ValueError(f"chunks need at least one value, got {values}")
        if self.total == 0 and not self._ended:
            self._check_end()
        while self.remaining:
            out = np.empty(min(values, self.remaining), dtype=np.int64)
            self.read_into(out)
            yield out

    def read(self) -> Update:
        flat = np.empty(self.remaining, dtype=np.int64)
        self.read_into(flat)
        if self.total == 0 and not self._ended:
            self._check_end()
        out, offset = [], 0
        for shape in self.shapes:
            n = prod(shape)
            out.append(flat[offset : offset + n].reshape(shape))
            offset += n
        return out


def encode_to(
    update: Sequence[np.ndarray], out: BinaryIO, context: dict[str, Any] | None = None, kind: str = FORMAT
) -> None:
    writer = UpdateWriter(out, [np.shape(a) for a in update], context, kind)
    for a in update:
        flat = np.asarray(a).ravel()
        for i in range(0, len(flat), CHUNK_VALUES):
            writer.write(flat[i : i + CHUNK_VALUES])
    writer.close()


def to_bytes(
    update: Sequence[np.ndarray], context: dict[str, Any] | None = None, kind: str = FORMAT
) -> bytes:
    buf = io.BytesIO()
    encode_to(update, buf, context, kind)
    return buf.getvalue()


def from_bytes(raw: bytes) -> Update:
    return UpdateReader(io.BytesIO(raw)).read()


def header(raw: bytes) -> dict[str, Any]:
    return UpdateReader(io.BytesIO(raw)).header


def decode_any(raw: bytes) -> tuple[dict[str, Any], Update]:
    """(header, values) of an update in this format or in fixedpoint's int64 one, so that
    readers accept both while writers move over."""
    n = int.from_bytes(raw[:4], "little")
    try:
        kind = json.loads(raw[4 : 4 + n]).get("format") if len(raw) >= 4 else None
    except (ValueError, UnicodeDecodeError, AttributeError):
        kind = None
    if kind == INT64_FORMAT:
        return fixedpoint.header(raw), fixedpoint.from_bytes(raw)
    reader = UpdateReader(io.BytesIO(raw))
    return reader.header, reader.read()
