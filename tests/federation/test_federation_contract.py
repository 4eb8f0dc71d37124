"""The Federation and Token contracts on the real network: a round from stake to rewards."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from fabricml.gateway import EndorseError, sync
from fabricml.gateway.profile import ConnectionProfile
from fabricml.network.network import Network
from fabricml.registry.connect import open_registry
from fabricml.registry.service import ModelRegistration


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


def test_a_federated_round_goes_from_stake_to_rewards_on_the_ledger(
    network: Network, contracts: Callable[[str, str, str], sync.Contract], tmp_path: Path
) -> None:
    contract = contracts
    mint_id = f"mint-{uuid.uuid4().hex[:6]}"
    for org in ("org1", "org2", "org3"):
        msp = network.topology.org(org).msp_id
        for voter in ("org1", "org2"):
            contract(voter, "admin", "Token").submit_transaction("VoteMint", f"{mint_id}-{org}", msp, "1000")

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
        "rounds": 1,
        "minParticipants": 3,
        "stake": 100,
        "rewardPerRound": 90,
        "commitSeconds": 600,
        "revealSeconds": 600,
        "aggregateSeconds": 600,
        "rule": "median",
    }
    orgs = ("org1", "org2", "org3")
    before = {
        o: json.loads(
            contract(o, "auditor", "Token").evaluate_transaction("GetBalance", network.topology.org(o).msp_id)
        )["amount"]
        for o in orgs
    }
    contract("org1", "admin", "Federation").submit_transaction("CreateTask", json.dumps(task))
    for org in orgs:
        contract(org, "trainer", "Federation").submit_transaction("Join", task_id)
    with pytest.raises(EndorseError, match="role=trainer"):
        contract("org1", "user1", "Federation").submit_transaction("Join", task_id)
    contract("org2", "admin", "Federation").submit_transaction("Start", task_id)

    updates = {org: _digest(f"update of {org}") for org in orgs}
    for org in orgs:
        contract(org, "trainer", "Federation").submit_transaction("Commit", task_id, "1", updates[org], "50")
    contract("org3", "auditor", "Federation").submit_transaction("Advance", task_id)
    for org in orgs:
        contract(org, "trainer", "Federation").submit_transaction(
            "Reveal", task_id, "1", updates[org], f"https://127.0.0.1/{org}/{updates[org]}"
        )
    contract("org1", "auditor", "Federation").submit_transaction("Advance", task_id)

    scores = json.dumps({"Org1MSP/trainer": 2, "Org2MSP/trainer": 1, "Org3MSP/trainer": 0})
    aggregate = _digest("median of three")
    flagged = json.dumps(["Org3MSP/trainer"])
    first = json.loads(
        contract("org1", "admin", "Federation").submit_transaction(
            "PostAggregate", task_id, "1", aggregate, scores, flagged
        )
    )
    assert first["mspId"] == "Org1MSP" and first["digest"] == aggregate
    with pytest.raises(EndorseError, match="no quorum yet"):
        contract("org3", "auditor", "Federation").submit_transaction("Advance", task_id)
    contract("org2", "admin", "Federation").submit_transaction(
        "PostAggregate", task_id, "1", aggregate, scores, flagged
    )
    contract("org3", "auditor", "Federation").submit_transaction("Advance", task_id)
    result = json.loads(
        contract("org3", "auditor", "Federation").evaluate_transaction("GetRound", task_id, "1")
    )
    assert result["status"] == "FINALIZED" and result["slashed"] == ["Org3MSP/trainer"]
    # Pool 90 + org3's slashed stake 100, split 2:1.
    assert result["rewards"] == {"Org1MSP/trainer": 126, "Org2MSP/trainer": 64}
    task_after = json.loads(
        contract("org3", "auditor", "Federation").evaluate_transaction("GetTask", task_id)
    )
    assert task_after["status"] == "done" and task_after["escrow"] == 0
    after = {
        o: json.loads(
            contract(o, "auditor", "Token").evaluate_transaction("GetBalance", network.topology.org(o).msp_id)
        )["amount"]
        for o in orgs
    }
    assert after["org1"] - before["org1"] == -90 + 126
    assert after["org2"] - before["org2"] == 64
    assert after["org3"] - before["org3"] == -100
