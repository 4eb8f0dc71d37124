"""`fabricml network watch` on the real network: a killed peer and a killed Raft orderer
are named, restarted and followed until they have the others' blocks; `network status`
shows the restarts and the catch-up; a node stopped by a command is left stopped."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabricml.network.network import Network
from fabricml.network.processes import wait_until
from tests.conftest import FABRICML, fabricml


class Watcher:
    """`fabricml network watch` in its own process group, its output in a file."""

    def __init__(self, network: Network, output: Path) -> None:
        self.output = output
        self.read_to = 0  # what `said` has consumed of the output
        argv = [*FABRICML, "network", "watch", "--topology", str(network.topology.source),
                "--state-dir", str(network.layout.root)]  # fmt: skip
        with output.open("wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def text(self) -> str:
        return self.output.read_text()

    def said(self, pattern: str, timeout: float = 120) -> re.Match[str]:
        """The next line matching `pattern`, after what earlier calls matched."""
        found: list[re.Match[str]] = []

        def look() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"the watch exited with {self.proc.returncode}:\n{self.text()}")
            m = re.compile(pattern).search(self.text(), self.read_to)
            found[:] = [m] if m else []
            return m is not None

        if not wait_until(look, timeout, interval=0.2):
            raise AssertionError(f"the watch never said {pattern!r} in {timeout:.0f}s:\n{self.text()}")
        self.read_to = found[0].end()
        return found[0]


@pytest.fixture
def watcher(network: Network, tmp_path: Path) -> Iterator[Watcher]:
    w = Watcher(network, tmp_path / "watch.out")
    try:
        w.said(r"watching \d+ node\(s\)")
        yield w
    finally:
        if w.proc.poll() is None:
            os.killpg(w.proc.pid, signal.SIGKILL)
            w.proc.wait(timeout=30)
        for n in network.nodes():  # leave the session's network whole for the next tests
            if not network.site(n.org).supervisor.alive(n.name):
                network.start_node(n.name)


def kill(network: Network, name: str) -> None:
    record = network.processes.records()[name]
    os.kill(record.pid, signal.SIGKILL)


def statuses(network: Network) -> dict[str, dict[str, object]]:
    out = fabricml("network", "status", "--json", "--topology", str(network.topology.source),
                   "--state-dir", str(network.layout.root))  # fmt: skip
    return {s["name"]: s for s in json.loads(out.stdout)}


def test_a_killed_peer_is_restarted_at_once_and_catches_up(network: Network, watcher: Watcher) -> None:
    org1, peer = network.topology.org("org1"), network.topology.org("org3").peer_name
    height = network.peer_height(org1)
    assert height is not None
    kill(network, peer)
    died = watcher.said(rf"{re.escape(peer)} \(peer of org3\) died \(pid \d+\): ([^;]+); last log line")
    assert "started by another fabricml process" in died.group(1)  # `network up` started it
    watcher.said(rf"{re.escape(peer)} restarted in [\d.]+s \(restart 1\)")
    caught = watcher.said(rf"{re.escape(peer)} caught up: height (\d+) as the others")
    assert int(caught.group(1)) >= height

    kill(network, peer)  # now the watch's own child: it knows the signal
    network.invoke(org1, "Consortium:Join", "Org One while org3's peer restarts")
    watcher.said(rf"{re.escape(peer)} \(peer of org3\) died \(pid \d+\): killed by SIGKILL")
    watcher.said(rf"{re.escape(peer)} caught up")
    member = json.loads(network.query(network.topology.org("org3"), "Consortium:GetMember", org1.msp_id))
    assert member["displayName"] == "Org One while org3's peer restarts"

    st = statuses(network)[peer]
    assert st["running"] and st["healthy"] and st["restarts"] == 2, st
    assert "killed by SIGKILL" in str(st["last_restart"])
    assert st["behind"] == 0, st


def test_a_killed_orderer_is_restarted_and_has_the_others_blocks(network: Network, watcher: Watcher) -> None:
    orderer = network.topology.orderers[1].name
    kill(network, orderer)
    network.invoke(network.topology.org("org1"), "Consortium:Join", "Org One while an orderer restarts")
    watcher.said(rf"{re.escape(orderer)} \(orderer of org2\) died")
    watcher.said(rf"{re.escape(orderer)} caught up: height \d+ as the others")
    st = statuses(network)
    assert st[orderer]["restarts"] == 1 and st[orderer]["healthy"], st[orderer]
    heights = {n: s["height"] for n, s in st.items() if s["kind"] == "orderer"}
    assert len(set(heights.values())) == 1, heights


def test_a_node_stopped_by_a_command_stays_stopped_and_ctrl_c_leaves_the_network_up(
    network: Network, watcher: Watcher
) -> None:
    ca = network.topology.org("org3").ca_name
    assert network.stop_node(ca)
    watcher.said(rf"{re.escape(ca)} was stopped by a fabricml command; not restarted")
    assert not wait_until(lambda: network.site("org3").supervisor.alive(ca), 3)
    network.start_node(ca)
    watcher.proc.send_signal(signal.SIGINT)
    assert watcher.proc.wait(timeout=30) == 0, watcher.text()
    assert "died" not in watcher.text(), watcher.text()
    assert network.is_up()
