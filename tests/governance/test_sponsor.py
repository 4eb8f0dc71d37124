"""A newcomer is sponsored by its signed bundle: its MSP comes from the files the import made,
the proposal records the bundle's own digest and fingerprint, and a signer refuses an
add-org proposal whose update or bundle is not the one it imported itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from fabric_protos.common import configtx_pb2
from fabric_protos.msp import msp_config_pb2

from fabricml.network import bundle
from fabricml.network.bundle import SiteBundle
from fabricml.network.governance import drafts
from fabricml.network.governance.orgdef import application_group, read_public_msp
from fabricml.network.governance.review import ReviewError
from fabricml.network.governance.site import ConfigSnapshot
from fabricml.network.governance.sponsor import check_sponsored, sponsorship
from fabricml.network.governance.updates import UpdateError
from fabricml.network.layout import SiteLayout
from fabricml.network.members import Members
from tests.sites.certs import FakeOrg


def _imported(tmp_path: Path, org: FakeOrg) -> tuple[SiteBundle, Members]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    key = org.admin.write_key(tmp_path / f"{org.name}-admin.key")
    signed = bundle.sign(org.body(), org.admin.pem, key)
    book = Members(SiteLayout(tmp_path / "sponsor"))
    book.add(signed)
    return signed.bundle, book


def _update(msp_id: str, root: str, tls_root: str) -> configtx_pb2.ConfigUpdate:
    fabric = msp_config_pb2.FabricMSPConfig(
        name=msp_id, root_certs=[root.encode()], tls_root_certs=[tls_root.encode()]
    )
    msp = msp_config_pb2.MSPConfig(type=0, config=fabric.SerializeToString())
    update = configtx_pb2.ConfigUpdate(channel_id="consortium")
    org = update.write_set.groups["Application"].groups[msp_id]
    org.values["MSP"].value = msp.SerializeToString()
    return update


def test_the_newcomers_msp_is_its_bundles_and_the_proposal_records_the_bundles_digest(tmp_path: Path) -> None:
    org4 = FakeOrg.make("org4")
    b, book = _imported(tmp_path, org4)
    msp = read_public_msp(b.msp_id, book.msp_dir(b.name))
    assert msp.root_certs == [b.ca_cert.encode()] and msp.tls_root_certs == [b.tls_ca_cert.encode()]
    assert set(msp.node_ous.values()) == {b.ca_cert.encode()}
    config = application_group(msp)["values"]["MSP"]["value"]["config"]
    assert config["name"] == "Org4MSP" and config["fabric_node_ous"]["enable"] is True
    recorded = sponsorship(b)
    assert recorded == {"digest": b.digest, "fingerprint": b.fingerprint}
    assert b.digest.upper().replace("-", "").startswith(b.fingerprint.replace("-", ""))


def test_a_signer_accepts_the_bundle_it_imported_and_refuses_any_other(tmp_path: Path) -> None:
    org4, impostor = FakeOrg.make("org4"), FakeOrg.make("org4")
    b, _ = _imported(tmp_path, org4)
    found = {"id": "p1", "subject": b.msp_id, "bundle": sponsorship(b)}
    check_sponsored(found, _update(b.msp_id, b.ca_cert, b.tls_ca_cert), b)

    with pytest.raises(ReviewError, match="other CA certificates than its bundle"):
        check_sponsored(found, _update(b.msp_id, impostor.ca.pem, b.tls_ca_cert), b)
    with pytest.raises(ReviewError, match="other CA certificates than its bundle"):
        check_sponsored(found, _update(b.msp_id, b.ca_cert, impostor.tls_ca.pem), b)
    other = {**found, "bundle": {"digest": "ab" * 32, "fingerprint": "ABAB-ABAB"}}
    with pytest.raises(ReviewError, match="not the bundle of Org4MSP this site imported"):
        check_sponsored(other, _update(b.msp_id, b.ca_cert, b.tls_ca_cert), b)
    with pytest.raises(ReviewError, match="writes no MSP for Org4MSP"):
        check_sponsored(found, configtx_pb2.ConfigUpdate(channel_id="consortium"), b)


def test_a_draft_refuses_an_msp_that_is_not_the_bundles(tmp_path: Path) -> None:
    b, _ = _imported(tmp_path, FakeOrg.make("org4"))
    other, other_book = _imported(tmp_path / "x", FakeOrg.make("org5"))
    msp = read_public_msp(other.msp_id, other_book.msp_dir(other.name))
    snapshot = ConfigSnapshot(0, configtx_pb2.Config(), {})
    with pytest.raises(UpdateError, match="the MSP is Org5MSP's, the bundle Org4MSP's"):
        drafts.add_org(None, "consortium", snapshot, msp, b)  # type: ignore[arg-type]
