"""A task's aggregation rule: its grammar, and applying it to a round's voting units with
the documented fallbacks, so a rule never fails because participants dropped out.

Grammar: [MIXING "+"] BASE ["+normbound"]
  MIXING  nnm (nearest-neighbour mixing) | bucket:<s> (buckets of s, a permutation all
          orgs derive from the round's updates)
  BASE    fedavg | median | trimmed:<k> | krum:<f>:<m> | cc[:<iterations>] (centered
          clipping) | fltrust (trust-weighted against the reference direction)
  +normbound scales every input down to the median input norm first.
Fallbacks with few inputs: trimmed:k trims at most (n-1)//2 per side; krum tolerates at
most n-3 and keeps between 1 and n-f (with fewer than 3 inputs: median); bucket:0 means
buckets of 1; fltrust with no input along the reference takes a zero step."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from . import aggregation as classic
from .exact import ONE, Slices, clip, cosine, fraction, lower_median, norm, weighted_mean
from .reference import Direction, resolve
from .rules.clipping import ITERATIONS, centered_clipping
from .rules.mixing import bucketing, nearest_neighbour_mixing
from .rules.result import Aggregated
from .rules.trust import trust_weighted

RULES = (
    "[nnm+ | bucket:<s>+] fedavg | median | trimmed:<k> | krum:<f>:<m> | cc[:<iterations>] | fltrust "
    "[+normbound]"
)
DEFAULT_RULE = "trust+cc"
_PATTERN = re.compile(
    r"^(?P<gate>trust\+)?(?:(?P<mix>nnm|bucket:(?P<size>[0-9]{1,2}))\+)?"
    r"(?P<base>fedavg|median|trimmed:[0-9]{1,2}|krum:[0-9]{1,2}:[0-9]{1,2}|cc(?::[0-9]{1,2})?|fltrust)"
    r"(?P<bound>\+normbound)?$"
)


@dataclass(frozen=True)
class Rule:
    mixing: str  # "", "nnm" or "bucket"
    bucket_size: int
    base: str  # fedavg, median, trimmed, krum, cc, fltrust
    params: tuple[int, ...]
    normbound: bool
    gate: bool = False  # leave out inputs that do not point along the reference


def parse(rule: str) -> Rule:
    m = _PATTERN.match(rule)
    if not m:
        raise ValueError(f"unknown aggregation rule {rule!r}; allowed: {RULES}")
    name, *params = m["base"].split(":")
    mix = "bucket" if m["size"] else (m["mix"] or "")
    params_ = tuple(int(p) for p in params)
    return Rule(mix, int(m["size"] or 0), name, params_, bool(m["bound"]), bool(m["gate"]))


def _kept(vectors: Sequence[np.ndarray], trim: int) -> list[int]:
    """Per input, the share of coordinates where it is not among the `trim` lowest or
    highest (ties by input order), relative to the share a typical input keeps."""
    n = len(vectors)
    if trim == 0 or n <= 2 * trim:
        return [ONE] * n
    ranks = np.argsort(np.argsort(np.stack(vectors), axis=0, kind="stable"), axis=0, kind="stable")
    kept = ((ranks >= trim) & (ranks < n - trim)).sum(axis=1)
    size = vectors[0].size or 1
    return [fraction(int(k) * n, size * (n - 2 * trim)) for k in kept]


def _median(vectors: Sequence[np.ndarray]) -> np.ndarray:
    return classic.coordinate_median([[v] for v in vectors])[0]


def _base(
    rule: Rule,
    vectors: Sequence[np.ndarray],
    samples: Sequence[int],
    reference: Direction,
    each_slice: Slices | None = None,
) -> Aggregated:
    n = len(vectors)
    if rule.base == "fedavg":
        cap = lower_median(samples)  # a minority cannot raise the median: no one buys the aggregate
        weights = [max(1, min(s, cap)) for s in samples]
        mean = weighted_mean(vectors, weights, each_slice)
        return Aggregated(mean, [fraction(w, max(weights)) for w in weights])
    if rule.base == "median" or (rule.base == "krum" and n < 3):
        return Aggregated(_median(vectors), _kept(vectors, n // 4))
    if rule.base == "trimmed":
        trim = min(rule.params[0], (n - 1) // 2)
        return Aggregated(classic.trimmed_mean([[v] for v in vectors], trim)[0], _kept(vectors, trim))
    if rule.base == "krum":
        byzantine = min(rule.params[0], n - 3)
        keep = max(1, min(rule.params[1], n - byzantine))
        chosen = classic.krum_selection([[v] for v in vectors], byzantine, keep)
        return Aggregated(weighted_mean([vectors[i] for i in chosen], [1] * len(chosen), each_slice),
                          [ONE if i in chosen else 0 for i in range(n)])  # fmt: skip
    center = resolve(reference)
    center = center if center is not None else _median(vectors)
    if rule.base == "cc":
        return centered_clipping(vectors, center, rule.params[0] if rule.params else ITERATIONS)
    return trust_weighted(vectors, center)


def aggregate(
    rule: Rule,
    vectors: Sequence[np.ndarray],
    samples: Sequence[int],
    reference: Direction,
    seed: bytes,
    each_slice: Slices | None = None,
) -> Aggregated:
    """Apply `rule` to one flat vector per voting unit (at least one). `reference` is the
    round's agreed direction, if any (or a callable that makes it: only rules that read it
    call it); `seed` fixes the buckets. `each_slice` is shown the aggregate's slices once
    final, by the rules that end in a weighted mean (fedavg, krum); the others ignore it."""
    if not vectors:
        raise ValueError("aggregation needs at least one update")
    if rule.gate:
        direction = resolve(reference)
        direction = direction if direction is not None else _median(vectors)
        along = [i for i, v in enumerate(vectors) if cosine(v, direction, ONE) > 0]
        kept = along or list(range(len(vectors)))  # none along it: the reference says nothing
        inner = aggregate(replace(rule, gate=False), [vectors[i] for i in kept], [samples[i] for i in kept],
                          reference, seed, each_slice)  # fmt: skip
        influence = [0] * len(vectors)
        for i, inf in zip(kept, inner.influence, strict=True):
            influence[i] = inf
        return Aggregated(inner.vector, influence)
    factors = [ONE] * len(vectors)
    if rule.normbound:
        norms = [norm(v) for v in vectors]
        radius = lower_median(norms)
        bounded = [clip(v, radius, n) for v, n in zip(vectors, norms, strict=True)]
        vectors, factors = [v for v, _ in bounded], [f for _, f in bounded]
    groups = [[i] for i in range(len(vectors))]
    if rule.mixing == "nnm":
        vectors, _ = nearest_neighbour_mixing(vectors)  # input i stays at position i
    elif rule.mixing == "bucket":
        vectors, groups = bucketing(vectors, max(1, rule.bucket_size), seed)
    mixed_samples = [sum(samples[i] for i in g) for g in groups]
    out = _base(rule, vectors, mixed_samples, reference, each_slice)
    influence = [0] * len(factors)
    for g, inf in zip(groups, out.influence, strict=True):
        for i in g:
            influence[i] = factors[i] * inf // ONE
    return Aggregated(out.vector, influence)
