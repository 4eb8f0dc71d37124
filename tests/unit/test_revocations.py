"""Members' revocation lists read from the channel config (configtxlator's JSON and config
blocks as the peer delivers them) and written beside their bundles, whole or not at all."""

from __future__ import annotations

import base64
import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2, configtx_pb2
from fabric_protos.msp import msp_config_pb2

from fabricml.network import revocations as rv
from fabricml.network.layout import SiteLayout


def crl(serials: tuple[int, ...], name: str = "ca.org1") -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .last_update(now)
        .next_update(now + datetime.timedelta(days=1))
    )
    for s in serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(s).revocation_date(now).build()
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def config_json(lists: dict[str, bytes | None]) -> dict[str, object]:
    groups = {}
    for msp_id, pem in lists.items():
        config: dict[str, object] = {"name": msp_id}
        if pem is not None:
            config["revocation_list"] = [base64.b64encode(pem).decode()]
        groups[msp_id] = {"values": {"MSP": {"value": {"config": config}}}}
    return {"channel_group": {"groups": {"Application": {"groups": groups}}}}


def block(kind: str, lists: dict[str, bytes | None]) -> common_pb2.Block:
    config = configtx_pb2.Config()
    for msp_id, pem in lists.items():
        fabric = msp_config_pb2.FabricMSPConfig(name=msp_id, revocation_list=[pem] if pem else [])
        msp = msp_config_pb2.MSPConfig(type=0, config=fabric.SerializeToString())
        config.channel_group.groups["Application"].groups[msp_id].values[
            "MSP"
        ].value = msp.SerializeToString()
    header = common_pb2.ChannelHeader(type=common_pb2.HeaderType.Value(kind), channel_id="consortium")
    payload = common_pb2.Payload(
        header=common_pb2.Header(channel_header=header.SerializeToString()),
        data=configtx_pb2.ConfigEnvelope(config=config).SerializeToString(),
    )
    envelope = common_pb2.Envelope(payload=payload.SerializeToString())
    return common_pb2.Block(data=common_pb2.BlockData(data=[envelope.SerializeToString()]))


def test_the_lists_of_the_members_that_published_one_are_read_from_the_config() -> None:
    one, two = crl((5,)), crl((), "ca.org2")
    lists = rv.lists_in_config(config_json({"Org1MSP": one, "Org2MSP": two, "Org3MSP": None}))
    assert lists == {"Org1MSP": one, "Org2MSP": two}


def test_a_config_block_gives_the_same_lists_and_a_transaction_block_none() -> None:
    one = crl((5, 9))
    assert rv.lists_in_block(block("CONFIG", {"Org1MSP": one, "Org2MSP": None})) == {"Org1MSP": one}
    assert rv.lists_in_block(block("ENDORSER_TRANSACTION", {"Org1MSP": one})) is None


def test_lists_are_written_for_known_members_only_and_only_when_changed(tmp_path: Path) -> None:
    layout = SiteLayout(tmp_path)
    by_msp = {"Org1MSP": "org1", "Org2MSP": "org2"}
    first = crl((1,))
    assert rv.write_lists(layout, by_msp, {"Org1MSP": first, "Org9MSP": crl((2,))}) == ["org1"]
    assert layout.member_crl("org1").read_bytes() == first and not layout.member_crl("org2").exists()
    assert rv.write_lists(layout, by_msp, {"Org1MSP": first}) == []
    newer = crl((1, 4))
    assert rv.write_lists(layout, by_msp, {"Org1MSP": newer}) == ["org1"]
    assert rv.revoked_serials(layout.member_crl("org1").read_bytes()) == {1, 4}
    assert not list(tmp_path.rglob("*.tmp"))


def test_the_config_in_force_is_found_from_the_newest_blocks_orderer_metadata() -> None:
    last = common_pb2.OrdererBlockMetadata(last_config=common_pb2.LastConfig(index=7))
    b = block("ENDORSER_TRANSACTION", {})
    b.metadata.metadata.extend([common_pb2.Metadata(value=last.SerializeToString()).SerializeToString(), b""])
    assert rv.last_config_number(b) == 7


def test_the_members_whose_list_a_site_lacks_are_named(tmp_path: Path) -> None:
    layout = SiteLayout(tmp_path)
    assert rv.missing_lists(layout, ["org2", "org1"]) == ["org1", "org2"]
    rv.write_lists(layout, {"Org1MSP": "org1", "Org2MSP": "org2"}, {"Org1MSP": crl((1,))})
    assert rv.missing_lists(layout, ["org1", "org2"]) == ["org2"]
    assert rv.missing_lists(layout, ["org1"]) == []
