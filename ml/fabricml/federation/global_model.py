"""The agreed global model as one agent holds it: the task's architecture, the weights
after the last adopted round (kept in the agent's state directory), and copies of the
rounds its org registers."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fabricml.models.mlp import Model, build, load

from . import fixedpoint
from .agent_state import StateDir
from .fixedpoint import Update
from .training import global_parameters, load_parameters, parameters

# Fetches a registered version's files into a folder, checked against the ledger.
FetchModel = Callable[[str, Path], Path]


class GlobalModel:
    def __init__(self, files: StateDir) -> None:
        self.files = files
        self.config: dict[str, Any] = json.loads(files.read("config.json") or b"{}")
        self._weights: Update | None = None
        self._kept = -1  # the round whose copy adopt made already

    def weights(self, initial_ref: str, fetch: FetchModel) -> Update:
        """The current global model: the last adopted one, else the task's initial model."""
        if self._weights is None:
            saved = self.files.read("global.bin")
            self._weights = (
                fixedpoint.from_bytes(saved) if saved is not None else self._initial(initial_ref, fetch)
            )
        return self._weights

    def _initial(self, ref: str, fetch: FetchModel) -> Update:
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = fetch(ref, Path(tmp))
            self.config = json.loads((model_dir / "config.json").read_text())
            initial = fixedpoint.encode(parameters(load(model_dir)))
        self.files.put("config.json", json.dumps(self.config, sort_keys=True).encode())
        self.files.put("global.bin", fixedpoint.to_bytes(initial, {"round": 0}))
        self.keep(initial, 0)
        return initial

    def adopt(self, weights: Update, round_: int) -> None:
        """The quorum's model of `round_` becomes the global model, and its copy is kept:
        the same bytes, linked rather than written twice (global.bin is only ever
        replaced, never changed in place, so the copy keeps them)."""
        self._weights = weights
        self.files.put("global.bin", fixedpoint.to_bytes(weights, {"round": round_}))
        kept, link = self.files.path(f"global-{round_}.bin"), self.files.path(f".global-{round_}.bin.link")
        link.unlink(missing_ok=True)
        os.link(self.files.path("global.bin"), link)
        os.replace(link, kept)
        self._kept = round_

    def keep(self, weights: Update, round_: int) -> None:
        """A copy of a round's model, for registering it later (made already when this
        round's model was adopted)."""
        if round_ != self._kept:
            self.files.put(f"global-{round_}.bin", fixedpoint.to_bytes(weights, {"round": round_}))

    def kept(self, round_: int) -> Update:
        return fixedpoint.from_bytes(self.files.read(f"global-{round_}.bin") or b"")

    def before_last_step(self, round_: int) -> Update | None:
        """The global model before the step of the round before `round_` (the model after
        round_ - 2), which the outcome's reference direction starts from, as in
        fabricml.federation.simulation; None in round 1."""
        raw = self.files.read(f"global-{round_ - 2}.bin") if round_ >= 2 else None
        return fixedpoint.from_bytes(raw) if raw else None

    def as_model(self, weights: Update) -> Model:
        """A model of the task's architecture with these fixed-point weights (built without
        drawing initial weights first: an 11 M-parameter MLP's took a second)."""
        with torch.device("meta"):
            model = build(self.config)
        model.to_empty(device="cpu")
        load_parameters(model, global_parameters(weights))
        return model
