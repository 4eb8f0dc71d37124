"""Rounds run in one process without a ledger: the same participants, rule and evidence
as on the network. For choosing hyperparameters, and for checking robustness quickly;
the real thing is fabricml.federation.agent on a Fabric network."""

from __future__ import annotations

from dataclasses import dataclass, field

from fabricml.models.mlp import build

from . import fixedpoint
from .data import Dataset
from .evidence import History
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


@dataclass
class Simulation:
    participants: list[Participant]
    rule: str
    test: Dataset
    global_fp: Update
    history: History = field(default_factory=History)
    excluded: set[str] = field(default_factory=set)

    @classmethod
    def start(cls, participants: list[Participant], rule: str, test: Dataset, seed: int) -> Simulation:
        import torch

        torch.manual_seed(seed)
        model = build(dict(participants[0].model_config))
        return cls(participants, rule, test, fixedpoint.encode(parameters(model)))

    def round(self, r: int) -> SimulatedRound:
        active = [p for p in self.participants if p.key not in self.excluded]
        updates, samples = {}, {}
        for p in active:
            u, _ = p.update(self.global_fp, r)
            if p.attack != "never_reveals":
                updates[p.key], samples[p.key] = u, len(p.data)
            else:
                self.excluded.add(p.key)  # slashed for not revealing
        inputs = RoundInputs(r, self.rule, self.global_fp, updates, samples, {}, self.history)
        outcome = compute_outcome(inputs)
        found = outcome.assessment
        self.excluded.update(found.flagged)
        self.global_fp, self.history = outcome.new_global, outcome.history
        loss, acc = self.evaluate()
        return SimulatedRound(r, loss, acc, found.flagged, found.reasons, found.scores)

    def evaluate(self) -> tuple[float, float]:
        model = build(dict(self.participants[0].model_config))
        load_parameters(model, global_parameters(self.global_fp))
        return evaluate(model, self.test)
