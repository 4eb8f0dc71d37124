"""What a rule returns: the aggregate and how much each input counted in it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Aggregated:
    vector: np.ndarray
    influence: list[int]  # per input, in [0, exact.ONE]: 0 = left out, ONE = counted in full
