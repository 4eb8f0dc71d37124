"""One participant's side of a round, without the ledger: train from the global model,
turn the result into a fixed-point update, and (for tests) attack."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from fabricml.models.mlp import build

from . import fixedpoint
from .data import Dataset
from .fixedpoint import Update
from .privacy import DifferentialPrivacy, PrivateUpdates
from .training import LocalTraining, TrainingReport, global_parameters, load_parameters, parameters, train

# Behaviours of a dishonest participant, for tests and demonstrations of robustness.
ATTACKS = ("sign_flip", "scaling", "noise", "label_flip", "free_rider", "never_reveals", "misbound")


@dataclass
class Participant:
    key: str  # "MSPID/subject", as the Federation contract names it
    data: Dataset
    model_config: dict[str, object]
    training: LocalTraining
    device: str = "cpu"
    privacy: DifferentialPrivacy | None = None
    attack: str = ""
    dp_rounds_done: int = 0

    def __post_init__(self) -> None:
        if self.attack and self.attack not in ATTACKS:
            raise ValueError(f"unknown attack {self.attack!r}; allowed: {', '.join(ATTACKS)}")
        seed = self.training.seed
        self._dp = PrivateUpdates(self.privacy, seed, self.dp_rounds_done) if self.privacy else None
        self._last: Update | None = None
        if self.attack == "label_flip":
            classes = int(self.data.labels.max()) + 1
            self.data = Dataset(self.data.features, (classes - 1 - self.data.labels), self.data.name)

    @property
    def epsilon(self) -> float:
        return self._dp.epsilon if self._dp else 0.0

    def update(
        self, global_fp: Update, round_: int, progress: Callable[[int, int], None] | None = None
    ) -> tuple[Update, TrainingReport]:
        """Local training from the global model; returns the fixed-point update."""
        torch.manual_seed(self.training.seed * 7919 + round_)
        model = build(dict(self.model_config))
        start = global_parameters(global_fp)
        load_parameters(model, start)
        report = train(model, self.data, self.training, round_, self.device, progress)
        delta = [w - s for w, s in zip(parameters(model), start, strict=True)]
        if self._dp:
            delta = self._dp.privatize(delta, round_)
        update = fixedpoint.encode(delta)
        update = self._attack(update, round_)
        self._last = update
        return update, report

    def _attack(self, update: Update, round_: int) -> Update:
        if self.attack == "sign_flip":
            return [-3 * u for u in update]
        if self.attack == "scaling":  # model replacement: boost the update to dominate the mean
            return [10 * u for u in update]
        if self.attack == "noise":
            rng = np.random.default_rng(round_)
            scale = 1 << fixedpoint.SCALE_BITS
            return [rng.normal(0.0, 0.5 * scale, u.shape).astype(np.int64) for u in update]
        if self.attack == "free_rider" and self._last is not None:
            return [u.copy() for u in self._last]  # replays its earlier update instead of training
        return update
