"""Files generated from the topology: configtx, the chaincode package, docker compose."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fabricml.network import configgen
from fabricml.network.chaincode import build_key, package, package_id_for, source_digest
from fabricml.network.layout import Layout
from fabricml.network.topology import load, parse

REPO = Path(__file__).resolve().parents[2]


def test_raft_configtx_has_one_consenter_per_org_and_majority_endorsement() -> None:
    topo = load(REPO / "network" / "topology.yaml")
    profile = configgen.configtx(topo, Layout(Path("/state")))["Profiles"][configgen.PROFILE]
    consenters = profile["Orderer"]["EtcdRaft"]["Consenters"]
    assert [c["Port"] for c in consenters] == [o.port for o in topo.orderers]
    assert profile["Application"]["Policies"]["Endorsement"]["Rule"] == "MAJORITY Endorsement"
    endpoints = [o["OrdererEndpoints"] for o in profile["Orderer"]["Organizations"]]
    assert endpoints == [[o.address] for o in topo.orderers]
    # Anchor peers are set by a config update after the peers join, not in the genesis block.
    assert all("AnchorPeers" not in o for o in profile["Application"]["Organizations"])


def test_bft_configtx_maps_four_consenters_and_the_v3_channel_capability() -> None:
    topo = parse(
        {"consensus": "bft", "organizations": [{"name": "a", "orderers": 2}, {"name": "b", "orderers": 2}]}
    )
    profile = configgen.configtx(topo, Layout(Path("/state")))["Profiles"][configgen.PROFILE]
    assert profile["Orderer"]["OrdererType"] == "BFT"
    mapping = profile["Orderer"]["ConsenterMapping"]
    assert [m["ID"] for m in mapping] == [1, 2, 3, 4]
    assert [m["MSPID"] for m in mapping] == ["AMSP", "AMSP", "BMSP", "BMSP"]
    assert profile["Capabilities"] == {"V3_0": True}


def test_the_same_chaincode_label_always_gives_the_same_package_id(tmp_path: Path) -> None:
    first = package("fabricml_1.0", tmp_path / "a.tar.gz")
    second = package("fabricml_1.0", tmp_path / "b.tar.gz")
    assert first == second == package_id_for("fabricml_1.0")
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    assert package_id_for("fabricml_1.1") != first


def test_the_committed_compose_file_is_what_the_topology_generates() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fabricml.cli", "network", "compose", "--check"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr


def test_the_compose_check_fails_when_the_file_was_edited(tmp_path: Path) -> None:
    edited = tmp_path / "compose.yaml"
    edited.write_text((REPO / "docker-compose-fabric.yaml").read_text().replace("7010", "7999"))
    result = subprocess.run(
        [sys.executable, "-m", "fabricml.cli", "network", "compose", "--check", "--output", str(edited)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 1 and "out of date" in result.stderr


def test_a_server_built_with_other_go_flags_is_cached_under_another_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GOFLAGS", raising=False)
    plain = build_key()
    assert plain == source_digest()[:16]
    monkeypatch.setenv("GOFLAGS", "-tags=conformance")
    tagged = build_key()
    monkeypatch.setenv("GOFLAGS", "-tags=other")
    assert len({plain, tagged, build_key()}) == 3
