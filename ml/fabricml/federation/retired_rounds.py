"""The files of past rounds that no restart can need, given to the state directory's
spares (fabricml.registry.spares): the next rounds write over their cached pages instead
of new ones, and the folder no longer grows by every round's updates and model (the
published updates stay in the org's artifact store, the round models in the registry).

What a restart needs follows from the state as saved (rounds_done d): it acts on round
d+1, whose outcome needs the models after d and d-1 (the reference direction), and it
registers every model the saved state queues, or may queue once it reads a settlement
it had not read yet. So this agent's and the fetched updates of rounds up to d go, and
the models before d-1 that are neither queued nor possibly queued."""

from __future__ import annotations

import contextlib
import re

from .agent_state import AgentState, StateDir

ROUND_FILE = re.compile(r"^(global|update)-(\d+)\.bin$")
FETCHED = re.compile(r"^fetched-(\d+)$")


def retire(files: StateDir, state: AgentState) -> None:
    """Give away the files no restart from the saved state (nor `state`) needs."""
    saved = files.saved
    done = min(saved.rounds_done, state.rounds_done)
    settled = min(saved.settled_read, state.settled_read)
    queued = {e.round for e in (*saved.to_register, *state.to_register)}
    for entry in files.dir.iterdir():
        name = ROUND_FILE.match(entry.name)
        if name is not None:
            kind, round_ = name.group(1), int(name.group(2))
            model_gone = round_ < done - 1 and round_ <= settled and round_ not in queued
            if (kind == "update" and round_ <= done) or (kind == "global" and model_gone):
                files.give(entry)
        fetched = FETCHED.match(entry.name)
        if (
            fetched is not None
            and int(fetched.group(1)) <= done
            and entry.is_dir()
            and not entry.is_symlink()
        ):
            for part in entry.iterdir():
                files.give(part)
            with contextlib.suppress(OSError):  # a file appeared meanwhile: next time
                entry.rmdir()
