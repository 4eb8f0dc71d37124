"""A config update goes through the ledger: proposed, signed on each site, refused by the
orderer with too few signatures, applied with a majority, its outcome recorded."""

from __future__ import annotations

import base64
import json

import pytest
from fabric_protos.orderer import configuration_pb2

from fabricml.gateway import GatewayError, RefusalCode, refusal_of
from fabricml.network.governance import drafts, flow
from fabricml.network.governance.orderer import OrdererRefusedError
from fabricml.network.governance.signatures import config_signature
from fabricml.network.governance.site import Site
from fabricml.network.network import Network

pytestmark = pytest.mark.network
BATCH_SIZE = "/Channel/Orderer/BatchSize"


def _batch_size_draft(site: Site, messages: int, summary: str = "") -> flow.Draft:
    snapshot = site.current_config()
    value = dict(snapshot.json["channel_group"]["groups"]["Orderer"]["values"]["BatchSize"]["value"])
    value["max_message_count"] = messages
    return drafts.policy(site.translator, site.channel, snapshot, BATCH_SIZE, value, summary)


def _max_messages(site: Site) -> int:
    value = site.current_config().config.channel_group.groups["Orderer"].values["BatchSize"].value
    return int(configuration_pb2.BatchSize.FromString(value).max_message_count)


def _code(exc: pytest.ExceptionInfo[GatewayError]) -> RefusalCode:
    refusal = refusal_of(exc.value)
    assert refusal is not None, f"not a coded refusal: {exc.value}"
    return refusal.code


def test_one_signature_of_three_is_refused_by_the_orderer_and_two_apply(
    network: Network, sites: dict[str, Site]
) -> None:
    org1, org2 = sites["org1"], sites["org2"]
    before = org1.current_config().block_number
    messages = _max_messages(org1) - 7
    proposal = flow.propose(org1, _batch_size_draft(org1, messages))
    assert proposal["status"] == "open"
    assert [c.split(" to version")[0] for c in proposal["changes"]] == [f"update value {BATCH_SIZE}"]
    flow.sign(org1, proposal["id"])

    with pytest.raises(OrdererRefusedError) as refused:
        flow.submit(org1, proposal["id"], wait=5)
    print(f"the orderer refused one signature of three: {refused.value.status}: {refused.value.info}")
    assert refused.value.status == "BAD_REQUEST"
    assert "requires 2 of the 'Admins' sub-policies to be satisfied" in refused.value.info
    assert org1.current_config().block_number == before
    assert _max_messages(org2) == messages + 7

    _, review = flow.sign(org2, proposal["id"])
    assert review.lines == [f"modify value {BATCH_SIZE}"]
    applied = flow.submit(org1, proposal["id"])
    assert applied.block_number > before
    assert _max_messages(sites["org3"]) == messages

    trail = flow.proposal(sites["org3"], proposal["id"])
    assert trail["status"] == "applied"
    assert [s["mspId"] for s in trail["signatures"]] == ["Org1MSP", "Org2MSP"]
    assert [(o["mspId"], o["blockNumber"]) for o in trail["outcomes"]] == [("Org1MSP", applied.block_number)]
    confirmed = flow.confirm(sites["org3"], proposal["id"])
    assert confirmed["blockNumber"] == applied.block_number


def test_a_summary_that_does_not_match_its_update_is_refused_and_nothing_is_recorded(
    sites: dict[str, Site],
) -> None:
    org1 = sites["org1"]
    listed = org1.evaluate("ListProposals")
    lying = _batch_size_draft(org1, 123, summary="Raise /Channel/Orderer/BatchTimeout to 2s")
    with pytest.raises(GatewayError) as refused:
        flow.propose(org1, lying)
    assert _code(refused) == RefusalCode.INVALID
    assert "summary must name the proposal's subject" in str(refusal_of(refused.value))
    # The subject says BatchTimeout, the update changes BatchSize.
    other = flow.Draft(
        "policy", "/Channel/Orderer/BatchTimeout", "Set /Channel/Orderer/BatchTimeout", lying.update
    )
    with pytest.raises(GatewayError) as refused:
        org1.submit("Propose", _request(other))
    assert _code(refused) == RefusalCode.INVALID
    assert org1.evaluate("ListProposals") == listed


def _request(draft: flow.Draft) -> str:
    return json.dumps({
        "kind": draft.kind, "subject": draft.subject, "summary": draft.summary,
        "configUpdate": base64.b64encode(draft.update).decode(),
    })  # fmt: skip


def test_a_second_signature_by_the_same_org_and_a_non_admins_signature_are_refused(
    network: Network, sites: dict[str, Site]
) -> None:
    org1, org2 = sites["org1"], sites["org2"]
    proposal = flow.propose(org2, _batch_size_draft(org2, _max_messages(org2) + 3))
    flow.sign(org2, proposal["id"])
    with pytest.raises(GatewayError) as refused:
        flow.sign(org2, proposal["id"])
    assert _code(refused) == RefusalCode.CONFLICT

    user = Site(org1.profile, identity="user1")
    with pytest.raises(GatewayError) as refused:
        flow.sign(user, proposal["id"])
    assert _code(refused) == RefusalCode.FORBIDDEN

    # Org1's admin tries to record a signature Org3's admin made.
    update = flow.update_of(flow.proposal(org1, proposal["id"]))
    foreign = base64.b64encode(config_signature(update, sites["org3"].signing)).decode()
    with pytest.raises(GatewayError) as refused:
        org1.submit("Sign", proposal["id"], foreign)
    assert _code(refused) == RefusalCode.FORBIDDEN
    assert [s["mspId"] for s in flow.proposal(org1, proposal["id"])["signatures"]] == ["Org2MSP"]
