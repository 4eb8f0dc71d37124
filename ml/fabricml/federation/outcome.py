"""A round's outcome from its revealed updates: the one function every org's agent and the
in-process simulation run, so they reach the same new global model, digest and evidence.

The steps: set apart provably bad updates (flagged), group the rest into voting units
(one per org, its identities screened against the reference direction: root updates,
else the previous global step; near-duplicates merged), aggregate by the task's rule,
step the global model, then score. It never raises on what participants send: with no
usable update, or a rule that cannot be applied, the step is zero (the global model is
unchanged) and the reason is in `assessment.fallback`; every honest org reaches the same
fallback, so the round still finalizes."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from . import evidence, exact, fixedpoint, wire
from .evidence import Assessment, History
from .fixedpoint import Update
from .gram import StepFeed
from .payload import Screened
from .reference import Direction, Reference
from .rulebook import aggregate, parse
from .rules.result import Aggregated
from .training import next_global
from .votes import Unit, voting_units_and_products


@dataclass(frozen=True)
class RoundInputs:
    round: int
    rule: str
    global_model: Update  # current global weights, fixed point
    updates: Mapping[str, Update]  # participant key ("Org1MSP/trainer") -> usable update
    samples: Mapping[str, int]
    invalid: Mapping[str, str]  # participant key -> why its reveal was unusable
    history: History
    previous_global: Update | None = None  # the global model before the last round's step
    root_updates: Mapping[str, Update] = field(default_factory=dict)  # org MSP ID -> root update
    # participant key -> its update's digest and bound check, found while decoding it
    screened: Mapping[str, Screened] = field(default_factory=dict)


@dataclass(frozen=True)
class RoundOutcome:
    new_global: Update
    digest: str
    assessment: Assessment  # scores (0..1000 ints), flagged keys, reasons
    history: History  # updated; kept once the round is final
    reference: str = ""  # where the reference direction came from: "root", "previous step" or ""


def _seed(round_: int, units: list[Unit]) -> bytes:
    """Fixes the buckets: no participant knows every other update when it commits."""
    h = hashlib.sha256(f"fabricml.buckets/{round_}".encode())
    for u in units:  # the values' little-endian bytes, hashed where they lie
        h.update(
            hashlib.sha256(
                np.ascontiguousarray(u.vector, dtype="<i8").reshape(-1).view(np.uint8).data
            ).digest()
        )
    return h.digest()


def _aggregate(
    inputs: RoundInputs, units: list[Unit], reference: Direction, feed: StepFeed | None = None
) -> tuple[Aggregated, str]:
    size = sum(a.size for a in inputs.global_model)
    if not units:
        return Aggregated(np.zeros(size, dtype=np.int64), []), "no usable update was revealed"
    try:
        rule = parse(inputs.rule)
        vectors, samples = [u.vector for u in units], [u.samples for u in units]
        seed = _seed(inputs.round, units) if rule.mixing == "bucket" else b""  # only buckets use it
        return aggregate(rule, vectors, samples, reference, seed, feed), ""
    except Exception as exc:  # any failure must degrade the same way in every org
        return Aggregated(np.zeros(size, dtype=np.int64), [0] * len(units)), f"rule {inputs.rule!r}: {exc}"


def compute_outcome(inputs: RoundInputs) -> RoundOutcome:
    """The round's new global model, its digest, the assessment and the history to keep.
    `inputs.history` is not changed."""
    history = inputs.history.copy()
    shapes = [tuple(a.shape) for a in inputs.global_model]
    payloads: dict[str, str] = {}  # payload digests, computed once for screen and remember
    usable, flags = evidence.screen(
        inputs.round, inputs.updates, history, inputs.invalid, shapes, payloads, inputs.screened
    )
    found_reference = Reference(inputs.global_model, inputs.previous_global, inputs.root_updates)
    reference = found_reference.vector  # made only if a screening or the rule reads it
    flat = {k: exact.flatten(u) for k, u in usable.items()}
    units, products = voting_units_and_products(flat, inputs.samples, reference)
    feed = StepFeed([u.vector for u in units], products)  # the step's products, as it is made
    result, fallback = _aggregate(inputs, units, reference, feed)
    step = result.vector  # only read from here on: the hashing thread digests it meanwhile
    step_digest = wire.hasher().submit(fixedpoint.digest, [step])
    new_global = next_global(inputs.global_model, exact.views(step, inputs.global_model))
    digest = wire.hasher().submit(fixedpoint.digest, new_global)
    known = feed.gram(step) or products  # the feed's, unless the rule made the step otherwise
    gram = evidence.outcome_gram(units, flat, step, known)  # every norm and product below, in one pass
    judged = evidence.judge(inputs.round, units, result.influence, step, flags, history, gram)
    scores, weights, reasons = judged
    evidence.remember(history, inputs.round, inputs.updates, step, payloads, step_digest.result())
    found = evidence.describe(usable, step, scores, weights, reasons, sorted(flags), fallback, flat, gram)
    return RoundOutcome(new_global, digest.result(), found, history, found_reference.source)
