"""Protocol v2 of the Federation contract on the real network: two blocks per round (the
commitments with the previous round's settlement, then the assessments), every
transaction valid, a lying timestamp refused by the endorsers, a replay refused."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from fabricml.demo.admins import OrgAdmins
from fabricml.gateway import EndorseError, RefusalCode, is_refusal, sync
from fabricml.gateway.profile import ConnectionProfile
from fabricml.network.network import Network
from fabricml.registry.connect import open_registry
from fabricml.registry.service import ModelRegistration
from tests.federation.clock import proposals_ahead
from tests.federation.conservation import assert_tokens_conserved

ORGS = ("org1", "org2", "org3")


@pytest.fixture
def contracts(network: Network) -> Iterator[Callable[[str, str, str], sync.Contract]]:
    with ExitStack() as stack:

        def contract(org: str, identity: str, name: str) -> sync.Contract:
            profile = ConnectionProfile.load(network.layout.profile(network.topology.org(org)))
            ident, signer, hash_ = profile.identity(identity)
            channel = stack.enter_context(profile.peer().sync_channel())
            gw = sync.connect(channel, ident, signer, hash_)
            return gw.get_network(network.topology.channel).get_contract(
                network.topology.chaincode_name, name
            )

        yield contract


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


Call = tuple[sync.Contract, str, tuple[str, ...]]


def _all_at_once(calls: list[Call]) -> set[int]:
    """Endorse and send every transaction, then wait for each; all must be valid. Returns
    the blocks they landed in (one, when the orderer cut them together)."""
    sent = [c.submit_async(fn, *args) for c, fn, args in calls]
    statuses = [commit.status() for _, commit in sent]
    assert [s.code_name for s in statuses] == ["VALID"] * len(calls), statuses
    return {s.block_number for s in statuses}


def test_two_rounds_take_two_blocks_each_with_every_transaction_valid(
    network: Network,
    contracts: Callable[[str, str, str], sync.Contract],
    tmp_path: Path,
) -> None:
    c = contracts
    msp = {o: network.topology.org(o).msp_id for o in ORGS}
    mint = f"mint-{uuid.uuid4().hex[:6]}"
    for org in ORGS:
        for voter in ("org1", "org2"):
            c(voter, "admin", "Token").submit_transaction("VoteMint", f"{mint}-{org}", msp[org], "1000")
    profile = ConnectionProfile.load(network.layout.profile(network.topology.org("org1")))
    model = tmp_path / "base"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"initial global model")
    base = f"fedbase-{uuid.uuid4().hex[:6]}"
    with open_registry(profile, "trainer") as reg:
        reg.register(model, ModelRegistration(base, "0", ["Org1MSP"]))
    task_id = f"task-{uuid.uuid4().hex[:6]}"
    task = {
        "id": task_id,
        "initialModel": f"{base}@0",
        "rounds": 2,
        "minParticipants": 3,
        "stake": 100,
        "rewardPerRound": 90,
        "commitSeconds": 600,
        "revealSeconds": 600,
        "aggregateSeconds": 600,
        "rule": "median",
    }

    def balance(org: str) -> int:
        return int(
            json.loads(c(org, "auditor", "Token").evaluate_transaction("GetBalance", msp[org]))["amount"]
        )

    before = {o: balance(o) for o in ORGS}
    c("org1", "admin", "Federation").submit_transaction("CreateTask", json.dumps(task))
    for org in ORGS:
        c(org, "trainer", "Federation").submit_transaction("Join", task_id)
    c("org2", "admin", "Federation").submit_transaction("Start", task_id)
    fed = {o: c(o, "trainer", "Federation") for o in ORGS}
    adm = {o: c(o, "admin", "Federation") for o in ORGS}
    auditor = c("org3", "auditor", "Federation")

    # A lying timestamp, ten minutes ahead (inside the peer's own 15 min window): the
    # contract's check against each endorser's clock refuses it.
    with proposals_ahead(600), pytest.raises(EndorseError) as lie:
        fed["org1"].submit_transaction("Settle", task_id, "1")
    assert is_refusal(lie.value, RefusalCode.INVALID), lie.value

    scores = json.dumps({f"{msp[o]}/trainer": 500 for o in ORGS})
    blocks: list[set[int]] = []
    for rnd in (1, 2):
        updates = {o: _digest(f"update of {o} in round {rnd}") for o in ORGS}
        calls: list[Call] = [
            (fed[o], "Commit", (task_id, str(rnd), updates[o], "50", f"https://127.0.0.1/{o}/{updates[o]}"))
            for o in ORGS
        ]
        if rnd == 2:
            with pytest.raises(EndorseError) as replay:
                fed["org2"].submit_transaction(
                    "Commit", task_id, "2", _digest("update of org1 in round 1"), "5", "https://x"
                )
            assert is_refusal(replay.value, RefusalCode.CONFLICT), replay.value
            calls.insert(0, (fed["org3"], "Settle", (task_id, "1")))
        blocks.append(_all_at_once(calls))
        state = json.loads(auditor.evaluate_transaction("GetRoundState", task_id, str(rnd)))
        assert state["commitsClosed"] and state["phase"] == "AGGREGATE", state
        aggregate = _digest(f"aggregate of round {rnd}")
        blocks.append(
            _all_at_once(
                [(adm[o], "PostAggregate", (task_id, str(rnd), aggregate, scores, "[]", "[]")) for o in ORGS]
            )
        )
        state = json.loads(auditor.evaluate_transaction("GetRoundState", task_id, str(rnd)))
        assert state["agreedDigest"] == aggregate and state["phase"] == "SETTLE", state
    print("blocks per step (commitments, assessments, ...):", blocks)
    result = json.loads(fed["org1"].submit_transaction("Settle", task_id, "2"))
    assert result["status"] == "FINALIZED" and result["taskDone"], result
    # Read on the peer that confirmed the Settle (org3's may be a block behind for a moment).
    view = json.loads(c("org1", "auditor", "Federation").evaluate_transaction("GetTask", task_id))
    assert view["status"] == "done" and view["escrow"] == 0, view
    after = {o: balance(o) for o in ORGS}
    assert after["org1"] - before["org1"] == -180 + 60
    assert after["org2"] - before["org2"] == 60 and after["org3"] - before["org3"] == 60
    with OrgAdmins.open(network) as admins:
        assert_tokens_conserved(admins)
