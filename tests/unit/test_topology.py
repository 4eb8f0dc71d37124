"""The topology file: defaults, derived names and ports, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabricml.network.topology import TopologyError, load, parse

REPO = Path(__file__).resolve().parents[2]


def test_the_default_topology_has_three_raft_orgs_with_one_peer_and_orderer_each() -> None:
    topo = load(REPO / "network" / "topology.yaml")
    assert [o.name for o in topo.organizations] == ["org1", "org2", "org3"]
    assert [o.msp_id for o in topo.organizations] == ["Org1MSP", "Org2MSP", "Org3MSP"]
    assert topo.consensus == "raft" and topo.endorsement == "MAJORITY"
    assert len(topo.orderers) == 3
    assert topo.batch_timeout_ms == 100
    assert parse({"batchTimeout": "2s", "organizations": [{"name": "a"}]}).batch_timeout_ms == 2000


def test_without_a_batch_timeout_one_machine_gets_100ms_and_sites_500ms() -> None:
    assert (
        parse({"organizations": [{"name": "a"}, {"name": "b", "host": "127.0.0.1"}]}).batch_timeout_ms == 100
    )
    assert parse({"organizations": [{"name": "a", "host": "localhost"}]}).batch_timeout_ms == 100
    sites = {"organizations": [{"name": "a"}, {"name": "b", "host": "10.0.0.2"}]}
    assert parse(sites).batch_timeout_ms == 500
    assert parse({"organizations": [{"name": "a", "host": "org1.example.com"}]}).batch_timeout_ms == 500


def test_every_port_of_a_topology_is_distinct() -> None:
    topo = parse({"organizations": [{"name": "a", "orderers": 4}, {"name": "b", "orderers": 4}]})
    ports = list(topo.named_ports().values())
    assert len(ports) == len(set(ports))


def test_msp_ids_are_derived_from_hyphenated_names() -> None:
    topo = parse({"organizations": [{"name": "city-hospital"}]})
    assert topo.organizations[0].msp_id == "CityHospitalMSP"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"organizations": []}, "organizations must be a non-empty list"),
        ({"organizations": [{"name": "Org1"}]}, "organizations[0].name is 'Org1'; allowed"),
        ({"organizations": [{"name": "a"}, {"name": "a"}]}, "must be unique"),
        ({"consensus": "kafka", "organizations": [{"name": "a"}]}, "allowed: raft, bft"),
        ({"consensus": "bft", "organizations": [{"name": "a"}, {"name": "b"}]}, "at least 4 orderer nodes"),
        ({"endorsement": "SOME", "organizations": [{"name": "a"}]}, "allowed: MAJORITY, ANY, ALL"),
        ({"ports": {"base": 80}, "organizations": [{"name": "a"}]}, "ports.base is 80"),
        ({"organizations": [{"name": "a", "orderers": 0}]}, "at least one organization must run an orderer"),
        ({"organizations": [{"name": "a", "orderers": 9}]}, "allowed: 0 to 4"),
        (
            {"batchTimeout": "5ms", "organizations": [{"name": "a"}]},
            "batchTimeout is '5ms'; allowed: 10ms to 10s",
        ),
        ({"batchTimeout": "fast", "organizations": [{"name": "a"}]}, "written like 500ms or 2s"),
    ],
)
def test_an_invalid_topology_is_refused_naming_the_field_and_what_is_allowed(
    raw: dict[str, object], message: str
) -> None:
    with pytest.raises(TopologyError) as err:
        parse(raw)
    assert message in str(err.value)


def test_a_missing_topology_file_is_reported_by_path(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="does not exist"):
        load(tmp_path / "nope.yaml")
