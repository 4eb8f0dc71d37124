"""A BFT consortium with four orderers, and bring-up refusing a busy port."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from fabricml.network.network import Network, PortBusyError
from fabricml.network.topology import load
from tests.conftest import TOPOLOGIES, fabricml, running_network, shifted


def test_a_bft_network_with_four_orderers_commits_a_transaction(tmp_path: Path) -> None:
    topology = TOPOLOGIES / "bft4.yaml"
    for net in running_network(topology, tmp_path / "bft"):
        assert len(net.topology.orderers) == 4
        org1, org2 = net.topology.org("org1"), net.topology.org("org2")
        net.invoke(org2, "Consortium:Join", "BFT member two")
        assert (
            json.loads(net.query(org1, "Consortium:GetMember", "Org2MSP"))["displayName"] == "BFT member two"
        )
        heights = {o.name: net.orderer_height(o.name) for o in net.topology.orderers}
        assert len(set(heights.values())) == 1 and None not in heights.values(), heights


def test_a_busy_port_is_reported_by_name_and_number_before_anything_starts(tmp_path: Path) -> None:
    source = shifted(TOPOLOGIES / "raft3.yaml", tmp_path / "shifted")
    topology = load(source)
    peer_port = topology.org("org2").peer_port + 2000  # the clash topology is shifted by 2000
    clash = tmp_path / "clash.yaml"
    base = f"base: {topology.base_port}"
    clash.write_text(source.read_text().replace(base, f"base: {topology.base_port + 2000}"))
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", peer_port))
        blocker.listen()
        with pytest.raises(PortBusyError) as err:
            Network(load(clash), tmp_path / "state").up()
        assert f"peer0.org2 (peer) needs 127.0.0.1:{peer_port}" in str(err.value)
        out = fabricml(
            "network", "up", "--topology", str(clash), "--state-dir", str(tmp_path / "state"), check=False
        )
    assert out.returncode == 1
    assert f"127.0.0.1:{peer_port}" in out.stderr and "peer0.org2" in out.stderr
    assert not (tmp_path / "state").exists(), "nothing may be created when a port is busy"
