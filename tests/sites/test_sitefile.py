"""Site files and per-organization addresses: every node's address is configured, never
assumed, and a bad value is named with what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fabricml.network import sitefile
from fabricml.network.identities import identity_specs
from fabricml.network.sitefile import SiteFileError
from fabricml.network.topology import load, parse

REPO = Path(__file__).resolve().parents[2]


def test_a_site_file_gives_the_address_ports_and_names_of_every_node(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(
        "name: city-hospital\nhost: peer.city-hospital.example\nhostnames: [10.1.2.3]\n"
        "ports: {base: 9000}\norderers: 2\n"
    )
    org = sitefile.load(path)
    assert org.msp_id == "CityHospitalMSP" and org.peer_address == "peer.city-hospital.example:9010"
    assert [o.address for o in org.orderers] == [
        "peer.city-hospital.example:9020",
        "peer.city-hospital.example:9023",
    ]
    peer_tls = next(s for s in identity_specs(org) if s.name == "peer0")
    assert peer_tls.hosts == ("peer0.city-hospital", "peer.city-hospital.example", "10.1.2.3")
    assert "127.0.0.1" not in peer_tls.hosts and "localhost" not in peer_tls.hosts
    again = sitefile.parse(yaml.safe_load(sitefile.render(org)))
    assert (again.msp_id, again.host, again.extra_hosts, again.base_port) == (
        org.msp_id,
        org.host,
        org.extra_hosts,
        org.base_port,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: a\nports: {base: 9000}\n", "host is required"),
        ("name: a\nhost: 300.1.1.1\nports: {base: 9000}\n", "host is '300.1.1.1'; allowed: an IPv4 address"),
        ("name: a\nhost: bad_name\nports: {base: 9000}\n", "allowed: an IPv4 address or a DNS name"),
        ("name: a\nhost: 10.0.0.1\n", "ports.base is None; allowed: an integer from 1024"),
        ("name: a\nhost: 10.0.0.1\nports: {base: 65500}\n", "ports.base is 65500"),
        ("name: a\nhost: 10.0.0.1\nports: {base: 9000}\nsecret: x\n", "unknown field(s) secret"),
        ("name: a\nhost: 10.0.0.1\nports: {base: 9000}\norderers: 5\n", "orderers is 5; allowed: 0 to 4"),
        ("name: a\nhost: 10.0.0.1\nports: {base: 9000}\nmspId: 1x\n", "mspId is '1x'"),
        ("- a\n", "must be a mapping"),
    ],
)
def test_an_invalid_site_file_is_refused_naming_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    with pytest.raises(SiteFileError) as err:
        sitefile.load(path)
    assert message in str(err.value)


def test_the_quick_start_runs_each_site_on_its_own_loopback_address() -> None:
    topo = load(REPO / "network" / "topology.yaml")
    assert [o.host for o in topo.organizations] == ["127.0.1.1", "127.0.2.1", "127.0.3.1"]
    assert topo.org("org2").peer_address == "127.0.2.1:7110"
    assert parse({"organizations": [{"name": "a"}, {"name": "b"}]}).organizations[1].host == "127.0.2.1"


def test_an_organization_may_have_its_own_port_base_and_msp_id() -> None:
    topo = parse({"organizations": [{"name": "a"}, {"name": "b", "ports": {"base": 9900}, "mspId": "Bee"}]})
    assert [o.base_port for o in topo.organizations] == [7000, 9900]
    assert topo.org("b").msp_id == "Bee"
    with pytest.raises(ValueError, match="MSP IDs must be unique"):
        parse({"organizations": [{"name": "a", "mspId": "X"}, {"name": "b", "mspId": "X"}]})
