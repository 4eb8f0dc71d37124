"""The files of past rounds that no restart can need, given to the state directory's
spares (fabricml.registry.spares): the next rounds write over their cached pages instead
of new ones, and the folder no longer grows by every round's updates and model (the
published updates stay in the org's artifact store, the round models in the registry).

Once round r is adopted, a restart (whose saved state may still say r-1) needs this
agent's update and the fetched updates of round r, the models after rounds r-1 and r-2
(round r's outcome is recomputed from them and the fetched updates), the model of r,
and every model whose round may still be registered: queued, or settled but not read
yet. Everything older goes."""

from __future__ import annotations

import contextlib
import re

from .agent_state import AgentState, StateDir

ROUND_FILE = re.compile(r"^(global|update)-(\d+)\.bin$")
FETCHED = re.compile(r"^fetched-(\d+)$")


def retire(files: StateDir, state: AgentState, adopted: int) -> None:
    """Give away the files of rounds before `adopted` that no restart needs."""
    keep = {adopted, adopted - 1, adopted - 2, *(e.round for e in state.to_register)}
    for entry in files.dir.iterdir():
        name = ROUND_FILE.match(entry.name)
        if name is not None:
            kind, round_ = name.group(1), int(name.group(2))
            unread = kind == "global" and round_ > state.settled_read  # may be queued to register
            if round_ < adopted and not unread and (kind == "update" or round_ not in keep):
                files.give(entry)
        fetched = FETCHED.match(entry.name)
        if fetched is not None and int(fetched.group(1)) < adopted and entry.is_dir():
            for part in entry.iterdir():
                files.give(part)
            with contextlib.suppress(OSError):  # a file appeared meanwhile: next time
                entry.rmdir()
