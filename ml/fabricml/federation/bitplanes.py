"""The blocks of fabricml.wire/v1 (still read, and written on request): every value of a
block zigzag-mapped (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...) and stored in the fewest bits
that hold the block's largest value: the low whole bytes of each value, then one
bit-plane (LSB first) for each remaining high bit, padded to whole bytes with zeros.

Decoding is a dozen NumPy passes: the planes go through a 256-entry table that spreads
one plane byte (bit j of 8 values) into those 8 values' bit j, one byte each."""

from __future__ import annotations

import numpy as np

_ONE = np.uint64(1)
_POWERS = np.array([1 << j for j in range(64)], dtype=np.uint64)  # bits(x) = #{j: x >= 2**j}


def zigzag(v: np.ndarray) -> np.ndarray:
    s = np.asarray(v, dtype=np.int64)
    return (s.view(np.uint64) << _ONE) ^ (s >> 63).view(np.uint64)


def bit_lengths(rows: np.ndarray) -> np.ndarray:
    """Bits needed for the largest value of each row of zigzag values."""
    top = rows.max(axis=1)
    bits: np.ndarray = (top[:, None] >= _POWERS[None, :]).sum(axis=1)
    return bits


def block_size(count: int, bits: int) -> int:
    whole, rest = divmod(bits, 8)
    return count * whole + rest * ((count + 7) // 8)


def pack_rows(u: np.ndarray, bits: int) -> np.ndarray:
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


def _spread_table() -> np.ndarray:
    """Byte x to the u64 whose byte i is bit i of x: one bit-plane byte (8 values' bit j)
    becomes those 8 values' bit j side by side, one byte each, in a single lookup."""
    x = np.arange(256, dtype=np.uint64)
    spread = np.zeros(256, dtype=np.uint64)
    for i in range(8):
        spread |= ((x >> np.uint64(i)) & _ONE) << np.uint64(8 * i)
    return spread


_PLANE_TABLES = [_spread_table() << np.uint64(j) for j in range(8)]


def _top_bits(planes: np.ndarray, count: int) -> np.ndarray:
    """(rows, rest, ceil(count/8)) bit-plane bytes to (rows, count) uint8 high bits."""
    rows, rest, plane = planes.shape
    top = np.take(_PLANE_TABLES[0], planes[:, 0, :])
    spare = np.empty_like(top)
    for j in range(1, rest):
        top |= np.take(_PLANE_TABLES[j], planes[:, j, :], out=spare)
    return top.view(np.uint8).reshape(rows, plane * 8)[:, :count]


def _low_bytes(low: np.ndarray, count: int, whole: int, dtype: type[np.unsignedinteger]) -> np.ndarray:
    """(rows, count*whole) little-endian bytes to (rows, count) integers of `dtype`."""
    rows = low.shape[0]
    if whole in (1, 2, 4, 8):
        return np.ascontiguousarray(low).view(f"<u{whole}").astype(dtype)
    octets = np.zeros((rows, count, np.dtype(dtype).itemsize), dtype=np.uint8)
    octets[:, :, :whole] = low.reshape(rows, count, whole)
    return octets.view(dtype).reshape(rows, count)


def _misspelt(bodies: np.ndarray, planes: np.ndarray, count: int, bits: int) -> str | None:
    """Why the blocks are not the one spelling of their values (non-zero padding, a width
    wider than the largest value needs), or None."""
    whole, rest = divmod(bits, 8)
    if rest and count % 8 and (planes[:, :, -1] >> (count % 8)).any():
        return "padding bits after a block are not zero"
    if rest:
        used = planes[:, rest - 1, :].max(axis=1) > 0  # someone needs the top bit
    else:  # the top byte of some value has its high bit set
        used = bodies[:, : count * whole].reshape(-1, count, whole)[:, :, whole - 1].max(axis=1) >= 128
    return None if used.all() else f"a block is spelled with {bits} bits where fewer hold its values"


def decode_rows(bodies: np.ndarray, count: int, bits: int, out: np.ndarray) -> str | None:
    """Block bodies (rows, block_size(count, bits)) of one width to int64 values in `out`
    (rows, count), in 32-bit lanes when the width allows; returns why the bytes are not
    the canonical spelling, or None."""
    if bits == 0:
        out[...] = 0
        return None
    whole, rest = divmod(bits, 8)
    planes = bodies[:, count * whole :].reshape(len(bodies), rest, (count + 7) // 8)
    if why := _misspelt(bodies, planes, count, bits):
        return why
    lane = np.uint32 if bits <= 32 else np.uint64
    signed = np.int32 if bits <= 32 else np.int64
    u = _low_bytes(bodies[:, : count * whole], count, whole, lane) if whole else None
    if rest:
        top = _top_bits(planes, count).astype(lane)
        if u is None:
            u = top
        else:
            np.left_shift(top, 8 * whole, out=top)
            u |= top
    assert u is not None
    width = 8 * np.dtype(lane).itemsize
    sign = np.left_shift(u.view(signed), width - 1)  # the zigzag's low bit, spread to all bits
    np.right_shift(sign, width - 1, out=sign)
    np.right_shift(u, 1, out=u)
    np.bitwise_xor(u.view(signed), sign, out=out)
    return None
