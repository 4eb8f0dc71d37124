"""End to end on its own network: a fourth org joins by a majority's signatures, its orderer
becomes a consenter, its peer catches up and endorses, MAJORITY counts it; then an org is
removed and its peer can no longer endorse."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import yaml
from fabric_protos.common import common_pb2

from fabricml.gateway import CommitError, GatewayError, sync
from fabricml.gateway.profile import ConnectionProfile
from fabricml.network.governance import drafts, flow
from fabricml.network.governance.orderer import DeliverError, OrdererRefusedError
from fabricml.network.governance.orgdef import read_public_msp
from fabricml.network.governance.site import Site
from fabricml.network.network import Network
from fabricml.network.processes import wait_until
from fabricml.network.topology import HOST
from tests.conftest import TOPOLOGIES, running_network

from .newcomer import Newcomer

pytestmark = pytest.mark.network
# Its own ports: this test changes membership, which the shared network must keep.
BASE_PORT = 25000


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    raw = yaml.safe_load((TOPOLOGIES / "raft3.yaml").read_text())
    raw["name"], raw["ports"]["base"] = "fabricml-gov", BASE_PORT
    topology = tmp_path_factory.mktemp("gov-topology") / "gov3.yaml"
    topology.write_text(yaml.safe_dump(raw))
    yield from running_network(topology, tmp_path_factory.mktemp("gov3"))


@pytest.fixture(scope="module")
def newcomer(consortium: Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Newcomer]:
    org4 = Newcomer(consortium, tmp_path_factory.mktemp("org4-site"))
    try:
        yield org4
    finally:
        org4.stop()


def _sites(network: Network) -> dict[str, Site]:
    return {
        o.name: Site(ConnectionProfile.load(network.layout.profile(o)))
        for o in network.topology.organizations
    }


def _enact(draft: flow.Draft, signers: list[Site], refused_with: list[Site] | None = None) -> str:
    """Propose with the first signer's site, sign on each site, submit; optionally show that
    the first `refused_with` signatures alone are refused by the orderer."""
    proposal = flow.propose(signers[0], draft)
    if refused_with:
        for site in refused_with:
            flow.sign(site, proposal["id"])
        with pytest.raises(OrdererRefusedError) as refused:
            flow.submit(signers[0], proposal["id"], wait=5)
        print(f"{draft.kind} {draft.subject} with {len(refused_with)} signatures: {refused.value.info}")
    for site in signers:
        if not refused_with or site not in refused_with:
            flow.sign(site, proposal["id"])
    flow.submit(signers[0], proposal["id"])
    return str(proposal["id"])


def _heartbeat(site: Site, endorsers: list[str] | None = None, function: str = "Heartbeat") -> str:
    """Submit a Consortium transaction as the site's admin through its own peer; the commit
    status name, or the name of the error that stopped it before ordering."""
    with site.profile.peer().sync_channel() as channel:
        gw = sync.connect(channel, site.signing.identity, site.signing.signer, site.signing.hash)
        contract = gw.get_network(site.channel).get_contract(site.profile.chaincode_name, "Consortium")
        args = ["Rural Clinic"] if function == "Join" else []
        try:
            _, commit = contract.submit_async(function, *args, endorsing_organizations=endorsers or [])
            return commit.status().code_name
        except (GatewayError, CommitError) as exc:
            return type(exc).__name__


def _relation(newcomer: Newcomer) -> dict[str, object]:
    out = newcomer.net.tools.osnadmin(
        newcomer.org.orderers[0], "channel", "list", "--channelID", newcomer.net.topology.channel
    )
    return dict(json.loads(out[out.index("{") :]))


def _add_newcomer(sites: dict[str, Site], newcomer: Newcomer) -> None:
    """The newcomer builds its own site; only its public MSP goes to the sponsor, org1.
    Two of three sign; one alone is refused by the orderer."""
    org1, org2, org3 = sites["org1"], sites["org2"], sites["org3"]
    newcomer.start_ca_and_issue_identities()
    msp = read_public_msp("Org4MSP", newcomer.msp_dir)
    draft = drafts.add_org(
        org1.translator, org1.channel, org1.current_config(), msp, [newcomer.orderer],
        [(HOST, newcomer.org.peer_port)],
    )  # fmt: skip
    record = flow.proposal(org3, _enact(draft, [org1, org2], refused_with=[org1]))
    assert record["bundle"]["fingerprint"] == msp.fingerprint()
    assert record["org"]["groups"] == ["/Channel/Application/Org4MSP", "/Channel/Orderer/Org4MSP"]


def _make_consenter(sites: dict[str, Site], newcomer: Newcomer) -> None:
    """The Orderer group now has four orgs: two signatures are refused, three apply. Only
    then does the orderer start, joining with the config block that lists it (listed as a
    follower, it would answer clients BAD_REQUEST)."""
    org1 = sites["org1"]
    cert = newcomer.orderer_tls_cert.read_bytes()
    host, port = newcomer.orderer.rsplit(":", 1)
    draft = drafts.add_consenter(org1.translator, org1.channel, org1.current_config(), host, int(port), cert)
    _enact(draft, [org1, sites["org2"], sites["org3"]], refused_with=[org1, sites["org2"]])
    latest = org1.current_config()
    with org1.orderer() as orderer:
        newcomer.join_orderer(orderer.block(latest.block_number))

    # It pulls blocks 0 .. the join block from the others, then runs as a consenter.
    def caught_up() -> bool:
        now = _relation(newcomer)
        height = now.get("height")
        return now.get("status") == "active" and isinstance(height, int) and height > latest.block_number

    assert wait_until(caught_up, 120)
    assert _relation(newcomer).get("consensusRelation") == "consenter"


def _join_peer(consortium: Network, newcomer: Newcomer) -> Site:
    """Its peer joins from block 0 (fetched by its own admin from its own orderer), catches
    up, approves the current definition with its own admin; its admin joins the consortium."""
    org4 = newcomer.site()
    fetched: list[common_pb2.Block] = []

    def genesis() -> bool:  # SERVICE_UNAVAILABLE until its Raft node has caught up
        try:
            with org4.orderer() as orderer:
                fetched.append(orderer.block(0))
            return True
        except DeliverError:
            return False

    assert wait_until(genesis, 120), "the newcomer's own orderer never served block 0"
    newcomer.join_peer(fetched[0])
    target = consortium.peer_height(consortium.topology.org("org1")) or 0
    assert wait_until(lambda: (newcomer.net.peer_height(newcomer.org) or 0) >= target, 120)
    newcomer.run_chaincode()
    # Discovery learns of the newcomer's chaincode by gossip, a little after it starts.
    assert wait_until(lambda: _heartbeat(org4, function="Join") == "VALID", 90)
    return org4


def _remove_org3(consortium: Network, sites: dict[str, Site]) -> None:
    """First its consenter, then its org; three of four sign, the newcomer among them."""
    org1, org2, org4 = sites["org1"], sites["org2"], sites["org4"]
    port = consortium.topology.org("org3").orderers[0].port
    _enact(
        drafts.remove_consenter(org1.translator, org1.channel, org1.current_config(), HOST, port),
        [org1, org2, org4],
    )
    _enact(
        drafts.remove_org(org1.translator, org1.channel, org1.current_config(), "Org3MSP"), [org1, org4, org2]
    )


def test_a_fourth_org_joins_by_majority_endorses_and_then_an_org_is_removed(
    consortium: Network, newcomer: Newcomer
) -> None:
    sites = _sites(consortium)
    _add_newcomer(sites, newcomer)
    _make_consenter(sites, newcomer)
    sites["org4"] = _join_peer(consortium, newcomer)
    org1, org3 = sites["org1"], sites["org3"]

    # MAJORITY now means three of four endorsements, and the newcomer's count.
    assert _heartbeat(org1, ["Org1MSP", "Org2MSP", "Org4MSP"]) == "VALID"
    assert _heartbeat(org1, ["Org1MSP", "Org2MSP"]) == "ENDORSEMENT_POLICY_FAILURE"

    _remove_org3(consortium, sites)
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
