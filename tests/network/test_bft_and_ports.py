"""A BFT consortium with four orderers (it commits; a federated task finishes with one
orderer of four down), and bring-up refusing a busy port."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabricml.network.network import Network, PortBusyError
from fabricml.network.topology import load
from tests.conftest import TOPOLOGIES, fabricml, running_network, shifted
from tests.fault.invariants import Auditor
from tests.fault.matrix import run_bft_task


@pytest.fixture(scope="module")
def bft(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    os.environ.setdefault("FABRICML_HOME", str(tmp_path_factory.mktemp("fabricml-home")))
    yield from running_network(TOPOLOGIES / "bft4.yaml", tmp_path_factory.mktemp("bft"))


def test_a_bft_network_with_four_orderers_commits_a_transaction(bft: Network) -> None:
    net = bft
    assert len(net.topology.orderers) == 4
    org1, org2 = net.topology.org("org1"), net.topology.org("org2")
    net.invoke(org2, "Consortium:Join", "BFT member two")
    assert json.loads(net.query(org1, "Consortium:GetMember", "Org2MSP"))["displayName"] == "BFT member two"
    heights = {o.name: net.orderer_height(o.name) for o in net.topology.orderers}
    assert len(set(heights.values())) == 1 and None not in heights.values(), heights


def test_a_federated_task_finishes_with_one_bft_orderer_of_four_down_throughout(bft: Network) -> None:
    """f = 1 of 4: three orderers order every block; a 1-round task, tiny model, 2 orgs."""
    with Auditor(bft, "org2") as auditor:
        outcome = run_bft_task(bft, auditor, rounds=1)
    facts = outcome.to_json()
    assert outcome.survived, f"{facts}\n" + "\n".join(outcome.violations)
    assert facts["victim"] == bft.topology.orderers[-1].name and facts["rounds"] == ["FINALIZED"], facts
    assert facts["tokens"]["minted"] == facts["tokens"]["held"] > 0, facts


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
