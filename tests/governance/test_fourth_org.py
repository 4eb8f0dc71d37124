"""End to end on its own network of three sites: a fourth org's site (its own site file,
loopback address and directory) is sponsored by its signed bundle, added by a majority's
signatures, its orderer made a consenter, and it joins with the latest config block; its
peer catches up, it approves the committed definition and MAJORITY counts it, for
endorsements and for a model's approvals. Then an org is removed and its peer can no
longer endorse."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from fabricml.gateway import CommitError, GatewayError, sync
from fabricml.network.governance import drafts, flow
from fabricml.network.governance.site import Site
from fabricml.network.network import Network
from fabricml.network.processes import wait_until
from tests.conftest import TOPOLOGIES, fabricml, running_network

from .newcomer import Newcomer

pytestmark = pytest.mark.network
# Its own ports and addresses: this test changes membership, which the shared network must keep.
BASE_PORT = 25000
HOSTS = {"org1": "127.0.41.1", "org2": "127.0.42.1", "org3": "127.0.43.1"}
NEWCOMER_HOST = "127.0.44.1"


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    raw = yaml.safe_load((TOPOLOGIES / "raft3.yaml").read_text())
    raw["name"], raw["ports"]["base"] = "fabricml-gov", BASE_PORT
    raw["organizations"] = [{"name": name, "host": host} for name, host in HOSTS.items()]
    topology = tmp_path_factory.mktemp("gov-topology") / "gov3.yaml"
    topology.write_text(yaml.safe_dump(raw))
    yield from running_network(topology, tmp_path_factory.mktemp("gov3"))


@pytest.fixture(scope="module")
def newcomer(consortium: Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Newcomer]:
    base = consortium.topology.organizations[-1].base_port + 100  # the block after org3's
    org4 = Newcomer(tmp_path_factory.mktemp("org4-site"), "org4", NEWCOMER_HOST, base)
    try:
        yield org4
    finally:
        org4.stop()


def _dir(consortium: Network, org: str) -> list[str]:
    return ["--state-dir", str(consortium.site(org).layout.root)]


def _gov(consortium: Network, *args: str, org: str, check: bool = True) -> tuple[int, dict[str, object]]:
    """`fabricml consortium ARGS --state-dir <org's site> --json`."""
    result = fabricml("consortium", *args, *_dir(consortium, org), "--json", check=check)
    return result.returncode, json.loads(result.stdout)


def _enact(draft: flow.Draft, signers: list[Site]) -> str:
    """Propose with the first signer's site, sign on each site, submit."""
    proposal = flow.propose(signers[0], draft)
    for site in signers:
        flow.sign(site, proposal["id"])
    flow.submit(signers[0], proposal["id"])
    return str(proposal["id"])


def _heartbeat(site: Site, endorsers: list[str] | None = None) -> str:
    """Submit Consortium:Heartbeat as the site's admin through its own peer; the commit
    status name, or the name of the error that stopped it before ordering."""
    with site.profile.peer().sync_channel() as channel:
        gw = sync.connect(channel, site.signing.identity, site.signing.signer, site.signing.hash)
        contract = gw.get_network(site.channel).get_contract(site.profile.chaincode_name, "Consortium")
        try:
            _, commit = contract.submit_async("Heartbeat", endorsing_organizations=endorsers or [])
            return commit.status().code_name
        except (GatewayError, CommitError) as exc:
            return type(exc).__name__


def _add_newcomer(consortium: Network, org4: Newcomer) -> None:
    """org4 builds its own site and exports its bundle; org1 sponsors it by the bundle. A
    member that has not imported the bundle will not sign; one signature of three is
    refused by the orderer; two apply."""
    fingerprint = org4.init_and_export()
    org4.import_members([consortium.layout.exchange / f"{o}.bundle.json" for o in HOSTS])
    bundle = ["add-org", str(org4.bundle), "--fingerprint", fingerprint]
    _, proposal = _gov(consortium, "propose", *bundle, org="org1")
    pid = str(proposal["id"])
    assert proposal["kind"] == "add-org" and proposal["subject"] == "Org4MSP"

    rc, refused = _gov(consortium, "sign", pid, org="org3", check=False)
    assert rc == 1 and "has not imported Org4MSP's bundle" in str(refused["message"]), refused
    _gov(consortium, "sign", pid, org="org1")
    rc, refused = _gov(consortium, "submit", pid, org="org1", check=False)
    assert rc == 1 and refused["status"] == "BAD_REQUEST", refused
    print(f"add-org with one signature of three: {refused['message']}")

    fabricml("site", "import", str(org4.bundle), "--fingerprint", fingerprint, *_dir(consortium, "org2"))
    _gov(consortium, "sign", pid, org="org2")
    _, applied = _gov(consortium, "submit", pid, org="org2")
    _, record = _gov(consortium, "show", pid, org="org3")
    assert record["status"] == "applied" and record["bundle"] == {
        "digest": org4.site().members.get("org4").bundle.digest,
        "fingerprint": fingerprint,
    }
    org = record["org"]
    assert isinstance(org, dict) and org["groups"] == [
        "/Channel/Application/Org4MSP",
        "/Channel/Orderer/Org4MSP",
    ]
    print(f"add-org applied in config block {applied['blockNumber']}")


def _make_consenter(consortium: Network, org4: Newcomer) -> None:
    """The Orderer group has four orgs now: two signatures are refused, three apply."""
    args = ["propose", "consenter-add", org4.orderer, "--bundle", str(org4.bundle)]
    _, proposal = _gov(consortium, *args, org="org1")
    pid = str(proposal["id"])
    for org in ("org1", "org2"):
        _gov(consortium, "sign", pid, org=org)
    rc, refused = _gov(consortium, "submit", pid, org="org1", check=False)
    assert rc == 1 and "requires 3 of the 'Admins' sub-policies" in str(refused["message"]), refused
    _gov(consortium, "sign", pid, org="org3")
    _gov(consortium, "submit", pid, org="org1")


def _join(consortium: Network, org4: Newcomer, scratch: Path) -> Site:
    """A member hands org4 the latest config block; org4 reviews it and joins: its orderer a
    consenter from that block, its peer from block 0, the committed definition approved."""
    block = scratch / "latest-config.block"
    _, written = _gov(consortium, "config-block", "--out", str(block), org="org1")
    review = org4.join(block)
    assert f"config block {written['blockNumber']} of the running channel" in review
    assert "members (4): Org1MSP, Org2MSP, Org3MSP, Org4MSP" in review

    def consenter() -> bool:
        now = org4.orderer_relation()
        height = now.get("height")
        return (
            now.get("status") == "active"
            and isinstance(height, int)
            and height > int(str(written["blockNumber"]))
        )

    assert wait_until(consenter, 120), org4.orderer_relation()
    assert org4.orderer_relation().get("consensusRelation") == "consenter"
    org4.up()
    return Site.open(org4.state_dir)


def _view(root: Path, org: str) -> list[str]:
    """A joined site read as a one-org consortium, for the product's own commands."""
    return ["--topology", str(root / "topology.yaml"), "--state-dir", str(root), "--org", org]


def _model_approved_with_the_newcomer(consortium: Network, org4: Newcomer, scratch: Path) -> None:
    """Four members now: a model needs three approvals, and the newcomer's is one of them."""
    model = scratch / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(bytes(range(256)) * 8)
    (model / "config.json").write_text('{"layers": 2}')
    org1 = _view(consortium.site("org1").layout.root, "org1")
    fabricml("model", "register", *org1, "--name", "gov4", "--version", "1", str(model))
    statuses = []
    for org, root in (("org4", org4.state_dir), ("org2", consortium.site("org2").layout.root)):
        out = fabricml("model", "approve", "gov4@1", *_view(root, org), "--json").stdout
        statuses.append(json.loads(out)["status"])
    assert statuses == ["registered", "registered"]  # 2 of the 3 approvals four members need
    root3 = consortium.site("org3").layout.root
    approved = json.loads(fabricml("model", "approve", "gov4@1", *_view(root3, "org3"), "--json").stdout)
    assert approved["status"] == "approved"
    assert sorted(a["mspId"] for a in approved["approvals"]) == ["Org2MSP", "Org3MSP", "Org4MSP"]


def _members_seen_by_org1(consortium: Network) -> list[str]:
    """org1's `site up` re-reads the channel's members from its config into its own view."""
    fabricml("site", "up", *_dir(consortium, "org1"))
    return sorted(consortium.site("org1").joined["members"])  # type: ignore[index]


def _remove_org3(consortium: Network, sites: dict[str, Site]) -> None:
    """First its consenter, then its org; three of four sign, the newcomer among them."""
    org1, org2, org4 = sites["org1"], sites["org2"], sites["org4"]
    orderer = consortium.topology.org("org3").orderers[0]
    _enact(
        drafts.remove_consenter(
            org1.translator, org1.channel, org1.current_config(), orderer.host, orderer.port
        ),
        [org1, org2, org4],
    )
    _enact(
        drafts.remove_org(org1.translator, org1.channel, org1.current_config(), "Org3MSP"), [org1, org4, org2]
    )


def test_a_fourth_site_joins_by_majority_endorses_and_then_an_org_is_removed(
    consortium: Network, newcomer: Newcomer, tmp_path: Path
) -> None:
    _add_newcomer(consortium, newcomer)
    _make_consenter(consortium, newcomer)
    sites = {o: Site.open(consortium.site(o).layout.root) for o in HOSTS}
    sites["org4"] = _join(consortium, newcomer, tmp_path)
    org1, org3 = sites["org1"], sites["org3"]

    # MAJORITY now means three of four endorsements, and the newcomer's count.
    assert _heartbeat(sites["org4"]) == "VALID"
    assert _heartbeat(org1, ["Org1MSP", "Org2MSP", "Org4MSP"]) == "VALID"
    assert _heartbeat(org1, ["Org1MSP", "Org2MSP"]) == "ENDORSEMENT_POLICY_FAILURE"
    _model_approved_with_the_newcomer(consortium, newcomer, tmp_path)
    assert _members_seen_by_org1(consortium) == ["Org1MSP", "Org2MSP", "Org3MSP", "Org4MSP"]

    _remove_org3(consortium, sites)
    assert _members_seen_by_org1(consortium) == ["Org1MSP", "Org2MSP", "Org4MSP"]
    assert _heartbeat(org1, ["Org1MSP", "Org4MSP"]) == "VALID"
    removed_endorses = _heartbeat(org1, ["Org1MSP", "Org3MSP"])
    removed_submits = _heartbeat(org3)
    print(
        f"after the removal: endorsed by Org3MSP -> {removed_endorses}; Org3MSP's admin -> {removed_submits}"
    )
    assert removed_endorses != "VALID" and removed_submits != "VALID"
    trail = sorted((p["kind"], p["status"]) for p in org1.evaluate("ListProposals"))
    kinds = ["add-org", "consenter-add", "consenter-remove", "remove-org"]
    assert trail == [(k, "applied") for k in kinds]
