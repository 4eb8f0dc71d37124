"""The processes of this machine as /proc shows them, for tests that check what is left running."""

from __future__ import annotations

from pathlib import Path


def children(parent: int) -> dict[int, str]:
    """The direct children of `parent`: pid -> state letter (R, S, Z, ...)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()  # after the command name: state, ppid, ...
            if int(fields[1]) == parent:
                found[int(entry.name)] = fields[0]
    return found
