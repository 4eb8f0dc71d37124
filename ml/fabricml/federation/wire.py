"""A compact, exact wire format for fixed-point updates: what travels between orgs.

fixedpoint.to_bytes spends 8 bytes on every value; updates need about 20 bits. Here each
value is zigzag-mapped (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...) and every block of
BLOCK_VALUES values is stored with the fewest bits that hold its largest value: the low
whole bytes of each value, then one bit-plane (LSB first) for each remaining high bit. The bytes are
a pure function of the values (no compressor whose output could change between library
versions), so a commitment to them is well defined, and decoding refuses any other
spelling of the same values. Encode and decode stream block by block in bounded memory.

Layout (integers little-endian):
  u32 n | n bytes of canonical JSON header {"format", "scaleBits", "shapes", "blockValues",
  "context"?} | per block of m values: u8 bits, m*(bits//8) bytes, (bits%8) planes of
  ceil(m/8) bytes | 32-byte SHA-256 of all that came before
The header carries the same binding context as fixedpoint's (task, round, participant,
dataset, nonce), so the bytes stay bound to who committed them.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from math import prod
from typing import Any, BinaryIO

import numpy as np

from . import fixedpoint
from .fixedpoint import SCALE_BITS, Update

FORMAT = "fabricml.wire/v1"
INT64_FORMAT = "fabricml.fixedpoint/v1"  # fixedpoint.to_bytes
BLOCK_VALUES = 4096
MAX_HEADER_BYTES = 1 << 20
CHUNK_VALUES = 1 << 20
_ONE = np.uint64(1)
_POWERS = np.array([1 << j for j in range(64)], dtype=np.uint64)  # bits(x) = #{j: x >= 2**j}


class WireError(ValueError):
    """The bytes are not a well-formed, intact update in this format (says what is wrong)."""


def zigzag(v: np.ndarray) -> np.ndarray:
    s = np.asarray(v, dtype=np.int64)
    return (s.view(np.uint64) << _ONE) ^ (s >> 63).view(np.uint64)


def unzigzag(u: np.ndarray) -> np.ndarray:
    half = (u >> _ONE).view(np.int64)
    sign = (u & _ONE).view(np.int64)
    np.negative(sign, out=sign)  # 0 or -1 (all ones)
    np.bitwise_xor(half, sign, out=half)
    return half


def _bit_lengths(rows: np.ndarray) -> np.ndarray:
    """Bits needed for the largest value of each row of zigzag values."""
    top = rows.max(axis=1)
    bits: np.ndarray = (top[:, None] >= _POWERS[None, :]).sum(axis=1)
    return bits


def block_size(count: int, bits: int) -> int:
    whole, rest = divmod(bits, 8)
    return count * whole + rest * ((count + 7) // 8)


def _pack_rows(u: np.ndarray, bits: int) -> np.ndarray:
    """Rows of zigzag values, all of one width, to rows of bytes (each row one block body):
    the low whole bytes of each value, then one bit-plane per remaining high bit."""
    rows, count = u.shape
    whole, rest = divmod(bits, 8)
    octets = u.view(np.uint8).reshape(rows, count, 8)
    parts = [octets[:, :, :whole].reshape(rows, count * whole)]
    top = octets[:, :, whole] if rest else None
    for j in range(rest):
        assert top is not None
        parts.append(np.packbits((top >> j) & 1, axis=1, bitorder="little"))
    return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


def _unpack_rows(bodies: np.ndarray, count: int, bits: int) -> np.ndarray:
    """The inverse of _pack_rows; refuses non-zero padding and needlessly wide spellings."""
    rows = bodies.shape[0]
    whole, rest = divmod(bits, 8)
    low = bodies[:, : count * whole]
    if whole in (1, 2, 4, 8):  # the common widths: read the low bytes as one integer each
        u = np.ascontiguousarray(low).view(f"<u{whole}").astype(np.uint64)
    else:
        octets = np.zeros((rows, count, 8), dtype=np.uint8)
        octets[:, :, :whole] = low.reshape(rows, count, whole)
        u = octets.view(np.uint64).reshape(rows, count)
    plane = (count + 7) // 8
    top = np.zeros((rows, count), dtype=np.uint8)
    for j in range(rest):
        start = count * whole + j * plane
        bits_j = np.unpackbits(bodies[:, start : start + plane], axis=1, bitorder="little")
        if bits_j[:, count:].any():
            raise WireError("padding bits after a block are not zero")
        top |= bits_j[:, :count] << j
    if rest:
        u |= top.astype(np.uint64) << np.uint64(8 * whole)
    if (_bit_lengths(u) != bits).any():
        raise WireError(f"a block is spelled with {bits} bits where fewer hold its values")
    return u


def pack_blocks(values: np.ndarray) -> bytes:
    """Blocks of BLOCK_VALUES values (the last may be shorter), each as u8 bits + body."""
    u = zigzag(np.ascontiguousarray(values, dtype=np.int64).ravel())
    full = len(u) // BLOCK_VALUES
    rows = [u[: full * BLOCK_VALUES].reshape(full, BLOCK_VALUES)]
    if len(u) % BLOCK_VALUES:
        rows.append(u[full * BLOCK_VALUES :].reshape(1, -1))
    out: list[bytes] = []
    for r in rows:
        bits = _bit_lengths(r) if r.size else np.zeros(len(r), dtype=np.int64)
        bodies: list[bytes] = [b""] * len(r)
        for b in np.unique(bits):
            idx = np.flatnonzero(bits == b)
            for k, body in zip(idx, _pack_rows(r[idx], int(b)), strict=True):
                bodies[k] = bytes([int(b)]) + body.tobytes()
        out += bodies
    return b"".join(out)


def unpack_blocks(blocks: list[tuple[int, bytes]], count: int) -> np.ndarray:
    """(bits, body) of consecutive blocks of `count` values each, to their int64 values."""
    bits = np.array([b for b, _ in blocks])
    u = np.empty((len(blocks), count), dtype=np.uint64)
    for b in np.unique(bits):
        idx = np.flatnonzero(bits == b)
        bodies = np.frombuffer(b"".join(blocks[k][1] for k in idx), dtype=np.uint8)
        u[idx] = _unpack_rows(bodies.reshape(len(idx), -1), count, int(b))
    return unzigzag(u.ravel())


def _header_bytes(shapes: Sequence[Sequence[int]], context: dict[str, Any] | None) -> bytes:
    head: dict[str, Any] = {
        "format": FORMAT, "scaleBits": SCALE_BITS, "shapes": [list(map(int, s)) for s in shapes],
        "blockValues": BLOCK_VALUES,
    }  # fmt: skip
    if context:
        head["context"] = context
    raw = json.dumps(head, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    if len(raw) > MAX_HEADER_BYTES:
        raise WireError(f"update header is {len(raw)} bytes; at most {MAX_HEADER_BYTES}")
    return len(raw).to_bytes(4, "little") + raw


def _check_header(head: Any) -> dict[str, Any]:
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise WireError(f"not a {FORMAT} update")
    if head.get("scaleBits") != SCALE_BITS or head.get("blockValues") != BLOCK_VALUES:
        raise WireError(f"{FORMAT} with scale 2**{SCALE_BITS} and {BLOCK_VALUES}-value blocks expected")
    shapes = head.get("shapes")
    ok = isinstance(shapes, list) and all(
        isinstance(s, list) and all(type(d) is int and 0 <= d < 1 << 40 for d in s) for s in shapes
    )
    if not ok:
        raise WireError("update header's shapes must be lists of non-negative integers")
    return head


class UpdateWriter:
    """Writes an update's values in order, as they come (any number at a time)."""

    def __init__(self, out: BinaryIO, shapes: Sequence[Sequence[int]], context: dict[str, Any] | None = None):
        self.out, self.hash = out, hashlib.sha256()
        self.total = sum(prod(s) for s in shapes)
        self.written = 0
        self._pending = np.empty(0, dtype=np.int64)
        self._emit(_header_bytes(shapes, context))

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
            self._emit(pack_blocks(v[:full]))
        self._pending = v[full:].copy()

    def close(self) -> None:
        if self.written != self.total:
            raise WireError(f"{self.written} values written; the shapes hold {self.total}")
        if len(self._pending):
            self._emit(pack_blocks(self._pending))
        self.out.write(self.hash.digest())


class UpdateReader:
    """Reads an update back in chunks of values; the last chunk comes only after the
    checksum matched, so a tampered or truncated stream raises before it ends."""

    def __init__(self, inp: BinaryIO) -> None:
        self.inp, self.hash = inp, hashlib.sha256()
        n = int.from_bytes(self._take(4, "header length"), "little")
        if n > MAX_HEADER_BYTES:
            raise WireError(f"update header claims {n} bytes; at most {MAX_HEADER_BYTES}")
        raw = self._take(n, "header")
        try:
            head = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise WireError("update header is not JSON") from None
        self.header = _check_header(head)
        self.shapes: list[tuple[int, ...]] = [tuple(s) for s in self.header["shapes"]]
        self.context: dict[str, Any] = self.header.get("context", {})
        self.total = sum(prod(s) for s in self.shapes)

    def _take(self, n: int, what: str) -> bytes:
        data = self.inp.read(n)
        if len(data) != n:
            raise WireError(f"update bytes end inside the {what} ({len(data)} of {n} bytes)")
        self.hash.update(data)
        return data

    def _blocks(self, values: int) -> Iterator[tuple[np.ndarray, bool]]:
        """Runs of whole blocks of at least `values` values, and whether each run is the last."""
        start = 0
        while start < self.total:
            run: list[tuple[int, bytes]] = []
            first = start
            while start < self.total and (start - first < values or not run):
                where = f"block at value {start}"
                bits = self._take(1, where)[0]
                if bits > 64:
                    raise WireError(f"the {where} claims {bits} bits per value; at most 64 exist")
                count = min(BLOCK_VALUES, self.total - start)
                run.append((bits, self._take(block_size(count, bits), where)))
                start += count
                if count < BLOCK_VALUES:
                    break
            full = run if (start - first) % BLOCK_VALUES == 0 else run[:-1]
            parts = [unpack_blocks(full, BLOCK_VALUES)] if full else []
            if len(full) < len(run):
                parts.append(unpack_blocks(run[-1:], (start - first) % BLOCK_VALUES))
            yield np.concatenate(parts) if len(parts) > 1 else parts[0], start == self.total

    def _check_end(self) -> None:
        if self.inp.read(32) != self.hash.digest():
            raise WireError("update bytes are tampered or truncated: their checksum does not match")
        if self.inp.read(1):
            raise WireError("update bytes go on after their checksum")

    def chunks(self, values: int = CHUNK_VALUES) -> Iterator[np.ndarray]:
        """Flat int64 chunks of about `values` values, in order; the last one only after the
        checksum matched, so a consumer that reaches the end has intact values."""
        for chunk, last in self._blocks(values):
            if last:
                self._check_end()
            yield chunk
        if self.total == 0:
            self._check_end()

    def read(self) -> Update:
        flat = np.concatenate([np.empty(0, np.int64), *self.chunks()])
        out, offset = [], 0
        for shape in self.shapes:
            n = prod(shape)
            out.append(flat[offset : offset + n].reshape(shape))
            offset += n
        return out


def encode_to(update: Sequence[np.ndarray], out: BinaryIO, context: dict[str, Any] | None = None) -> None:
    writer = UpdateWriter(out, [np.shape(a) for a in update], context)
    for a in update:
        flat = np.asarray(a).ravel()
        for i in range(0, len(flat), CHUNK_VALUES):
            writer.write(flat[i : i + CHUNK_VALUES])
    writer.close()


def to_bytes(update: Sequence[np.ndarray], context: dict[str, Any] | None = None) -> bytes:
    buf = io.BytesIO()
    encode_to(update, buf, context)
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
