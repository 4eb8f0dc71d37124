"""A real initialized site (its own Fabric CA issued every key) that has joined on paper: a
member's bundle imported and the site's view written, as `site join` leaves them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fabricml.cli.root import main as fabricml_main
from fabricml.network import bundle, siteview
from fabricml.network.site import Site
from fabricml.network.sitefile import parse
from fabricml.network.topology import Organization
from tests.sites.certs import FakeOrg

HOST = "127.0.77.1"  # this module's own loopback address: no other test's CA is there


@dataclass(frozen=True)
class JoinedSite:
    root: Path
    org: Organization
    member: FakeOrg
    member_key: Path  # the member's admin key: another site's secret, outside this site


def _view(site: Site, tmp: Path) -> tuple[FakeOrg, Path]:
    other = FakeOrg.make("org9", "127.0.99.1")
    key = other.admin.write_key(tmp / "org9-admin.key")
    signed = bundle.sign(other.body(30000), other.admin.pem, key)
    path = tmp / "org9-bundle.json"
    path.write_text(signed.to_json())
    site.import_bundle(path)
    members = [m.bundle for m in site.members.all()]
    joined = {"channel": "consortium", "consensus": "raft", "endorsement": "MAJORITY",
              "batchTimeoutMs": 500, "chaincode": "fabricml", "version": "1.0", "sequence": 1,
              "members": {m.msp_id: m.fingerprint for m in members}}  # fmt: skip
    site.save_joined(joined)
    siteview.write(site.org, site.layout, joined, members)
    return other, key


@pytest.fixture(scope="session")
def joined_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JoinedSite]:
    tmp = tmp_path_factory.mktemp("deploy")
    base = 31000 + int(os.environ.get("FABRICML_TEST_PORT_SHIFT", "0"))
    org = parse({"name": "city-hospital", "host": HOST, "hostnames": ["fabric.city-hospital.example"],
                 "ports": {"base": base}, "orderers": 2})  # fmt: skip
    site = Site(org, tmp / "city-hospital")
    try:
        site.init()
    finally:
        site.down()
    member, key = _view(site, tmp)
    yield JoinedSite(site.layout.root, org, member, key)


def deploy(*args: str) -> Result:
    """`fabricml site deploy ...`, as an operator types it."""
    return CliRunner().invoke(fabricml_main, ["site", "deploy", *args], catch_exceptions=False)
