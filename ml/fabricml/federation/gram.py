"""Exact inner products among a few flat vectors of one size (a round's updates, its
voting units and its step), all from one pass over them a cache-sized block at a time,
for the outcome's norms, cosines and distances: each vector is read once, not once per
product, and each product is the exact integer fabricml.federation.exact gives.

For a few products (at most twice the vectors, plus INT_PAIRS) in a block where int64
cannot overflow (max|x|**2 * len < 2**63), each is one int64 dot (faster than converting
the block). For more, in a block where every value is small (max|x|**2 * len <= 2**53)
the products are one float64 matrix product of the block's rows: every partial sum is an
integer below 2**53, so float64 holds it exactly whatever order BLAS adds in. Otherwise
each product takes exact.dot's int64 or limb path for the block. A Gram made with `known`
takes the products an earlier one holds (the near-duplicate merge's, for the outcome's).
A vector not given, or holding a value of magnitude 2**36 or more, is answered by
fabricml.federation.exact itself (which refuses it with the same error as before);
vectors are told apart by identity and must not change while the Gram is in use."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from . import exact

BLOCK = 1 << 15  # values of every vector at a time: they stay in cache together
EXACT_FLOAT = 1 << 53  # integers up to this magnitude are exact in float64
MIN_FLOAT_ROWS = 1 << 8  # below this, a matrix product per few values costs more than int64
INT_PAIRS = 4  # products beyond twice the vectors by this take one float64 matrix product


def _magnitude(v: np.ndarray) -> int:
    """max |v| as a Python integer (max and min, not abs: abs(-2**63) < 0); no refusal."""
    return max(int(v.max()), -int(v.min())) if v.size else 0


def _float_rows(m: int, size: int) -> int:
    """The most values (a power of two, at most `size` rounded up) whose products of
    magnitude m*m sum below 2**53; 0 when that is too few to pay."""
    if m == 0:
        return 1 << max(0, (size - 1).bit_length())
    rows = 1 << ((EXACT_FLOAT // (m * m)).bit_length() - 1) if m * m <= EXACT_FLOAT else 0
    return min(rows, 1 << max(0, (size - 1).bit_length())) if rows >= MIN_FLOAT_ROWS else 0


def _float_gram(blocks: Sequence[np.ndarray], rows: int) -> np.ndarray:
    """The blocks' Gram matrix (int64), exact: float64 products of `rows` values at a time
    (each below 2**53, so exact), summed in int64 (a block sums at most 2**53 * BLOCK / rows)."""
    k, n = len(blocks), len(blocks[0])
    padded = -(-n // rows) * rows
    x = np.zeros((k, padded), dtype=np.float64)
    for i, b in enumerate(blocks):
        x[i, :n] = b
    stacked = x.reshape(k, padded // rows, rows).transpose(1, 0, 2)
    parts = np.matmul(stacked, stacked.transpose(0, 2, 1))
    return parts.astype(np.int64).sum(axis=0)  # type: ignore[no-any-return]


def _exact_dot(a: np.ndarray, b: np.ndarray, ma: int, mb: int) -> int:
    """exact.dot of one block whose magnitudes are known (any below 2**36)."""
    if ma == 0 or mb == 0:
        return 0
    if ma * mb * len(a) <= exact.INT64_MAX:
        return int(np.dot(a, b))
    return exact._limb_dot(a, b)


class Gram:
    """Every vector's sum of squares and the inner products of the pairs asked for (by
    position in `vectors`; default: all pairs), computed at construction."""

    def __init__(
        self,
        vectors: Iterable[np.ndarray],
        pairs: Iterable[tuple[int, int]] | None = None,
        known: Gram | None = None,
    ) -> None:
        """`known`: an earlier Gram whose products of the same vectors (by identity) are
        taken from it instead of computed again."""
        self.vectors: list[np.ndarray] = []
        where = []  # each given vector's place among the distinct ones
        for v in vectors:
            same = [i for i, w in enumerate(self.vectors) if w is v]
            if not same:
                self.vectors.append(v)
            where.append(same[0] if same else len(self.vectors) - 1)
        n = len(self.vectors)
        size = self.vectors[0].size if self.vectors else 0
        self._usable = [
            v.dtype == np.int64 and v.ndim == 1 and v.size == size and v.flags.c_contiguous
            for v in self.vectors
        ]
        wanted = (
            [(i, j) for i in range(n) for j in range(i + 1, n)]
            if pairs is None
            else [(where[i], where[j]) for i, j in pairs]
        )
        self._pairs = sorted({(min(p), max(p)) for p in wanted} | {(i, i) for i in range(n)})
        self._pairs = [p for p in self._pairs if self._usable[p[0]] and self._usable[p[1]]]
        self.magnitudes = [0] * n
        self._sums = {p: 0 for p in self._pairs}
        todo = self._pairs if known is None else self._reuse(known)
        if todo:
            self._pass(size, todo)
        for i in range(n):  # beyond exact's range: exact answers (and refuses) itself
            self._usable[i] = self._usable[i] and self.magnitudes[i] < exact.MAX_ABS

    @classmethod
    def given(
        cls, vectors: Sequence[np.ndarray], sums: dict[tuple[int, int], int], magnitudes: list[int]
    ) -> Gram:
        """A Gram of distinct vectors whose products (by position, i <= j) and magnitudes
        were computed elsewhere, exactly (StepFeed)."""
        g = cls([])
        g.vectors, g.magnitudes, g._sums = list(vectors), list(magnitudes), dict(sums)
        g._pairs = sorted(sums)
        g._usable = [m < exact.MAX_ABS for m in magnitudes]
        return g

    def _reuse(self, known: Gram) -> list[tuple[int, int]]:
        """Takes the products `known` holds (and the magnitudes of their vectors); returns
        the pairs left to compute."""
        there = [known._index(v) for v in self.vectors]
        todo = []
        for i, j in self._pairs:
            a, b = there[i], there[j]
            product = None if a is None or b is None else known._sums.get((min(a, b), max(a, b)))
            if product is None:
                todo.append((i, j))
                continue
            self._sums[i, j] = product
            for k, at in ((i, a), (j, b)):
                self.magnitudes[k] = known.magnitudes[at]  # type: ignore[index]
        return todo

    def _pass(self, size: int, pairs: list[tuple[int, int]]) -> None:
        members = sorted({i for p in pairs for i in p})
        at = {i: k for k, i in enumerate(members)}
        few = len(pairs) <= 2 * len(members) + INT_PAIRS  # int64 dots then beat one float product
        for s in range(0, size, BLOCK):
            blocks = [self.vectors[i][s : s + BLOCK] for i in members]
            mags = [_magnitude(b) for b in blocks]
            for i, m in zip(members, mags, strict=True):
                self.magnitudes[i] = max(self.magnitudes[i], m)
            top = max(mags)
            rows = (
                0
                if few and top * top * len(blocks[0]) <= exact.INT64_MAX
                else _float_rows(top, len(blocks[0]))
            )
            gram = _float_gram(blocks, rows) if rows else None
            for i, j in pairs:
                x, y = at[i], at[j]
                if gram is not None:
                    self._sums[i, j] += int(gram[x, y])
                elif max(mags[x], mags[y]) < exact.MAX_ABS:
                    self._sums[i, j] += _exact_dot(blocks[x], blocks[y], mags[x], mags[y])

    def _index(self, v: np.ndarray) -> int | None:
        for i, w in enumerate(self.vectors):
            if w is v:
                return i if self._usable[i] else None
        return None

    def _known(self, a: np.ndarray, b: np.ndarray) -> int | None:
        i, j = self._index(a), self._index(b)
        if i is None or j is None:
            return None
        return self._sums.get((min(i, j), max(i, j)))

    def dot(self, a: np.ndarray, b: np.ndarray) -> int:
        known = self._known(a, b)
        return exact.dot(a, b) if known is None else known

    def sum_squares(self, v: np.ndarray) -> int:
        return self.dot(v, v)

    def norm(self, v: np.ndarray) -> int:
        return math.isqrt(self.sum_squares(v))

    def cosine(self, a: np.ndarray, b: np.ndarray, scale: int) -> int:
        """exact.cosine."""
        if self._known(a, b) is None:
            return exact.cosine(a, b, scale)
        den = math.isqrt(self.sum_squares(a) * self.sum_squares(b))
        return 0 if den == 0 else scale * self.dot(a, b) // den

    def squared_distance(self, a: np.ndarray, b: np.ndarray) -> int:
        """exact.squared_distance: |a|**2 + |b|**2 - 2 a.b, where no difference can reach
        2**36 (exact.squared_distance would refuse one)."""
        i, j, known = self._index(a), self._index(b), self._known(a, b)
        if i is None or j is None or known is None:
            return exact.squared_distance(a, b)
        if self.magnitudes[i] + self.magnitudes[j] >= exact.MAX_ABS:
            return exact.squared_distance(a, b)
        return self.sum_squares(a) + self.sum_squares(b) - 2 * known


class StepFeed:
    """The exact products of a vector made a slice at a time (the aggregate, its slices
    shown in order by exact.weighted_mean's each_slice) with itself and with fixed vectors
    (the units'), taken while the slices are in cache instead of in a pass of their own.
    `gram(step)` holds them with the vectors' squares from `known`, or is None when the
    slices shown were not exactly step's, whole and in order (another rule made it)."""

    def __init__(self, vectors: Sequence[np.ndarray], known: Gram) -> None:
        self.vectors, self.known = list(vectors), known
        where = [known._index(v) for v in self.vectors]
        # a bound per vector (its max |x|, from known), valid for every slice of it
        self.bounds = [exact.MAX_ABS if i is None else known.magnitudes[i] for i in where]
        self.sums = [0] * (len(self.vectors) + 1)  # with each vector, then with itself
        self.at, self.magnitude, self.ok = 0, 0, bool(self.vectors)
        self.owner: object = None

    def __call__(self, start: int, part: np.ndarray) -> None:
        if not self.ok or start != self.at or (self.owner is not None and part.base is not self.owner):
            self.ok = False
            return
        m = _magnitude(part)
        if m >= exact.MAX_ABS or max(self.bounds) >= exact.MAX_ABS:
            self.ok = False  # exact refuses such values itself: let it, in outcome_gram
            return
        for k, v in enumerate(self.vectors):
            self.sums[k] += _exact_dot(part, v[start : start + part.size], m, self.bounds[k])
        self.sums[-1] += _exact_dot(part, part, m, m)
        self.at, self.magnitude, self.owner = start + part.size, max(self.magnitude, m), part.base

    def gram(self, step: np.ndarray) -> Gram | None:
        whole = step.base if step.base is not None else step
        if not self.ok or step.ndim != 1 or self.at != step.size or whole is not self.owner:
            return None
        distinct, sums, magnitudes = [step], {(0, 0): self.sums[-1]}, [self.magnitude]
        for v, product in zip(self.vectors, self.sums, strict=False):
            square, i = self.known._known(v, v), self.known._index(v)
            if square is None or i is None:
                return None
            j = next((k for k, w in enumerate(distinct) if w is v), len(distinct))
            if j == len(distinct):
                distinct.append(v)
                magnitudes.append(self.known.magnitudes[i])
            sums[0, j], sums[j, j] = product, square
        return Gram.given(distinct, sums, magnitudes)
