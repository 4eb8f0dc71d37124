"""The links of a Flower process's fabricml identities, opened once per process and kept
open while it lives (a simulation's ClientApp actors serve many rounds)."""

from __future__ import annotations

import atexit
import threading
from contextlib import ExitStack
from pathlib import Path

from fabricml.gateway.profile import ConnectionProfile

from .links import Links, open_links

_lock = threading.Lock()
_stack = ExitStack()
_open: dict[tuple[str, str, str, str], Links] = {}
atexit.register(_stack.close)


def links_for(profiles: str, org: str, identity: str, task: str) -> Links:
    """`identity` of `org` (profile <profiles>/<org>.json), connected once per process."""
    if not profiles:
        raise ValueError("the run config names no fabricml-profiles (the network's profiles folder)")
    key = (profiles, org, identity, task)
    with _lock:
        if key not in _open:
            profile = ConnectionProfile.load(Path(profiles) / f"{org}.json")
            _open[key] = _stack.enter_context(open_links(profile, identity, task))
        return _open[key]
