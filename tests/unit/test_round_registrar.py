"""The registrar of round models on a busy ledger, through the real Registry and Gateway
clients with only the gRPC stub faked: a registration that committed invalid on a stale
read (the task changed under it) is endorsed again by the gateway's policy, within its
stale budget; the registrar adds no retries of its own, and any other failure is raised."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import pytest
from fabric_protos.peer import transaction_pb2

from fabricml.contracts import RegistryClient
from fabricml.federation import fixedpoint
from fabricml.federation.agent_state import RoundModel
from fabricml.federation.round_models import RoundRegistrar
from fabricml.federation.training import parameters
from fabricml.gateway import CommitError, RetryPolicy
from fabricml.models.mlp import MLP
from fabricml.registry.artifacts import ArtifactStore
from fabricml.registry.service import ModelRegistry
from tests.unit.ledger_stub import LedgerStub, sync_network
from tests.unit.test_gateway_retry import rpc_error

CONFIG = {"type": "mlp", "layers": [3, 2]}
ENTRY = RoundModel(1, "fedavg", {"Org1MSP/trainer": {}}, "ab" * 32, "tx1", "init@1", {})
FAST = RetryPolicy(first_delay=0.001, max_delay=0.002, resubmit_after=0.05, status_probe=0.01)
RECORD = {
    "name": "fed-t1",
    "version": "r1",
    "manifestDigest": "a" * 64,
    "weights": {"digest": "b" * 64, "files": 2},
    "code": {"repository": "", "commit": "", "dirty": False},
    "round": "t1/1",
    "trainingOrgs": ["Org1MSP"],
    "status": "registered",
    "registeredBy": {"mspId": "Org1MSP", "subject": "trainer", "at": "2025-01-01T00:00:00Z", "txId": "x"},
}


class BusyLedger(LedgerStub):
    """No round model registered yet; the first `stale` registrations commit invalid on a
    stale read, later ones commit with `then` (valid unless told otherwise)."""

    def __init__(self, stale: int, then: int = transaction_pb2.VALID) -> None:
        super().__init__(self._answer)
        self.stale, self.then, self.commits = stale, then, 0

    def _answer(self, function: str, args: list[str]) -> bytes:
        if function == "Registry:Get":
            refusal = f"chaincode response 500, NOT_FOUND: model {args[0]} is not registered"
            raise rpc_error(grpc.StatusCode.UNKNOWN, "evaluate failed", refusal)
        assert function == "Registry:Register"
        return json.dumps(RECORD).encode()

    async def CommitStatus(self, request: Any, timeout: float) -> Any:
        answer = await super().CommitStatus(request, timeout)
        self.commits += 1
        answer.result = transaction_pb2.MVCC_READ_CONFLICT if self.commits <= self.stale else self.then
        return answer

    def registrations(self) -> int:
        return sum(kind == "Endorse" for kind, _, _ in self.calls)


def register(ledger: BusyLedger, tmp_path: Path) -> bool:
    weights = fixedpoint.encode(parameters(MLP(CONFIG["layers"])))  # type: ignore[arg-type]
    with sync_network(ledger, FAST) as network:
        ledger_client = RegistryClient(network.get_contract("fabricml", "Registry"))
        registry = ModelRegistry(ledger_client, ArtifactStore(tmp_path))
        return RoundRegistrar(registry, "t1", {}, lambda _: None).register(ENTRY, weights, CONFIG)


def test_a_registration_that_read_a_changing_task_ten_times_is_endorsed_again_by_the_gateway(
    tmp_path: Path,
) -> None:
    ledger = BusyLedger(stale=10)
    assert register(ledger, tmp_path) is True
    assert ledger.registrations() == 11  # more than the mismatch budget: the stale budget applies


def test_endless_conflicts_end_at_the_stale_budget_and_the_registrar_adds_none(tmp_path: Path) -> None:
    ledger = BusyLedger(stale=1000)
    with pytest.raises(CommitError, match="MVCC_READ_CONFLICT"):
        register(ledger, tmp_path)
    assert ledger.registrations() == FAST.stale_attempts


def test_another_invalid_commit_is_raised_after_one_registration(tmp_path: Path) -> None:
    ledger = BusyLedger(stale=0, then=transaction_pb2.ENDORSEMENT_POLICY_FAILURE)
    with pytest.raises(CommitError, match="ENDORSEMENT_POLICY_FAILURE"):
        register(ledger, tmp_path)
    assert ledger.registrations() == 1
