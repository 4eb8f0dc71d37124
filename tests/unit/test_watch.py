"""`network watch` over real processes (small listeners, not Fabric nodes): a death is
named with why and restarted; a stop on purpose is left alone; a node that keeps dying or
will not start again stops every node."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fabricml.network.processes import ProcessTable, wait_until
from fabricml.network.status import NodeStatus, fill_behind
from fabricml.network.supervisor import Node, Supervisor
from fabricml.network.watch import Group, Heights, Policy, Watch, read_restarts

# Listens on the port it is given; exits 3 at once when the marker file exists.
LISTENER = """
import os, socket, sys, time
if os.path.exists(sys.argv[2]):
    print("refusing to start: marker present", flush=True)
    sys.exit(3)
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
print("listening", flush=True)
time.sleep(3600)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Rig:
    """One group of listener nodes under a supervisor, and a watch over it in a thread."""

    root: Path
    names: list[str]
    said: list[str] = field(default_factory=list)
    result: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.supervisor = Supervisor(ProcessTable(self.root / "processes.json"), self.log, timeout=60)
        self.nodes = [self.node(n, free_port()) for n in self.names]
        self.group = Group(self.supervisor, lambda: self.nodes, self.root / "restarts.json")

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def node(self, name: str, port: int) -> Node:
        argv = [sys.executable, "-c", LISTENER, str(port), str(self.marker(name))]
        return Node(name, "peer", "org1", argv, {"PATH": os.environ["PATH"]}, listen=("127.0.0.1", port))

    def marker(self, name: str) -> Path:
        return self.root / f"{name}.refuse"

    def pid(self, name: str) -> int:
        return self.supervisor.table.records()[name].pid

    def watch(self, policy: Policy, heights: Heights | None = None, start: bool = True) -> Watch:
        if start:
            self.supervisor.start(self.nodes)
        stop_all = lambda: self.supervisor.stop_all(self.nodes)  # noqa: E731
        w = Watch([self.group], stop_all, self.said.append, heights, policy)
        self.thread = threading.Thread(target=lambda: self.result.append(w.run(tick=0.1)), daemon=True)
        self.thread.start()
        assert self.wait_said("watching")
        return w

    def wait_said(self, words: str, timeout: float = 90) -> bool:
        return wait_until(lambda: any(words in line for line in self.said), timeout, interval=0.05)

    def finish(self, w: Watch) -> int:
        w.stopping = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), self.said
        return self.result[0]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path, ["peer0.org1", "orderer0.org1"])
    yield r
    r.supervisor.stop_all(r.nodes)


def test_a_killed_node_is_named_with_its_signal_restarted_and_counted(rig: Rig) -> None:
    w = rig.watch(Policy())
    old = rig.pid("peer0.org1")
    os.kill(old, signal.SIGKILL)
    assert rig.wait_said("peer0.org1 restarted"), rig.said
    died = next(line for line in rig.said if "died" in line)
    assert "peer0.org1 (peer of org1) died" in died and "killed by SIGKILL" in died and "listening" in died
    assert rig.pid("peer0.org1") != old and rig.supervisor.alive("peer0.org1")
    assert rig.supervisor.alive("orderer0.org1")
    record = read_restarts(rig.root / "restarts.json")["peer0.org1"]
    assert record["restarts"] == 1 and record["reason"] == "killed by SIGKILL"
    assert rig.finish(w) == 0
    assert rig.supervisor.alive("peer0.org1"), "stopping the watch must leave the nodes running"


def test_a_node_stopped_on_purpose_is_not_restarted_and_the_watch_ends_with_the_network(rig: Rig) -> None:
    w = rig.watch(Policy())
    assert rig.supervisor.stop("peer0.org1")
    assert rig.wait_said("peer0.org1 was stopped by a fabricml command; not restarted"), rig.said
    time.sleep(0.5)
    assert not rig.supervisor.alive("peer0.org1")
    rig.supervisor.stop_all(rig.nodes)  # `network down` from another shell
    assert rig.wait_said("every node was stopped; watching ends"), rig.said
    rig.thread.join(timeout=10)
    assert rig.result == [0]
    assert not any("died" in line for line in rig.said), rig.said
    assert w.watched == {}


def test_a_node_that_will_not_start_again_stops_every_node(rig: Rig) -> None:
    rig.watch(Policy())
    rig.marker("peer0.org1").touch()
    os.kill(rig.pid("peer0.org1"), signal.SIGTERM)
    rig.thread.join(timeout=60)
    assert rig.result == [1], rig.said
    assert any("killed by SIGTERM" in line for line in rig.said), rig.said
    assert any("would not start again" in line and "exited during start-up" in line for line in rig.said)
    assert rig.said[-1] == "stopped 1 process(es)", rig.said  # the orderer; the peer was down
    assert rig.supervisor.running() == []


def test_a_node_that_keeps_dying_stops_every_node_after_its_restarts(rig: Rig) -> None:
    rig.watch(Policy(max_restarts=1, window=60))
    os.kill(rig.pid("orderer0.org1"), signal.SIGKILL)
    assert rig.wait_said("orderer0.org1 restarted"), rig.said
    assert wait_until(lambda: rig.supervisor.alive("orderer0.org1"), 10)
    os.kill(rig.pid("orderer0.org1"), signal.SIGKILL)
    rig.thread.join(timeout=60)
    assert rig.result == [1], rig.said
    assert any("orderer0.org1 died 2 times in 60s" in line for line in rig.said), rig.said
    assert rig.supervisor.running() == []


def test_a_node_found_dead_when_the_watch_starts_is_restarted(rig: Rig) -> None:
    rig.supervisor.start(rig.nodes)
    os.kill(rig.pid("peer0.org1"), signal.SIGKILL)
    assert wait_until(lambda: not rig.supervisor.alive("peer0.org1"), 10)
    w = rig.watch(Policy(), start=False)
    assert rig.wait_said("peer0.org1 restarted"), rig.said
    assert any("peer0.org1 (peer of org1) died" in line and "killed by SIGKILL" in line for line in rig.said)
    assert rig.finish(w) == 0


def test_a_restarted_node_is_followed_until_it_has_the_others_height(rig: Rig) -> None:
    heights = iter([(3, 7), (5, 7), (7, 7)])
    w = rig.watch(Policy(), lambda node: next(heights, (7, 7)))
    os.kill(rig.pid("peer0.org1"), signal.SIGKILL)
    assert rig.wait_said("peer0.org1 caught up: height 7 as the others"), rig.said
    assert rig.finish(w) == 0


def test_a_restarted_node_that_stays_behind_is_reported_after_the_catch_up_time(rig: Rig) -> None:
    w = rig.watch(Policy(catch_up=0.5), lambda node: (3, 7))
    os.kill(rig.pid("peer0.org1"), signal.SIGKILL)
    assert rig.wait_said("peer0.org1 not caught up after 0s: height 3 of 7"), rig.said
    assert rig.finish(w) == 0


def test_behind_is_counted_within_each_kind_of_node() -> None:
    statuses = [
        NodeStatus("peer0.org1", "peer", "org1", True, True, height=12),
        NodeStatus("peer0.org2", "peer", "org2", True, True, height=9),
        NodeStatus("peer0.org3", "peer", "org3", False, False),
        NodeStatus("orderer0.org1", "orderer", "org1", True, True, height=13),
        NodeStatus("ca.org1", "ca", "org1", True, True),
    ]
    fill_behind(statuses)
    assert [s.behind for s in statuses] == [0, 3, None, 0, None]
