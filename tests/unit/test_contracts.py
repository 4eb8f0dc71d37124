"""The typed contract clients over the real Gateway client, with only its gRPC stub faked."""

from __future__ import annotations

import asyncio
import json

import pytest

from fabricml.contracts import AsyncContract, FederationClient, RecordError, RegistryClient, TokenClient
from fabricml.contracts.federation import Task, TaskRequest
from fabricml.contracts.registry import ModelVersion

from .ledger_stub import LedgerStub, async_network, sync_network

TASK = {
    "id": "t1",
    "initialModel": "m@r0",
    "rounds": 2,
    "minParticipants": 2,
    "stake": 100,
    "rewardPerRound": 30,
    "commitSeconds": 300,
    "revealSeconds": 300,
    "aggregateSeconds": 300,
    "rule": "median",
    "creator": "Org1MSP",
    "status": "enrolling",
    "round": 0,
    "phase": "",
    "phaseDeadline": "",
    "participants": None,
    "escrow": 60,
}
MODEL = {
    "name": "m",
    "version": "1",
    "manifestDigest": "a" * 64,
    "weights": {"digest": "b" * 64, "files": 2},
    "datasets": None,
    "code": {"repository": "", "commit": "", "dirty": False},
    "parents": None,
    "round": "",
    "trainingOrgs": ["Org1MSP"],
    "storageUris": [],
    "metrics": {"accuracy": 1},
    "confidentialDigest": "",
    "status": "registered",
    "approvals": None,
    "approvedAt": "",
    "registeredBy": {"mspId": "Org1MSP", "subject": "trainer", "at": "2025-01-01T00:00:00Z", "txId": "x"},
}


def answers(table: dict[str, object]) -> LedgerStub:
    return LedgerStub(lambda function, _: json.dumps(table[function]).encode())


def test_a_query_sends_the_contracts_function_and_reads_the_record_once() -> None:
    stub = answers({"Federation:GetTask": TASK})
    with sync_network(stub) as network:
        task = FederationClient(network.get_contract("fabricml", "Federation")).get_task("t1")
    assert stub.calls == [("Evaluate", "Federation:GetTask", ["t1"])]
    assert isinstance(task, Task)
    assert (task.id, task.initial_model, task.status, task.escrow) == ("t1", "m@r0", "enrolling", 60)
    assert task.participants == ()  # Go's null slice


def test_a_submit_encodes_its_arguments_as_the_chaincode_expects() -> None:
    posted = {
        "mspId": "Org1MSP",
        "digest": "d" * 64,
        "scores": {"Org1MSP/a": 1000},
        "flagged": None,
        "missing": ["Org3MSP/c"],
        "txId": "x",
    }
    stub = answers({"Federation:PostAggregate": posted})
    with sync_network(stub) as network:
        fed = FederationClient(network.get_contract("fabricml", "Federation"))
        post = fed.post_aggregate("t1", 3, "d" * 64, {"Org1MSP/a": 1000}, ["Org2MSP/b"], ["Org3MSP/c"])
    args = ["t1", "3", "d" * 64, '{"Org1MSP/a": 1000}', '["Org2MSP/b"]', '["Org3MSP/c"]']
    assert stub.calls == [("Endorse", "Federation:PostAggregate", args)]
    assert post.scores == {"Org1MSP/a": 1000} and post.flagged == () and post.missing == ("Org3MSP/c",)


def test_a_request_record_is_sent_as_the_chaincodes_json() -> None:
    request = TaskRequest.from_json({k: TASK[k] for k in list(TASK)[:10]})
    stub = answers({"Federation:CreateTask": TASK})
    with sync_network(stub) as network:
        FederationClient(network.get_contract("fabricml", "Federation")).create_task(request)
    [(_, _, [body])] = stub.calls
    defaults = {"maxPerOrg": 0, "enrollSeconds": 0, "clockSkewSeconds": 0}  # 0: the contract's default
    assert json.loads(body) == {k: TASK[k] for k in list(TASK)[:10]} | defaults


def test_fields_a_newer_chaincode_adds_survive_a_round_trip() -> None:
    record = ModelVersion.from_json({**MODEL, "newField": {"x": 1}})
    assert record.extra == {"newField": {"x": 1}}
    out = record.to_json()
    assert out["newField"] == {"x": 1} and "revocation" not in out
    assert out["metrics"] == {"accuracy": 1.0} and out["registeredBy"]["mspId"] == "Org1MSP"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"escrow": "60"}, "Task.escrow"),
        ({"participants": [{"mspId": "Org1MSP", "subject": "a"}]}, "slashed"),
        ({"status": None}, "Task.status"),
        ({"round": True}, "Task.round"),
    ],
)
def test_an_answer_of_the_wrong_shape_is_refused_naming_the_field(
    change: dict[str, object], named: str
) -> None:
    stub = answers({"Federation:GetTask": {**TASK, **change}})
    with sync_network(stub) as network, pytest.raises(RecordError, match=named):
        FederationClient(network.get_contract("fabricml", "Federation")).get_task("t1")


def test_a_missing_field_is_refused() -> None:
    with pytest.raises(RecordError, match="no field 'creator'"):
        Task.from_json({k: v for k, v in TASK.items() if k != "creator"})


def test_the_same_method_runs_on_the_asyncio_client() -> None:
    vote = {"id": "v", "recipient": "Org2MSP", "amount": 5, "voters": ["Org1MSP"], "minted": False}
    stub = answers({"Registry:Get": MODEL, "Token:VoteMint": vote})
    network = async_network(stub)
    registry = AsyncContract(RegistryClient, network.get_contract("fabricml", "Registry"))
    token = AsyncContract(TokenClient, network.get_contract("fabricml", "Token"))

    async def both() -> tuple[ModelVersion, int]:
        record = await registry.call(lambda r: r.get("m@1"))
        vote = await token.call(lambda t: t.vote_mint("v", "Org2MSP", 5))
        return record, vote.amount

    record, amount = asyncio.run(both())
    assert record.ref == "m@1" and amount == 5
    assert stub.calls == [
        ("Evaluate", "Registry:Get", ["m@1"]),
        ("Endorse", "Token:VoteMint", ["v", "Org2MSP", "5"]),
    ]


def test_the_asyncio_runner_takes_exactly_one_method_call() -> None:
    contract = AsyncContract(TokenClient, async_network(answers({})).get_contract("fabricml", "Token"))
    with pytest.raises(TypeError, match="one method call"):
        asyncio.run(contract.call(lambda t: "not a call"))


def test_protocol_v2_calls_send_what_the_chaincode_takes() -> None:
    state = {"taskId": "t1", "round": 2, "phase": "AGGREGATE", "participants": ["Org1MSP/a"],
             "committed": ["Org1MSP/a"], "commitsClosed": True, "posted": [], "quorumSize": 2,
             "agreedDigest": "", "commitDeadline": "2025-01-01T00:00:00Z", "commitClose": "",
             "revealDeadline": "", "aggregateDeadline": "", "settleable": False}  # fmt: skip
    result = {"taskId": "t1", "round": 1, "status": "CLOSED", "reason": "no quorum", "aggregateDigest": "",
              "agreeing": [], "disagreeing": [], "rewards": {}, "slashed": [], "missing": ["Org1MSP/a"],
              "penalized": {"Org2MSP/b": 10}, "dropped": [], "pool": 40, "carried": 40, "forfeits": {},
              "commitClose": "", "settledAt": "", "taskDone": False, "txId": "x"}  # fmt: skip
    commitment = {"taskId": "t1", "round": 2, "participant": {"mspId": "Org1MSP", "subject": "a",
                  "stake": 0, "slashed": False, "out": "", "outRound": 0, "missed": 0},
                  "digest": "d" * 64, "samples": 5, "uri": "https://o/v1/blobs/x", "committedAt": "",
                  "txId": "y"}  # fmt: skip
    stub = answers({"Federation:GetRoundState": state, "Federation:Settle": result,
                    "Federation:Commit": commitment, "Token:GetSupply": {"amount": 3000}})  # fmt: skip
    with sync_network(stub) as network:
        fed = FederationClient(network.get_contract("fabricml", "Federation"))
        read = fed.get_round_state("t1", 2)
        settled = fed.settle("t1", 1)
        made = fed.commit("t1", 2, "d" * 64, 5, "https://o/v1/blobs/x")
        supply = TokenClient(network.get_contract("fabricml", "Token")).get_supply()
    assert stub.calls == [
        ("Evaluate", "Federation:GetRoundState", ["t1", "2"]),
        ("Endorse", "Federation:Settle", ["t1", "1"]),
        ("Endorse", "Federation:Commit", ["t1", "2", "d" * 64, "5", "https://o/v1/blobs/x"]),
        ("Evaluate", "Token:GetSupply", []),
    ]
    assert read.commits_closed and read.phase == "AGGREGATE" and read.participants == ("Org1MSP/a",)
    assert settled.missing == ("Org1MSP/a",) and settled.penalized == {"Org2MSP/b": 10}
    assert made.participant.active_in(2) and made.uri.endswith("/x") and supply.amount == 3000
