"""A signer's review sees what an update does to the current config, including what the
chaincode cannot see from the update alone: removals and replaced consenters."""

from __future__ import annotations

import pytest
from fabric_protos.common import configtx_pb2
from fabric_protos.orderer import configuration_pb2
from fabric_protos.orderer.etcdraft import configuration_pb2 as etcdraft_pb2

from fabricml.network.governance.configtree import StaleUpdateError
from fabricml.network.governance.review import ReviewError, review

ORGS = ("Org1MSP", "Org2MSP", "Org3MSP")


def _consensus(ports: list[int], election_tick: int = 10) -> bytes:
    meta = etcdraft_pb2.ConfigMetadata(
        consenters=[
            etcdraft_pb2.Consenter(host="127.0.0.1", port=p, client_tls_cert=b"c", server_tls_cert=b"s")
            for p in ports
        ],
        options=etcdraft_pb2.Options(election_tick=election_tick),
    )
    return bytes(
        configuration_pb2.ConsensusType(
            type="etcdraft", metadata=meta.SerializeToString()
        ).SerializeToString()
    )


def _org(version: int = 0) -> configtx_pb2.ConfigGroup:
    g = configtx_pb2.ConfigGroup(version=version, mod_policy="Admins")
    g.values["MSP"].CopyFrom(configtx_pb2.ConfigValue(mod_policy="Admins", value=b"msp"))
    g.policies["Admins"].CopyFrom(configtx_pb2.ConfigPolicy(mod_policy="Admins"))
    return g


def _config() -> configtx_pb2.Config:
    config = configtx_pb2.Config()
    root = config.channel_group
    app = root.groups["Application"]
    app.version, app.mod_policy = 1, "Admins"
    for name in ("Admins", "Endorsement", "LifecycleEndorsement", "Readers", "Writers"):
        app.policies[name].CopyFrom(configtx_pb2.ConfigPolicy(mod_policy="Admins"))
    for org in ORGS:
        app.groups[org].CopyFrom(_org())
    orderer = root.groups["Orderer"]
    orderer.mod_policy = "Admins"
    orderer.values["ConsensusType"].CopyFrom(
        configtx_pb2.ConfigValue(mod_policy="Admins", value=_consensus([7020, 7120, 7220]))
    )
    orderer.values["BatchSize"].CopyFrom(configtx_pb2.ConfigValue(mod_policy="Admins", value=b"500"))
    return config


def _membership_update(keep: tuple[str, ...], add: str | None = None) -> configtx_pb2.ConfigUpdate:
    """Application's member list rewritten, as compute_update writes it."""
    update = configtx_pb2.ConfigUpdate(channel_id="consortium")
    read_app = update.read_set.groups["Application"]
    write_app = update.write_set.groups["Application"]
    read_app.version, write_app.version, write_app.mod_policy = 1, 2, "Admins"
    for name in ("Admins", "Endorsement", "LifecycleEndorsement", "Readers", "Writers"):
        read_app.policies[name].version = 0
        write_app.policies[name].version = 0
    for org in keep:
        read_app.groups[org].version = 0
        write_app.groups[org].version = 0
    if add:
        write_app.groups[add].CopyFrom(_org())
    return update


def _consenter_update(ports: list[int], election_tick: int = 10) -> configtx_pb2.ConfigUpdate:
    update = configtx_pb2.ConfigUpdate(channel_id="consortium")
    update.read_set.groups["Orderer"].version = 0
    write = update.write_set.groups["Orderer"]
    write.values["ConsensusType"].CopyFrom(
        configtx_pb2.ConfigValue(version=1, mod_policy="Admins", value=_consensus(ports, election_tick))
    )
    return update


def test_adding_an_org_shows_exactly_its_group() -> None:
    result = review("add-org", "Org4MSP", _config(), _membership_update(ORGS, add="Org4MSP"))
    assert "add group /Channel/Application/Org4MSP" in result.lines
    assert "modify group /Channel/Application" in result.lines


def test_an_add_org_update_that_also_drops_a_member_is_refused() -> None:
    with pytest.raises(ReviewError, match="remove group /Channel/Application/Org3MSP"):
        review("add-org", "Org4MSP", _config(), _membership_update(("Org1MSP", "Org2MSP"), add="Org4MSP"))


def test_removing_one_org_is_accepted_and_removing_two_is_refused() -> None:
    result = review("remove-org", "Org3MSP", _config(), _membership_update(("Org1MSP", "Org2MSP")))
    assert "remove group /Channel/Application/Org3MSP" in result.lines
    with pytest.raises(ReviewError, match="changes more than removing Org3MSP"):
        review("remove-org", "Org3MSP", _config(), _membership_update(("Org1MSP",)))


def test_a_consenter_add_that_replaces_another_consenter_is_refused() -> None:
    ok = review("consenter-add", "127.0.0.1:7320", _config(), _consenter_update([7020, 7120, 7220, 7320]))
    assert ok.consenters_after == ["127.0.0.1:7020", "127.0.0.1:7120", "127.0.0.1:7220", "127.0.0.1:7320"]
    with pytest.raises(ReviewError, match="not to"):
        review("consenter-add", "127.0.0.1:7320", _config(), _consenter_update([7020, 7120, 7320]))
    with pytest.raises(ReviewError, match="Raft options"):
        review("consenter-add", "127.0.0.1:7320", _config(), _consenter_update([7020, 7120, 7220, 7320], 99))


def test_a_policy_update_must_touch_only_its_subject() -> None:
    update = configtx_pb2.ConfigUpdate(channel_id="consortium")
    update.read_set.groups["Orderer"].version = 0
    update.write_set.groups["Orderer"].values["BatchSize"].CopyFrom(
        configtx_pb2.ConfigValue(version=1, mod_policy="Admins", value=b"400")
    )
    assert review("policy", "/Channel/Orderer/BatchSize", _config(), update).lines == [
        "modify value /Channel/Orderer/BatchSize"
    ]
    with pytest.raises(ReviewError, match="must modify /Channel/Orderer/BatchTimeout"):
        review("policy", "/Channel/Orderer/BatchTimeout", _config(), update)


def test_an_update_computed_against_an_older_config_is_stale() -> None:
    update = _membership_update(ORGS, add="Org4MSP")
    update.read_set.groups["Application"].version = 0
    with pytest.raises(StaleUpdateError, match="at version 0; it is at 1"):
        review("add-org", "Org4MSP", _config(), update)
