"""Rounds for the outcome identity test (test_outcome_identity.py): inputs built from
SHA-256 counter streams (the same on every machine and NumPy version), with extreme values,
ties and adversarial updates, and the summary of an outcome that the test compares.

`python -m tests.unit.outcome_cases` rewrote tests/unit/data/outcome_identity.json with
the implementation at commit b5fcef3 (before the vectorised exact arithmetic); run it
again only to add cases, from that commit, never from the code under test."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fabricml.federation.evidence import History
from fabricml.federation.fixedpoint import BOUND, Update, digest
from fabricml.federation.outcome import RoundInputs, RoundOutcome, compute_outcome
from fabricml.federation.payload import Screened

FIXTURE = Path(__file__).parent / "data" / "outcome_identity.json"
SHAPES = [(30, 40), (40,), (3, 40), (3,)]  # 1363 values, like an MLP's four tensors
SIZE = sum(int(np.prod(s)) for s in SHAPES)


def stream(label: str, count: int, span: int) -> np.ndarray:
    """`count` int64 values in [-span, span], fixed by `label` alone."""
    raw = hashlib.shake_256(label.encode()).digest(8 * count)
    values = np.frombuffer(raw, dtype="<u8") % np.uint64(2 * span + 1)
    return values.astype(np.int64) - np.int64(span)


def split(vector: np.ndarray) -> Update:
    out, offset = [], 0
    for s in SHAPES:
        n = int(np.prod(s))
        out.append(vector[offset : offset + n].reshape(s).copy())
        offset += n
    return out


def honest(label: str, n: int, span: int = 1 << 18, spread: int = 1 << 17) -> list[np.ndarray]:
    """n updates sharing a direction, each with its own noise."""
    mu = stream(f"{label}/mu", SIZE, span)
    return [mu + stream(f"{label}/{i}", SIZE, spread) for i in range(n)]


def keys(n: int, org: int = 1) -> list[str]:
    return [f"Org{org + i}MSP/trainer" for i in range(n)]


Case = tuple[str, str, Callable[[], dict[str, Any]]]


def _round(vectors: dict[str, np.ndarray], **kw: Any) -> dict[str, Any]:
    return {"updates": {k: split(v) for k, v in vectors.items()}, **kw}


def _plain(n: int, span: int = 1 << 18, spread: int = 1 << 17) -> Callable[[], dict[str, Any]]:
    return lambda: _round(dict(zip(keys(n), honest(f"plain{n}/{span}", n, span, spread), strict=True)))


def _attacked() -> dict[str, Any]:
    h = honest("attacked", 7)
    mean = np.stack(h).sum(axis=0) // 7
    v = dict(zip(keys(7), h, strict=True))
    v["Org8MSP/trainer"] = -3 * h[0]  # sign flip
    v["Org9MSP/trainer"] = 10 * h[1]  # scaling
    v["Org10MSP/trainer"] = -mean // 2  # inner-product manipulation
    v["Org11MSP/trainer"] = mean - (h[2] - mean)  # mirrored
    return _round(v)


def _extreme() -> dict[str, Any]:
    """Values at the fixed-point bound: products and norms far beyond int64."""
    v = {k: np.clip(x * (1 << 14), -BOUND, BOUND) for k, x in zip(keys(5), honest("extreme", 5), strict=True)}
    v["Org6MSP/trainer"] = np.full(SIZE, BOUND, dtype=np.int64)
    v["Org7MSP/trainer"] = np.full(SIZE, -BOUND, dtype=np.int64)
    v["Org8MSP/trainer"] = np.where(np.arange(SIZE) % 2 == 0, BOUND, -BOUND).astype(np.int64)
    return _round(v)


def _ties() -> dict[str, Any]:
    """Equal norms (permutations of one vector), equal values (copies), near-duplicates."""
    base = honest("ties", 1)[0]
    v = {k: np.roll(base, 7 * i) for i, k in enumerate(keys(4))}
    v["Org5MSP/trainer"] = base[::-1].copy()
    v["Org6MSP/trainer"] = base.copy()  # the same values as Org1: both flagged
    v["Org7MSP/trainer"] = np.roll(base, 3) + 1  # a near-duplicate of no one in particular
    v["Org8MSP/trainer"] = np.roll(base, 3) + 2
    v["Org9MSP/trainer"] = np.zeros(SIZE, dtype=np.int64)  # free rider
    return _round(v)


def _sybils() -> dict[str, Any]:
    """Orgs with several identities, one pointing away, plus bad shapes and values."""
    h = honest("sybils", 9)
    v = {f"Org1MSP/t{i}": h[i] for i in range(3)}
    v["Org1MSP/t3"] = -h[3]
    v.update({f"Org2MSP/t{i}": h[4 + i] for i in range(2)})
    v.update(dict(zip(keys(3, org=3), h[6:], strict=True)))
    out = _round(v)
    out["updates"]["Org6MSP/trainer"] = [np.zeros(3, dtype=np.int64)]
    out["updates"]["Org7MSP/trainer"] = split(np.full(SIZE, BOUND + 1, dtype=np.int64))
    out["updates"]["Org8MSP/trainer"] = split(np.full(SIZE, np.iinfo(np.int64).min, dtype=np.int64))
    out["invalid"] = {"Org9MSP/trainer": "its bytes do not match its commitment"}
    return out


def _all_bad() -> dict[str, Any]:
    out = _round({"Org1MSP/trainer": np.zeros(SIZE, dtype=np.int64)})
    out["updates"]["Org2MSP/trainer"] = split(np.full(SIZE, -BOUND - 1, dtype=np.int64))
    return out


def _with_previous(kind: str) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        h = honest(f"prev/{kind}", 6)
        out = _round(dict(zip(keys(6), h, strict=True)))
        step = np.stack(h).sum(axis=0) // 6
        out["previous"] = split(-step if kind == "away" else step // 3)
        if kind == "root":
            out["roots"] = {f"Org{i}MSP": split(step + stream(f"root{i}", SIZE, 1 << 16)) for i in range(3)}
        return out

    return build


RULES = [
    "trust+cc", "cc", "cc:1", "fltrust", "fedavg", "median", "trimmed:2", "krum:2:3", "nnm+cc",
    "bucket:2+median", "trust+nnm+fltrust+normbound", "bucket:3+trimmed:1+normbound", "krum:1:1",
]  # fmt: skip
ROUNDS: list[tuple[str, Callable[[], dict[str, Any]]]] = [
    ("three", _plain(3)),
    ("ten", _plain(10)),
    ("one", _plain(1)),
    ("two", _plain(2)),
    ("wide", _plain(5, 1 << 28, 1 << 27)),  # beyond the int64 fast path of an inner product
    ("attacked", _attacked),
    ("extreme", _extreme),
    ("ties", _ties),
    ("sybils", _sybils),
    ("previous", _with_previous("along")),
    ("previous-away", _with_previous("away")),
    ("root", _with_previous("root")),
    ("all-bad", _all_bad),
]


def cases() -> list[Case]:
    out: list[Case] = []
    for name, build in ROUNDS:
        rules = RULES if name in ("three", "ten", "attacked", "extreme", "previous") else RULES[:4]
        out.extend((name, rule, build) for rule in rules)
    return [*out, ("three", "mean-of-everything", _plain(3))]  # a rule that cannot run


def outcome_of(rule: str, raw: dict[str, Any], screened: dict[str, Screened] | None = None) -> RoundOutcome:
    """`screened`: answers found while decoding the updates (payload.read_screened)."""
    ups: dict[str, Update] = raw["updates"]
    glob = split(stream("global", SIZE, 1 << 20))
    previous = raw.get("previous")
    prev = [g - p for g, p in zip(glob, previous, strict=True)] if previous is not None else None
    samples = {k: 50 + 37 * i for i, k in enumerate(sorted(ups))}
    history = History(seen={digest(split(stream("replayed", SIZE, 1 << 18))): "Org1MSP/trainer@1"})
    inputs = RoundInputs(
        3,
        rule,
        glob,
        ups,
        samples,
        raw.get("invalid", {}),
        history,
        prev,
        raw.get("roots", {}),
        screened or {},
    )
    return compute_outcome(inputs)


def summary(out: RoundOutcome) -> dict[str, Any]:
    """Every bit of an outcome that matters: the new model's bytes (its digest), the
    aggregate step (its digest is in the history), scores, flags, reasons, weights,
    norms and distances."""
    a = out.assessment
    return {
        "digest": out.digest,
        "reference": out.reference,
        "scores": a.scores,
        "flagged": a.flagged,
        "reasons": a.reasons,
        "weights": a.weights,
        "norms": {k: str(v) for k, v in a.norms.items()},
        "distances": {k: str(v) for k, v in a.distances.items()},
        "fallback": a.fallback,
        "history": out.history.to_json(),
    }


def main() -> None:
    table = {f"{name} {rule}": summary(outcome_of(rule, build())) for name, rule, build in cases()}
    FIXTURE.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"{len(table)} outcomes written to {FIXTURE}")


if __name__ == "__main__":
    main()
