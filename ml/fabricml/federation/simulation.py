"""Rounds run in one process without a ledger: the same participants and the same round
code (fabricml.federation.outcome.compute_outcome) as the agents on the network. For
choosing hyperparameters and measuring robustness quickly (bench/robustness.py); the real
thing is fabricml.federation.agent on a Fabric network."""

from __future__ import annotations

from dataclasses import dataclass, field

from fabricml.models.mlp import build

from . import fixedpoint
from .attacks import Coalition
from .data import Dataset
from .evidence import Assessment, History
from .fixedpoint import Update
from .outcome import RoundInputs, compute_outcome
from .participant import Participant
from .training import evaluate, global_parameters, load_parameters, parameters


@dataclass
class SimulatedRound:
    round: int
    loss: float
    accuracy: float
    flagged: list[str]
    reasons: dict[str, str]
    scores: dict[str, int]
    weights: dict[str, int] = field(default_factory=dict)
    fallback: str = ""


@dataclass
class Simulation:
    """Flagged participants are dropped from later rounds, as the contract slashes them.
    `root` (an org's copy of the consortium's root dataset) trains the root update."""

    participants: list[Participant]
    rule: str
    test: Dataset
    global_fp: Update
    history: History = field(default_factory=History)
    excluded: set[str] = field(default_factory=set)
    coalition: Coalition | None = None
    root: Participant | None = None
    previous_fp: Update | None = None

    @classmethod
    def start(cls, participants: list[Participant], rule: str, test: Dataset, seed: int) -> Simulation:
        import torch

        torch.manual_seed(seed)
        model = build(dict(participants[0].model_config))
        return cls(participants, rule, test, fixedpoint.encode(parameters(model)))

    def round(self, r: int) -> SimulatedRound:
        found = self.step(r)
        loss, acc = self.evaluate()
        return SimulatedRound(
            r, loss, acc, found.flagged, found.reasons, found.scores, found.weights, found.fallback
        )

    def step(self, r: int) -> Assessment:
        """Train, (attack,) compute the outcome and adopt it."""
        updates, samples = {}, {}
        for p in self.participants:
            if p.key in self.excluded:
                continue
            u, _ = p.update(self.global_fp, r)
            if p.attack != "never_reveals":
                updates[p.key], samples[p.key] = u, len(p.data)
            else:
                self.excluded.add(p.key)  # slashed for not revealing
        if self.coalition:
            updates.update(self.coalition.forge(r, updates))
        roots = {"root": self.root.update(self.global_fp, r)[0]} if self.root else {}
        inputs = RoundInputs(
            r, self.rule, self.global_fp, updates, samples, {}, self.history, self.previous_fp, roots
        )
        outcome = compute_outcome(inputs)
        self.excluded.update(outcome.assessment.flagged)
        self.previous_fp, self.global_fp, self.history = self.global_fp, outcome.new_global, outcome.history
        return outcome.assessment

    def evaluate(self) -> tuple[float, float]:
        model = build(dict(self.participants[0].model_config))
        load_parameters(model, global_parameters(self.global_fp))
        return evaluate(model, self.test)
