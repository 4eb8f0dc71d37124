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

import numpy as np
import torch

from fabricml.models.mlp import Model, build, load
from fabricml.registry.spares import Spares

from . import fixedpoint
from .agent_state import AgentState, StateDir, atomic_file
from .fixedpoint import Update
from .training import global_parameters, load_parameters, parameters

# Fetches a registered version's files into a folder, checked against the ledger.
FetchModel = Callable[[str, Path], Path]


class GlobalModel:
    """The current model lives in memory; its file global-<round>.bin (and global.bin, a
    link to the latest) is written in the background (StateDir.later), before the state
    that names its round is saved, so adopting a model costs no write on the critical path."""

    def __init__(self, files: StateDir, state: AgentState) -> None:
        self.files, self.state = files, state
        self.config: dict[str, Any] = json.loads(files.read("config.json") or b"{}")
        self._weights: Update | None = None
        self._digest = ""  # of self._weights, once known
        self._kept = -1  # the round whose copy adopt made already
        self._recent: dict[int, Update] = {}  # the models after the last two rounds done
        self._prepared: set[tuple[int, str]] = set()  # (round, digest) written aside
        for stale in files.dir.glob(".outcome-*.bin"):  # written aside by a process that died
            stale.unlink(missing_ok=True)

    def weights(self, initial_ref: str, fetch: FetchModel) -> Update:
        """The current global model: the one of the last round done, else the task's
        initial model."""
        if self._weights is None:
            saved = self._saved(self.state.rounds_done)
            self._weights = (
                fixedpoint.from_bytes(saved) if saved is not None else self._initial(initial_ref, fetch)
            )
        return self._weights

    def digest(self) -> str:
        """fixedpoint.digest of the current model (call weights first)."""
        if not self._digest:
            assert self._weights is not None, "weights() first"
            self._digest = fixedpoint.digest(self._weights)
        return self._digest

    def _saved(self, round_: int) -> bytes | None:
        """The model after `round_`: its own file (global.bin may already hold a later
        round's, written before a crash that came before the state named that round)."""
        kept = self.files.read(f"global-{round_}.bin")
        if kept is not None:
            return kept
        latest = self.files.read("global.bin")  # a state directory from before global-0.bin
        if latest is not None and fixedpoint.header(latest).get("context", {}).get("round") == round_:
            return latest
        return None

    def _initial(self, ref: str, fetch: FetchModel) -> Update:
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = fetch(ref, Path(tmp))
            self.config = json.loads((model_dir / "config.json").read_text())
            initial = fixedpoint.encode(parameters(load(model_dir)))
        self.files.put("config.json", json.dumps(self.config, sort_keys=True).encode())
        self._write(initial, 0)
        self._remember(initial, 0)
        return initial

    def prepare(self, weights: Update, round_: int, digest: str) -> None:
        """Write the model this agent computed for `round_` aside, in the background,
        before the quorum agreed on it: adopting it then only renames the file."""
        if (round_, digest) not in self._prepared:
            self._prepared.add((round_, digest))
            self.files.later(
                lambda: write_update(
                    self._aside(round_, digest), weights, {"round": round_}, self.files.spares
                )
            )

    def _aside(self, round_: int, digest: str) -> Path:
        return self.files.path(f".outcome-{round_}-{digest}.bin")

    def adopt(self, weights: Update, round_: int, digest: str = "") -> None:
        """The quorum's model of `round_` (whose digest is `digest`, when known) becomes
        the global model; its file is written (or the one prepared renamed) in the background."""
        self._weights, self._digest = weights, digest
        prepared, self._prepared = (round_, digest) in self._prepared, set()
        self.files.later(lambda: self._write(weights, round_, aside=digest if prepared else ""))
        self._kept = round_
        self._remember(weights, round_)

    def keep(self, weights: Update, round_: int) -> None:
        """A copy of a round's model, for registering it later (made already when this
        round's model was adopted)."""
        if round_ != self._kept:
            self.files.later(lambda: self._write(weights, round_, latest=False))
            self._kept = round_
            self._remember(weights, round_)

    def _remember(self, weights: Update, round_: int) -> None:
        self._recent = {r: w for r, w in self._recent.items() if r >= round_ - 1}
        self._recent[round_] = weights

    def _write(self, weights: Update, round_: int, latest: bool = True, aside: str = "") -> None:
        """global-<round>.bin (the file prepared aside for digest `aside`, when there is
        one), then global.bin linked to it (never changed in place, so the link keeps
        the bytes); the other files prepared for the round go."""
        kept = self.files.path(f"global-{round_}.bin")
        if aside:
            os.replace(self._aside(round_, aside), kept)
        else:
            write_update(kept, weights, {"round": round_}, self.files.spares)
        for other in self.files.dir.glob(f".outcome-{round_}-*.bin"):
            self.files.give(other)
        if latest:
            link = self.files.path(".global.bin.link")
            link.unlink(missing_ok=True)
            os.link(kept, link)
            os.replace(link, self.files.path("global.bin"))

    def kept(self, round_: int, flushed: bool = False) -> Update:
        """A round's model, as kept; `flushed`: its file is whole already (the caller
        flushed the state directory's writes since it was adopted): any thread may read it."""
        recent = self._recent.get(round_)  # one read: the agent's thread replaces the dict
        if recent is not None:
            return recent
        if flushed:
            return fixedpoint.from_bytes(self.files.path(f"global-{round_}.bin").read_bytes())
        return fixedpoint.from_bytes(self.files.read(f"global-{round_}.bin") or b"")

    def before_last_step(self, round_: int) -> Update | None:
        """The global model before the step of the round before `round_` (the model after
        round_ - 2), which the outcome's reference direction starts from, as in
        fabricml.federation.simulation; None in round 1."""
        if round_ - 2 in self._recent:
            return self._recent[round_ - 2]
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


def write_update(path: Path, weights: Update, context: dict[str, Any], spares: Spares | None = None) -> None:
    """fixedpoint.to_bytes(weights, context) into `path` atomically, the values written
    where they lie (no 90 MB bytes object for an 11 M-parameter model), over one of
    `spares` where there is one."""
    arrays = [np.ascontiguousarray(np.asarray(q, dtype="<i8")) for q in weights]
    header = fixedpoint.header_bytes([a.shape for a in arrays], context)
    with atomic_file(path, spares, len(header) + sum(a.nbytes for a in arrays)) as f:
        f.write(header)
        for a in arrays:
            f.write(a.reshape(-1).view(np.uint8).data)
