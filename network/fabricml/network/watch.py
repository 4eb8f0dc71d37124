"""Watching running sites: a node that dies is named at once with why, restarted, and its
catch-up followed; one that keeps dying or will not come back stops every site cleanly.

A pidfd per recorded process tells the moment it ends, whoever started it. A process
whose record is gone was stopped on purpose (`network down`, `stop-node`, an upgrade
switching the chaincode server: ProcessTable.stop drops the record first) and is left
alone; a process that ends while its record stands has died."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .processes import exit_status
from .supervisor import NetworkError, Node, Supervisor

# A restarted node's height and the highest of the other nodes of its kind (None: unknown).
Heights = Callable[[Node], tuple[int | None, int | None]]
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Group:
    """One site's nodes, as its supervisor records them."""

    supervisor: Supervisor
    nodes: Callable[[], list[Node]]  # what the site runs now (its chaincode server follows upgrades)
    restarts: Path  # the site's restart record, which `network status` shows


@dataclass(frozen=True)
class Policy:
    max_restarts: int = 3  # restarts of one node within `window` seconds; one more death stops all
    window: float = 600.0
    catch_up: float = 120.0  # how long a restarted node's block height is followed


class GiveUp(NetworkError):
    """A node died too often or would not start again."""


@dataclass
class _Watched:
    pid: int
    fd: int
    group: Group


@dataclass
class _CatchUp:
    node: Node
    restarted: float
    deadline: float


@dataclass
class Watch:
    """Watches every recorded process of the groups until stopped (`stopping`), until none
    is left (the network was stopped), or until it gives up and stops everything."""

    groups: list[Group]
    stop_all: Callable[[], list[str]]
    say: Callable[[str], None]
    heights: Heights | None = None
    policy: Policy = field(default_factory=Policy)
    stopping: bool = False
    watched: dict[str, _Watched] = field(default_factory=dict)
    deaths: dict[str, list[float]] = field(default_factory=dict)
    following: dict[str, _CatchUp] = field(default_factory=dict)

    def run(self, tick: float = 1.0) -> int:
        """0 when stopped or when the network was stopped; 1 after giving up."""
        try:
            self._sync()
            self.say(f"watching {len(self.watched)} node(s); Ctrl-C stops watching (the nodes keep running)")
            while not self.stopping:
                for name in self._ended(tick):
                    self._ended_one(name)
                self._sync()
                if not self.watched:
                    self.say("every node was stopped; watching ends")
                    return 0
                self._follow()
            return 0
        except GiveUp as exc:
            self.say(f"giving up: {exc}; stopping every site")
            stopped = self.stop_all()
            self.say(f"stopped {len(stopped)} process(es)")
            return 1
        finally:
            self._close()

    # ---- which processes are watched -------------------------------------------------

    def _sync(self) -> None:
        """Watch every recorded process; a record whose process is not running is a death."""
        for group in self.groups:
            for name, record in group.supervisor.table.records().items():
                w = self.watched.get(name)
                if w is not None and w.pid == record.pid:
                    continue
                if w is not None:
                    self._forget(name)
                try:
                    if not group.supervisor.alive(name):
                        raise ProcessLookupError(record.pid)
                    self.watched[name] = _Watched(record.pid, os.pidfd_open(record.pid), group)
                except ProcessLookupError:  # a process seen ending may be a moment from its status
                    known = exit_status(record.pid, wait=2.0) is not None
                    self._died(group, name, record.pid, why(record.pid) if known else "found not running")
                    continue
                if w is not None:
                    self.say(f"{name}: watching its new process (pid {record.pid})")

    def _ended(self, timeout: float) -> list[str]:
        poller = select.poll()
        by_fd = {w.fd: name for name, w in self.watched.items()}
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        return [by_fd[fd] for fd, _ in poller.poll(timeout * 1000)]

    def _ended_one(self, name: str) -> None:
        w = self.watched[name]
        self._forget(name)
        record = w.group.supervisor.table.records().get(name)
        if record is None:
            self.say(f"{name} was stopped by a fabricml command; not restarted")
        elif record.pid == w.pid:
            self._died(w.group, name, w.pid, why(w.pid))

    def _forget(self, name: str) -> None:
        os.close(self.watched.pop(name).fd)

    def _close(self) -> None:
        for name in list(self.watched):
            self._forget(name)

    # ---- a death ----------------------------------------------------------------------

    def _died(self, group: Group, name: str, pid: int, reason: str) -> None:
        node = next((n for n in group.nodes() if n.name == name), None)
        log = group.supervisor.log(name)
        what = f"{name} ({node.kind} of {node.org})" if node else name
        self.say(f"{what} died (pid {pid}): {reason}; last log line: {last_line(log)}")
        if node is None:
            raise GiveUp(f"{name} is recorded but the site no longer configures it")
        now = time.monotonic()
        recent = [t for t in self.deaths.get(name, []) if now - t < self.policy.window] + [now]
        self.deaths[name] = recent
        if len(recent) > self.policy.max_restarts:
            raise GiveUp(f"{name} died {len(recent)} times in {self.policy.window:.0f}s; see {log}")
        try:
            group.supervisor.restart(node)
        except NetworkError as exc:
            raise GiveUp(f"{name} would not start again: {exc}") from exc
        record_restart(group.restarts, name, reason)
        self.say(f"{name} restarted in {time.monotonic() - now:.1f}s (restart {len(recent)})")
        if self.heights is not None and node.kind in ("peer", "orderer"):
            self.following[name] = _CatchUp(node, now, now + self.policy.catch_up)

    def _follow(self) -> None:
        """Say when each restarted peer or orderer has the blocks the others have."""
        if self.heights is None:
            return
        for name, c in list(self.following.items()):
            own, best = self.heights(c.node)
            now = time.monotonic()
            if own is not None and best is not None and own >= best:
                took = now - c.restarted
                self.say(f"{name} caught up: height {own} as the others, {took:.1f}s after it died")
            elif now > c.deadline:
                self.say(f"{name} not caught up after {self.policy.catch_up:.0f}s: height {own} of {best}")
            else:
                continue
            del self.following[name]


def why(pid: int) -> str:
    """How a process ended, when this Python process started it; else only that it ended."""
    code = exit_status(pid)
    if code is None:
        return "it ended (started by another fabricml process, so its exit status is unknown)"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def last_line(log: Path, limit: int = 300) -> str:
    """The last non-empty line of a node's log, without colour codes."""
    try:
        with log.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
            tail = f.read().decode(errors="replace")
    except OSError:
        return f"(no log at {log})"
    lines = [_ANSI.sub("", line).strip() for line in tail.splitlines()]
    lines = [line for line in lines if line]
    return lines[-1][:limit] if lines else "(log empty)"


def record_restart(path: Path, name: str, reason: str) -> None:
    """Count a restart in the site's restart record (what `network status` shows)."""
    record = read_restarts(path)
    entry = record.get(name, {"restarts": 0})
    record[name] = {
        "restarts": int(entry["restarts"]) + 1,
        "last": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "reason": reason,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def read_restarts(path: Path) -> dict[str, dict[str, str | int]]:
    if not path.exists():
        return {}
    raw = json.loads(path.read_text())
    return {str(k): dict(v) for k, v in raw.items()}
