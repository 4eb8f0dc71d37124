"""A genesis block is built from bundles only, and a joining site refuses one that names an
organization, a CA or a consenter it has not accepted (real configtxgen and configtxlator)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabricml.network import binaries, bundle, genesis, joining
from fabricml.network.channeltx import ChannelSettings, write_genesis_block
from fabricml.network.founding import Definition, channel_member
from fabricml.network.members import Members
from fabricml.network.site import Site, SiteError
from fabricml.network.topology import Organization, TopologyError, parse
from tests.sites.certs import FakeOrg


def _bundle(org: FakeOrg, tmp_path: Path, base: int = 30000) -> bundle.SignedBundle:
    key = org.admin.write_key(tmp_path / f"{org.name}.key")
    return bundle.sign(org.body(base), org.admin.pem, key)


def _orgs(names: list[str]) -> list[FakeOrg]:
    return [FakeOrg.make(n, host=f"127.0.9{i}.7") for i, n in enumerate(names, 1)]


def _block(tmp_path: Path, signed: list[bundle.SignedBundle], consensus: str = "raft") -> Path:
    founder = Members(Site(_spec(signed[0].bundle.name), tmp_path / "founder").layout)
    for s in signed:
        founder.add(s)
    members = [channel_member(founder, s) for s in signed]
    b = binaries.default_binaries()
    assert b.complete(), "the Fabric binaries are built by scripts/setup.sh"
    settings = ChannelSettings("consortium", consensus)
    return write_genesis_block(b, settings, members, tmp_path / "work", tmp_path / "genesis.block")


def _spec(name: str) -> Organization:
    return parse({"organizations": [{"name": name, "host": "127.0.98.1"}]}).organizations[0]


def _joiner(tmp_path: Path, name: str, known: list[bundle.SignedBundle]) -> Site:
    site = Site(_spec(name), tmp_path / f"joiner-{name}")
    for s in known:
        site.members.add(s)
    return site


def test_a_raft_block_from_three_bundles_reviews_its_members_policies_and_consenters(tmp_path: Path) -> None:
    orgs = _orgs(["alpha", "beta", "gamma"])
    signed = [_bundle(o, tmp_path, 30000 + 100 * i) for i, o in enumerate(orgs)]
    block = _block(tmp_path, signed)
    review = genesis.review(binaries.default_binaries(), block)
    assert review.members == ["AlphaMSP", "BetaMSP", "GammaMSP"]
    assert [c.address for c in review.consenters] == [
        "127.0.91.7:30020",
        "127.0.92.7:30120",
        "127.0.93.7:30220",
    ]
    assert review.policies["membership (Application Admins)"] == "MAJORITY Admins"
    assert review.policies["chaincode lifecycle (Application LifecycleEndorsement)"] == "MAJORITY Endorsement"
    joiner = _joiner(tmp_path, "beta", signed)
    accepted = genesis.check_members(review, "BetaMSP", joiner.members)
    assert [s.bundle.name for s in accepted] == ["alpha", "beta", "gamma"]


def test_a_block_naming_an_org_the_site_never_imported_is_refused(tmp_path: Path) -> None:
    orgs = _orgs(["alpha", "beta", "mallory"])
    signed = [_bundle(o, tmp_path, 30000 + 100 * i) for i, o in enumerate(orgs)]
    review = genesis.review(binaries.default_binaries(), _block(tmp_path, signed))
    joiner = _joiner(tmp_path, "beta", signed[:2])  # beta knows alpha and itself only
    with pytest.raises(
        genesis.GenesisError, match="names organization MalloryMSP, whose bundle this site has not"
    ):
        genesis.check_members(review, "BetaMSP", joiner.members)
    asked: list[list[str]] = []

    def confirm(lines: list[str]) -> bool:
        asked.append(lines)
        return True

    with pytest.raises(genesis.GenesisError, match="MalloryMSP"):  # `site join` stops before its review
        joining.join(joiner, tmp_path / "genesis.block", Definition(), confirm)
    assert asked == [] and not joiner.layout.channel.exists() and not joiner.layout.processes.exists()


def test_a_block_with_another_ca_under_a_known_orgs_name_is_refused(tmp_path: Path) -> None:
    orgs = _orgs(["alpha", "beta"])
    impostor = FakeOrg.make("alpha", host="127.0.91.7")  # the founder swaps alpha's CA for its own
    signed = [_bundle(impostor, tmp_path), _bundle(orgs[1], tmp_path, 30100)]
    review = genesis.review(binaries.default_binaries(), _block(tmp_path, signed))
    joiner = _joiner(tmp_path, "beta", [_bundle(orgs[0], tmp_path), signed[1]])
    with pytest.raises(
        genesis.GenesisError, match="CA certificates for AlphaMSP are not those of its imported"
    ):
        genesis.check_members(review, "BetaMSP", joiner.members)


def test_a_block_without_the_joining_org_is_refused(tmp_path: Path) -> None:
    signed = [_bundle(o, tmp_path, 30000 + 100 * i) for i, o in enumerate(_orgs(["alpha", "gamma"]))]
    review = genesis.review(binaries.default_binaries(), _block(tmp_path, signed))
    with pytest.raises(genesis.GenesisError, match="BetaMSP is not a member"):
        genesis.check_members(review, "BetaMSP", _joiner(tmp_path, "beta", signed).members)


def test_under_bft_blocks_need_the_consenters_quorum_of_signatures(tmp_path: Path) -> None:
    """configtxgen (Fabric 3.1.1) replaces BlockValidation by N-of-consenters, N = ceil((n+f+1)/2)."""
    signed = [_bundle(o, tmp_path, 30000 + 100 * i) for i, o in enumerate(_orgs(["a", "b", "c", "d"]))]
    review = genesis.review(binaries.default_binaries(), _block(tmp_path, signed, "bft"))
    assert review.consensus == "BFT"
    rule = review.policies["block validation (Orderer BlockValidation)"]
    assert rule.startswith("3 of 4 signatures: "), rule
    assert {p.split("/")[0] for p in rule.removeprefix("3 of 4 signatures: ").split(", ")} == {
        "AMSP",
        "BMSP",
        "CMSP",
        "DMSP",
    }
    assert [c.msp_id for c in review.consenters] == ["AMSP", "BMSP", "CMSP", "DMSP"]


def test_bft_with_fewer_than_four_consenters_is_refused_before_configtxgen(tmp_path: Path) -> None:
    signed = [_bundle(o, tmp_path, 30000 + 100 * i) for i, o in enumerate(_orgs(["a", "b", "c"]))]
    with pytest.raises(TopologyError, match="bft consensus needs at least 4 orderer nodes"):
        _block(tmp_path, signed, "bft")
    assert not (tmp_path / "genesis.block").exists()


def test_a_genesis_block_without_the_founders_definition_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    signed = [_bundle(o, tmp_path, 30000 + 100 * i) for i, o in enumerate(_orgs(["alpha", "beta"]))]
    block = _block(tmp_path, signed)
    review = genesis.review(binaries.default_binaries(), block)
    assert review.block_number == 0 and not any("running channel" in line for line in review.lines())
    joiner = _joiner(tmp_path, "beta", signed)
    with pytest.raises(SiteError, match="needs the founder's chaincode definition"):
        joining.join(joiner, block, None, lambda lines: True)
    assert not joiner.layout.channel.exists() and not joiner.layout.processes.exists()
