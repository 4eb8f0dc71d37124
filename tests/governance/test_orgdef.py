"""A newcomer is described by public certificates only; anything secret is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabricml.network.governance import updates
from fabricml.network.governance.orgdef import OrgDefinitionError, application_group, read_public_msp
from fabricml.network.identities import NODE_OU_CONFIG
from tests.certs import issue


def _msp(tmp_path: Path) -> tuple[Path, bytes]:
    ca = issue("ca.org4", ca=True)
    for sub in ("cacerts", "tlscacerts"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "ca.pem").write_text(ca.pem)
    (tmp_path / "config.yaml").write_text(NODE_OU_CONFIG)
    return tmp_path, ca.key_pem()


def test_a_public_msp_folder_becomes_an_org_group_naming_only_itself(tmp_path: Path) -> None:
    folder, _ = _msp(tmp_path)
    msp = read_public_msp("Org4MSP", folder)
    group = application_group(msp)
    assert group["values"]["MSP"]["value"]["config"]["name"] == "Org4MSP"
    principals = {
        i["principal"]["msp_identifier"]
        for p in group["policies"].values()
        for i in p["policy"]["value"]["identities"]
    }
    assert principals == {"Org4MSP"}
    assert set(group["policies"]) == {"Admins", "Endorsement", "Readers", "Writers"}
    assert len(msp.fingerprint()) == 19 and msp.digest().startswith(msp.fingerprint()[:4].lower())


def test_a_private_key_in_the_folder_is_refused(tmp_path: Path) -> None:
    folder, key = _msp(tmp_path)
    (folder / "cacerts" / "oops.pem").write_bytes(key)
    with pytest.raises(OrgDefinitionError, match="private key"):
        read_public_msp("Org4MSP", folder)


def test_an_identitys_msp_with_its_keystore_is_refused(tmp_path: Path) -> None:
    folder, key = _msp(tmp_path)
    (folder / "keystore").mkdir()
    (folder / "keystore" / "key.pem").write_bytes(key)
    with pytest.raises(OrgDefinitionError, match="keystore is not empty"):
        read_public_msp("Org4MSP", folder)


def test_nodeous_must_be_enabled(tmp_path: Path) -> None:
    folder, _ = _msp(tmp_path)
    (folder / "config.yaml").write_text("NodeOUs:\n  Enable: false\n")
    with pytest.raises(OrgDefinitionError, match="enable NodeOUs"):
        read_public_msp("Org4MSP", folder)


def test_edits_refuse_what_does_not_apply() -> None:
    config = {
        "channel_group": {"groups": {"Application": {"groups": {"Org1MSP": {}}}, "Orderer": {"groups": {}}}}
    }
    with pytest.raises(updates.UpdateError, match="not in the channel"):
        updates.remove_org(config, "Org9MSP")
    with pytest.raises(updates.UpdateError, match="no group"):
        updates.set_element(config, "/Channel/Nowhere/Admins", {})
    assert updates.members(updates.remove_org(config, "Org1MSP")) == []
    assert updates.members(config) == ["Org1MSP"]
