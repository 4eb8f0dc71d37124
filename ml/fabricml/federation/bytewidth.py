"""The blocks of fabricml.wire/v2: every value of a block in the same number of whole
bytes, two's complement, so that decoding is a sign-extending cast or two NumPy passes
(v1's bit-planes need a dozen).

A block of m values has a width w in WIDTHS, the fewest bytes that hold all its values,
and a body of m*w bytes: for w in 1, 2, 4, 8 the values as little-endian signed
integers of w bytes; for w = 3 or 6 the low 2 or 4 bytes of every value (unsigned), then
the high 1 or 2 bytes of every value (signed). A body decodes to one set of values and
those values encode to it alone (the width must be the fewest that hold them)."""

from __future__ import annotations

import numpy as np

WIDTHS = (0, 1, 2, 3, 4, 6, 8)  # bytes per value
SPLIT = {3: (2, 1), 6: (4, 2)}  # width: (low unsigned bytes, high signed bytes)


def _range(width: int) -> tuple[int, int]:
    """[low, high) of the values `width` bytes hold."""
    return (0, 1) if width == 0 else (-(1 << (8 * width - 1)), 1 << (8 * width - 1))


def widths(rows: np.ndarray) -> np.ndarray:
    """The width of each row of int64 values (rows with no values: 0)."""
    if rows.shape[1] == 0:
        return np.zeros(len(rows), dtype=np.int64)
    low, high = rows.min(axis=1), rows.max(axis=1)
    out = np.full(len(rows), WIDTHS[-1], dtype=np.int64)
    for w in reversed(WIDTHS[:-1]):  # narrowest last, so it wins
        lo, hi = _range(w)
        out[(low >= lo) & (high < hi)] = w
    return out


def pack_rows(rows: np.ndarray, width: int) -> np.ndarray:
    """Rows of int64 values that `width` bytes hold, to rows of body bytes."""
    n = len(rows)
    if width in SPLIT:
        low, high = SPLIT[width]
        lows = (rows & ((1 << (8 * low)) - 1)).astype(f"<u{low}").view(np.uint8).reshape(n, -1)
        highs = (rows >> (8 * low)).astype(f"<i{high}").view(np.uint8).reshape(n, -1)
        return np.concatenate([lows, highs], axis=1)
    if width == 0:
        return np.zeros((n, 0), dtype=np.uint8)
    return rows.astype(f"<i{width}").view(np.uint8).reshape(n, -1)


def decode_rows(bodies: np.ndarray, count: int, width: int, out: np.ndarray) -> str | None:
    """Block bodies (rows, count*width bytes) to int64 values in `out` (rows, count);
    returns why the bytes are not the canonical spelling (a width wider than the values
    need), or None."""
    if width == 0:
        out[...] = 0
        return None
    if width in SPLIT:
        low, high = SPLIT[width]
        lows = np.ascontiguousarray(bodies[:, : count * low]).view(f"<u{low}")
        highs = np.ascontiguousarray(bodies[:, count * low :]).view(f"<i{high}")
        np.left_shift(highs, 8 * low, out=out, dtype=np.int64)
        np.bitwise_or(out, lows, out=out)
    else:
        np.copyto(out, np.ascontiguousarray(bodies).view(f"<i{width}"))
    lo, hi = _range(WIDTHS[WIDTHS.index(width) - 1])
    if ((out.min(axis=1) < lo) | (out.max(axis=1) >= hi)).all():
        return None
    return f"a block is spelled with {width} bytes a value where fewer hold its values"
