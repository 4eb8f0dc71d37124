"""A round's outcome from its revealed updates: the one function every org's agent and the
in-process simulation run, so they reach the same new global model, digest and evidence."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from . import fixedpoint
from .aggregation import apply_rule
from .evidence import Assessment, History, assess
from .fixedpoint import Update
from .training import next_global


@dataclass(frozen=True)
class RoundInputs:
    round: int
    rule: str
    global_model: Update  # current global weights, fixed point
    updates: Mapping[str, Update]  # participant key ("Org1MSP/trainer") -> usable update
    samples: Mapping[str, int]
    invalid: Mapping[str, str]  # participant key -> why its reveal was unusable
    history: History


@dataclass(frozen=True)
class RoundOutcome:
    new_global: Update
    digest: str
    assessment: Assessment  # scores (0..1000 ints), flagged keys, reasons
    history: History  # updated; kept once the round is final


def compute_outcome(inputs: RoundInputs) -> RoundOutcome:
    """Aggregate by the task's rule, step the global model, and assess every participant.
    `inputs.history` is not changed: the returned history is a copy, to keep once the round
    is final."""
    keys = sorted(inputs.updates)
    aggregate = apply_rule(inputs.rule, [inputs.updates[k] for k in keys], [inputs.samples[k] for k in keys])
    new_global = next_global(inputs.global_model, aggregate)
    history = History.from_json(inputs.history.to_json())
    found = assess(inputs.round, inputs.updates, history, inputs.invalid)
    return RoundOutcome(new_global, fixedpoint.digest(new_global), found, history)
