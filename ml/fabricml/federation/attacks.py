"""Colluding poisoning attacks from the literature, for the robustness bench and tests: a
coalition of participants that trains honestly, then replaces its updates with forged
ones computed from what it knows.

- alie: "A little is enough" (Baruch et al., NeurIPS 2019), mean - z * std of the
  coalition's own honest updates; alie_omniscient: the same from every honest update.
- ipm:<eps>: inner-product manipulation (Xie et al., UAI 2019), -eps * mean of the honest
  updates.
- minmax, minsum (Shejwalkar and Houmansadr, NDSS 2021): mean - gamma * std, gamma as
  large as keeps the forged update's largest (min-max) or summed squared (min-sum)
  distance to the honest updates within the honest updates' own.
- sign_flip: each member sends its own update negated; scaling: times SCALING.

Every member sends the forged vector plus its own small Gaussian jitter of `spread`
times the honest per-coordinate std (0: exact copies, which the evidence flags as
copies; the default keeps them apart so the rule, not the copy check, has to cope)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from . import fixedpoint
from .exact import flatten, unflatten
from .fixedpoint import Update

ATTACKS = ("alie", "alie_omniscient", "ipm:0.1", "ipm:0.5", "minmax", "minsum", "sign_flip", "scaling")
SCALING = 10.0
SPREAD = 0.3


def alie_z(n: int, m: int) -> float:
    """Baruch et al.'s z for n participants of which m collude."""
    s = math.floor(n / 2 + 1) - m
    return NormalDist().inv_cdf(min(max((n - s) / n, 0.5), 0.999))


def _largest_gamma(fits: Callable[[float], bool], hi: float = 50.0, steps: int = 40) -> float:
    lo = 0.0
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def _min_max(mu: np.ndarray, p: np.ndarray, benign: np.ndarray) -> np.ndarray:
    pair = max(float(np.linalg.norm(a - b)) for a in benign for b in benign)
    gamma = _largest_gamma(lambda g: float(np.max(np.linalg.norm(benign - (mu + g * p), axis=1))) <= pair)
    return mu + gamma * p


def _min_sum(mu: np.ndarray, p: np.ndarray, benign: np.ndarray) -> np.ndarray:
    limit = max(float(np.sum(np.linalg.norm(benign - b, axis=1) ** 2)) for b in benign)

    def fits(g: float) -> bool:
        return float(np.sum(np.linalg.norm(benign - (mu + g * p), axis=1) ** 2)) <= limit

    gamma = _largest_gamma(fits)
    return mu + gamma * p


@dataclass(frozen=True)
class Coalition:
    attack: str
    members: frozenset[str]
    participants: int  # everyone in the round, coalition included
    spread: float = SPREAD

    def __post_init__(self) -> None:
        if self.attack not in ATTACKS:
            raise ValueError(f"unknown attack {self.attack!r}; allowed: {', '.join(ATTACKS)}")

    def forge(self, round_: int, updates: Mapping[str, Update]) -> dict[str, Update]:
        """The members' forged updates, from every participant's honestly trained update."""
        members = sorted(k for k in updates if k in self.members)
        if not members:
            return {}
        like = updates[members[0]]
        flat = {k: fixedpoint.decode([flatten(u)])[0] for k, u in updates.items()}
        honest = np.stack([flat[k] for k in sorted(flat) if k not in self.members])
        own = np.stack([flat[k] for k in members])
        forged = self._forged(own, honest)
        rng = np.random.default_rng([round_, len(members)])
        std = honest.std(axis=0)
        out = {}
        for i, k in enumerate(members):
            v = forged[i] if forged.ndim == 2 else forged
            if self.spread and forged.ndim == 1:
                v = v + rng.normal(0.0, 1.0, v.shape) * self.spread * std
            out[k] = unflatten(fixedpoint.encode([v])[0], like)
        return out

    def _forged(self, own: np.ndarray, honest: np.ndarray) -> np.ndarray:
        """One vector for all members (1-D), or one per member (2-D)."""
        if self.attack == "sign_flip":
            return -own
        if self.attack == "scaling":
            return SCALING * own
        if self.attack.startswith("ipm:"):
            return np.asarray(-float(self.attack.partition(":")[2]) * honest.mean(axis=0))
        benign = own if self.attack == "alie" else honest
        mu, sigma = np.asarray(benign.mean(axis=0)), np.asarray(benign.std(axis=0))
        if self.attack in ("alie", "alie_omniscient"):
            return np.asarray(mu - alie_z(self.participants, len(self.members)) * sigma)
        if self.attack == "minmax":
            return _min_max(mu, -sigma, honest)
        return _min_sum(mu, -sigma, honest)
