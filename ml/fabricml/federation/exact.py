"""Exact integer arithmetic on flat fixed-point vectors: inner products, norms, distances,
cosines, scaling and weighted means, the same on every machine and never overflowing.

Inner products are exact integers, with no bits dropped, computed in int64 where a bound
proves no partial sum can overflow: when max|a| * max|b| * n < 2**63, NumPy's int64 dot
over blocks of n values, the block sums added as Python integers (the common case: trained
updates are far below the fixed-point bound). Otherwise every value is split into two
18-bit limbs (|x| < 2**36, so each limb product is below 2**37) summed over cache-sized
blocks (below 2**53) and combined as Python integers. Divisions round to the nearest integer, halves away from
zero, so a negated input gives exactly the negated output."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from .fixedpoint import Update

MAX_ABS = 1 << 36  # values this module multiplies must stay below this magnitude
LIMB = 18
LIMB_BLOCK = 1 << 15  # limbs of this many values stay in the CPU's cache
INT64_MAX = (1 << 63) - 1
MIN_BLOCK = 1 << 12  # below this, int64 blocks cost more Python than the limbs' extra work
DISTANCE_BLOCK = 1 << 16  # differences are formed this many values at a time
FRACTION_BITS = 24  # factors in [0, 1] are carried as num / 2**FRACTION_BITS
ONE = 1 << FRACTION_BITS
MAX_WEIGHT_TOTAL = 1 << 26  # MAX_WEIGHT_TOTAL * MAX_ABS < 2**63: weighted sums fit in int64
MEAN_SLICE = 1 << 15  # coordinates of every input a weighted mean sums at a time


def flatten(update: Sequence[np.ndarray]) -> np.ndarray:
    """The update as one int64 vector: the vector itself for an update `backed` made
    (read-only, so no caller can change the update through it), else a copy."""
    whole = _backing(update)
    if whole is not None:
        return whole
    return (
        np.concatenate([np.asarray(a, dtype=np.int64).ravel() for a in update])
        if update
        else np.zeros(0, np.int64)
    )


def backed(flat: np.ndarray, shapes: Sequence[Sequence[int]]) -> Update:
    """An update of these shapes as views of one flat int64 vector, made read-only: an
    11 M-parameter update decoded from a file is then held once, not once more by
    flatten."""
    if flat.dtype != np.int64 or flat.ndim != 1 or not flat.flags.c_contiguous:
        raise ValueError("backed needs one contiguous flat int64 vector")
    if sum(math.prod(s) for s in shapes) != flat.size:
        raise ValueError(f"{flat.size} values do not fill the shapes {list(shapes)}")
    flat.flags.writeable = False
    return _split(flat, shapes)


def _split(vector: np.ndarray, shapes: Sequence[Sequence[int]]) -> Update:
    """Consecutive views of `vector` in these shapes."""
    out, offset = [], 0
    for s in shapes:
        n = math.prod(s)
        out.append(vector[offset : offset + n].reshape(tuple(s)))
        offset += n
    return out


def backing(update: Sequence[np.ndarray]) -> np.ndarray | None:
    """The read-only flat vector an update `backed` made is views of, or None."""
    return _backing(update)


def _backing(update: Sequence[np.ndarray]) -> np.ndarray | None:
    """The read-only flat vector `update` is consecutive views of, covering all of it."""
    base = update[0].base if update else None
    if not isinstance(base, np.ndarray) or base.ndim != 1 or base.dtype != np.int64 or base.flags.writeable:
        return None
    at = base.ctypes.data
    for a in update:
        if a.base is not base or a.dtype != np.int64 or not a.flags.c_contiguous or a.ctypes.data != at:
            return None
        at += a.nbytes
    return base if at == base.ctypes.data + base.nbytes else None


def views(vector: np.ndarray, like: Sequence[np.ndarray]) -> Update:
    """The vector in the shapes of `like`, as views (for callers that only read them)."""
    return _split(vector, [a.shape for a in like])


def unflatten(vector: np.ndarray, like: Sequence[np.ndarray]) -> Update:
    return [v.copy() for v in views(vector, like)]


def _magnitude(v: np.ndarray) -> int:
    """max |v|, refusing values of 2**36 or more (max and min, not abs: abs(-2**63) < 0)."""
    if not v.size:
        return 0
    high, low = int(v.max()), int(v.min())
    if high >= MAX_ABS or low <= -MAX_ABS:
        raise ValueError("a value of magnitude 2**36 or more reached exact arithmetic")
    return max(high, -low)


def _check(v: np.ndarray) -> None:
    _magnitude(v)


def _limb_dot(a: np.ndarray, b: np.ndarray) -> int:
    """The exact inner product of values below 2**36 in magnitude, by 18-bit limbs."""
    total, mask, same = 0, (1 << LIMB) - 1, a is b
    for start in range(0, a.size, LIMB_BLOCK):
        x = a[start : start + LIMB_BLOCK]
        xh, xl = np.right_shift(x, LIMB), np.bitwise_and(x, mask)
        if same:  # a square: the two middle products are one
            high, middle, low = int(np.dot(xh, xh)), 2 * int(np.dot(xh, xl)), int(np.dot(xl, xl))
        else:
            y = b[start : start + LIMB_BLOCK]
            yh, yl = np.right_shift(y, LIMB), np.bitwise_and(y, mask)
            high, low = int(np.dot(xh, yh)), int(np.dot(xl, yl))
            middle = int(np.dot(xh, yl)) + int(np.dot(xl, yh))
        total += (high << (2 * LIMB)) + (middle << LIMB) + low
    return total


def dot(a: np.ndarray, b: np.ndarray) -> int:
    """The exact inner product of two int64 vectors."""
    if a.shape != b.shape:
        raise ValueError(f"vectors of {a.size} and {b.size} values have no inner product")
    ma = _magnitude(a)
    mb = ma if b is a else _magnitude(b)
    if ma == 0 or mb == 0:
        return 0
    # Any partial sum of `block` products is at most block * ma * mb <= 2**63 - 1 in
    # magnitude, whatever order np.dot adds them in: int64 holds it exactly.
    block = INT64_MAX // (ma * mb)
    if block < MIN_BLOCK:
        return _limb_dot(a, b)
    if block >= a.size:
        return int(np.dot(a, b))
    return sum(int(np.dot(a[s : s + block], b[s : s + block])) for s in range(0, a.size, block))


def sum_squares(v: np.ndarray) -> int:
    return dot(v, v)


def norm(v: np.ndarray) -> int:
    """The L2 norm, rounded down to an integer (fixed-point units)."""
    return math.isqrt(sum_squares(v))


def squared_distance(a: np.ndarray, b: np.ndarray) -> int:
    """sum_squares(a - b), block by block: no difference vector of the full size is made."""
    if a.shape != b.shape:
        raise ValueError(f"vectors of {a.size} and {b.size} values have no distance")
    x, y = a.reshape(-1), b.reshape(-1)
    return sum(
        sum_squares(x[s : s + DISTANCE_BLOCK] - y[s : s + DISTANCE_BLOCK])
        for s in range(0, x.size, DISTANCE_BLOCK)
    )


def cosine(a: np.ndarray, b: np.ndarray, scale: int) -> int:
    """cos(a, b) * scale, rounded toward minus infinity; 0 when either vector is zero."""
    den = math.isqrt(sum_squares(a) * sum_squares(b))
    return 0 if den == 0 else scale * dot(a, b) // den


DIV_SLICE = 1 << 15  # values div_nearest rounds at a time: its scratch stays in cache


def div_nearest(num: np.ndarray, den: int, out: np.ndarray | None = None) -> np.ndarray:
    """num / den rounded to nearest, halves away from zero (den > 0). `out` (num itself,
    say, when the caller no longer needs it) receives the result.

    Each cache-sized slice whose values all have |a| + den // 2 <= 2**63 - 1 (max and min
    checked) takes _div_floor, the rest (and anything not a contiguous int64 array) the
    formula _div_int spells out, |a| + den // 2 wrapping as int64 does."""
    den = int(den)
    if den <= 0:
        raise ValueError(f"division by {den}")
    num = np.asarray(num)
    plain = num.dtype == np.int64 and num.ndim > 0 and num.flags.c_contiguous
    if not plain or (out is not None and not out.flags.c_contiguous) or den > INT64_MAX:
        return _div_int(num, den, out)
    result = np.empty(num.shape, dtype=np.int64) if out is None else out
    flat_num, flat_out = num.reshape(-1), result.reshape(-1)
    scratch = np.empty(min(flat_num.size, DIV_SLICE), dtype=np.int64)
    limit = INT64_MAX - den // 2
    for s in range(0, flat_num.size, DIV_SLICE):
        a, into = flat_num[s : s + DIV_SLICE], flat_out[s : s + DIV_SLICE]
        if int(a.max()) > limit or int(a.min()) < -limit:
            _div_int(a, den, into)
        else:
            _div_floor(a, den, into, scratch)
    return result


def _div_floor(a: np.ndarray, den: int, into: np.ndarray, scratch: np.ndarray) -> None:
    """div_nearest of flat int64 values with |a| + den // 2 <= 2**63 - 1 (the caller
    knows), into `into` (a itself allowed), as one floor division (a shift for a power of
    two) of a + h, h = den // 2, less 1 where a < 0 and den is even.

    Why it equals sign(a) * floor((|a| + h) / den): for a >= 0 it is that. For a < 0,
    -floor((h - a) / den) = ceil((a - h) / den) = floor((a - h + den - 1) / den), and
    -h + den - 1 is h - 1 for an even den, h for an odd one (den = 2h + 1). No sum
    overflows: a + h <= 2**63 - 1, and a + h - 1 >= a for h >= 1. NumPy's int64 floor
    division by a scalar is exact (and fast); the arithmetic right shift floors alike.
    tests/unit/test_outcome_work.py compares it with _div_int at halves and the limit."""
    half, t = den // 2, scratch[: a.size]
    np.add(a, half, out=t)
    if not den & 1:
        t += a >> 63  # -1 where a < 0 (a temporary: `a` may be `into`, read once more below)
    if den & (den - 1):
        np.floor_divide(t, den, out=into)
    else:
        np.right_shift(t, den.bit_length() - 1, out=into)


def _div_int(num: np.ndarray, den: int, out: np.ndarray | None = None) -> np.ndarray:
    """div_nearest in int64 alone: sign(a) * ((|a| + den // 2) // den), a shift for a power
    of two (an arithmetic shift floors exactly alike, faster); |a| + den // 2 wraps as
    int64 does."""
    negative = np.asarray(num) < 0  # before `out` may overwrite num
    result: np.ndarray = np.abs(num, out=np.empty(np.shape(num), dtype=np.int64) if out is None else out)
    result += den // 2
    if den & (den - 1):
        result //= den
    else:
        result >>= den.bit_length() - 1
    np.negative(result, out=result, where=negative)
    return result


def fraction(num: int, den: int) -> int:
    """min(1, num / den) as a factor in units of ONE (den > 0, num >= 0)."""
    return ONE if num >= den else (num << FRACTION_BITS) // den


def scale(v: np.ndarray, factor: int, out: np.ndarray | None = None) -> np.ndarray:
    """v * factor / ONE, rounded to nearest, for a factor in [0, ONE]; into `out` if given
    (v itself, say, when the caller no longer needs it)."""
    if not 0 <= factor <= ONE:
        raise ValueError(f"factor {factor} is outside [0, {ONE}]")
    _check(v)
    product = np.multiply(v, np.int64(factor), out=out)  # |v| < 2**36, factor <= 2**24: below 2**60
    return div_nearest(product, ONE, out=product)


def clip(
    v: np.ndarray,
    radius: int,
    known_norm: int | None = None,
    copy: bool = True,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """v scaled down to L2 norm at most `radius`; returns it and the factor used.
    `known_norm`: norm(v), when the caller computed it already. copy=False returns v
    itself when it needs no scaling (for callers that only read the result); `out`
    receives a scaled result (v itself, when the caller no longer needs it)."""
    n = norm(v) if known_norm is None else known_norm
    factor = ONE if n <= radius else fraction(radius, n)
    if factor == ONE:
        return (v.copy() if copy else v), factor
    return scale(v, factor, out), factor


Slices = Callable[[int, np.ndarray], None]  # (start, final values there) of a vector being made


def weighted_mean(
    vectors: Sequence[np.ndarray], weights: Sequence[int], each_slice: Slices | None = None
) -> np.ndarray:
    """sum(w * v) / sum(w), rounded to nearest; weights are non-negative integers, not all
    zero. Weights are shifted right (all by the same bits) until their total is at most
    MAX_WEIGHT_TOTAL, so the int64 sum cannot overflow. `each_slice` is shown every slice
    of the result once it is final (while it and the inputs' slices are in cache)."""
    if len(vectors) != len(weights) or not vectors or any(w < 0 for w in weights) or not any(weights):
        raise ValueError("a weighted mean needs one non-negative weight per vector, not all zero")
    ws = list(weights)
    while sum(ws) > MAX_WEIGHT_TOTAL:
        ws = [w >> 1 for w in ws]
    if not any(ws):  # only if one weight dwarfs all others by 2**26: keep the largest
        ws = [1 if w == max(weights) else 0 for w in weights]
    common = math.gcd(*ws)  # the same quotient with fewer multiplications (none for equal weights)
    ws = [w // common for w in ws]
    terms = [(np.asarray(v), w) for v, w in zip(vectors, ws, strict=True) if w]
    shape = terms[0][0].shape
    if any(v.shape != shape for v, _ in terms):
        raise ValueError(f"a weighted mean needs vectors of one shape, not {[v.shape for v, _ in terms]}")
    flat = [(v.reshape(-1), np.int64(w)) for v, w in terms]
    acc = np.empty(flat[0][0].size, dtype=np.int64)
    spare = np.empty(min(acc.size, MEAN_SLICE), dtype=np.int64)
    scratch = np.empty(min(acc.size, MEAN_SLICE), dtype=np.int64)
    total = sum(ws)
    for s in range(0, acc.size, MEAN_SLICE):  # a slice of every input at a time: it stays in cache
        part = acc[s : s + MEAN_SLICE]
        for i, (v, w) in enumerate(flat):
            x = v[s : s + MEAN_SLICE]
            _check(x)  # every input's bound, checked here while in cache
            term = x if w == 1 else np.multiply(x, w, out=part if i == 0 else spare[: len(x)])
            if i == 0:
                if term is x:
                    np.copyto(part, x)
            else:
                np.add(part, term, out=part)
        # |sum| < 2**36 * MAX_WEIGHT_TOTAL = 2**62: _div_floor needs no further check
        _div_floor(part, total, part, scratch)
        if each_slice is not None:
            each_slice(s, part)
    return acc.reshape(shape)


def lower_median(values: Sequence[int]) -> int:
    s = sorted(values)
    return s[(len(s) - 1) // 2]
