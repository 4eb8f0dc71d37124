"""The task's initial model as every org derives it from the registry: its architecture
(config.json) and its fixed-point weights, whose digest round 1 must start from."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabricml.federation import fixedpoint
from fabricml.federation.fixedpoint import Update
from fabricml.federation.training import parameters
from fabricml.models.mlp import load

from .links import UpdateStore


@dataclass(frozen=True)
class InitialModel:
    ref: str  # name@version in the registry
    config: dict[str, Any]
    weights: Update

    @property
    def digest(self) -> str:
        return fixedpoint.digest(self.weights)

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        return [tuple(a.shape) for a in self.weights]


def load_initial(store: UpdateStore, ref: str) -> InitialModel:
    """The registered model `ref`, every file checked against the ledger."""
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = store.load_model(ref, Path(tmp))
        config = json.loads((model_dir / "config.json").read_text())
        weights = fixedpoint.encode(parameters(load(model_dir)))
    return InitialModel(ref, config, weights)
