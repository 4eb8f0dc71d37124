"""Client-level differential privacy: each participant clips its whole update to an L2
norm and adds Gaussian noise before encoding it, so no org (and no aggregate) can tell
much about any one org's data. Opacus's RDP accountant tracks epsilon across rounds;
every participant takes part in every round (sampling rate 1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from opacus.accountants import RDPAccountant


@dataclass(frozen=True)
class DifferentialPrivacy:
    clip: float  # L2 bound of one participant's update
    noise_multiplier: float  # noise standard deviation = noise_multiplier * clip
    delta: float = 1e-5

    def __post_init__(self) -> None:
        if self.clip <= 0 or self.noise_multiplier <= 0 or not 0 < self.delta < 1:
            raise ValueError(f"DP needs clip > 0, noise_multiplier > 0 and 0 < delta < 1: {self}")


class PrivateUpdates:
    def __init__(self, config: DifferentialPrivacy, seed: int, rounds_done: int = 0) -> None:
        self.config = config
        self.seed = seed
        self.accountant = RDPAccountant()
        for _ in range(rounds_done):  # resuming: replay what was already spent
            self.accountant.step(noise_multiplier=config.noise_multiplier, sample_rate=1.0)

    def privatize(self, update: list[np.ndarray], round_: int) -> list[np.ndarray]:
        """Clip the update's global L2 norm, add noise; spends one round of budget."""
        total = float(np.sqrt(sum(float(np.sum(np.square(a, dtype=np.float64))) for a in update)))
        scale = min(1.0, self.config.clip / total) if total > 0 else 1.0
        rng = np.random.default_rng([self.seed, round_])
        sigma = self.config.noise_multiplier * self.config.clip
        noisy = [(a * scale + rng.normal(0.0, sigma, a.shape)).astype(np.float32) for a in update]
        self.accountant.step(noise_multiplier=self.config.noise_multiplier, sample_rate=1.0)
        return noisy

    @property
    def epsilon(self) -> float:
        return float(self.accountant.get_epsilon(self.config.delta)) if self.accountant.history else 0.0
