"""The registrar of round models on a busy ledger: a registration that committed invalid
on a stale read (the task changed under it) is endorsed again; any other failure is not."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from fabricml.federation import fixedpoint, round_models
from fabricml.federation.agent_state import RoundModel
from fabricml.federation.round_models import RoundRegistrar
from fabricml.federation.training import parameters
from fabricml.gateway import CommitError, RefusalCode
from fabricml.models.mlp import MLP
from tests.unit.fake_federation import refused

CONFIG = {"type": "mlp", "layers": [3, 2]}
ENTRY = RoundModel(1, "fedavg", {"Org1MSP/trainer": {}}, "ab" * 32, "tx1", "init@1", {})


class BusyRegistry:
    """Refuses the first registrations with `failures`, then records the call."""

    def __init__(self, failures: list[CommitError]) -> None:
        self.failures, self.registered = list(failures), []  # type: list[CommitError], list[Any]

    def get(self, ref: str) -> None:
        raise refused(RefusalCode.NOT_FOUND, f"model {ref} is not registered")

    def register(self, folder: Path, registration: Any) -> None:
        assert (folder / "config.json").exists()
        if self.failures:
            raise self.failures.pop(0)
        self.registered.append(registration)


def stale(block: int) -> CommitError:
    return CommitError(f"tx{block}", 11, "MVCC_READ_CONFLICT", block)


def registrar(registry: BusyRegistry, lines: list[str]) -> RoundRegistrar:
    return RoundRegistrar(registry, "t1", {}, lines.append)  # type: ignore[arg-type]


def weights() -> fixedpoint.Update:
    return fixedpoint.encode(parameters(MLP(CONFIG["layers"])))  # type: ignore[arg-type]


def test_a_registration_that_read_a_changing_task_is_endorsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda _: None)
    registry, lines = BusyRegistry([stale(7), stale(9)]), []  # type: BusyRegistry, list[str]
    assert registrar(registry, lines).register(ENTRY, weights(), CONFIG) is True
    assert [r.version for r in registry.registered] == ["r1"]
    assert sum("changed under its registration (MVCC_READ_CONFLICT)" in line for line in lines) == 2


def test_other_commit_failures_and_endless_conflicts_are_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda _: None)
    policy = CommitError("tx", 10, "ENDORSEMENT_POLICY_FAILURE", 5)
    registry = BusyRegistry([policy])
    with pytest.raises(CommitError, match="ENDORSEMENT_POLICY_FAILURE"):
        registrar(registry, []).register(ENTRY, weights(), CONFIG)
    endless = BusyRegistry([stale(b) for b in range(round_models.STALE_TRIES)])
    with pytest.raises(CommitError, match="MVCC_READ_CONFLICT"):
        registrar(endless, []).register(ENTRY, weights(), CONFIG)
    assert registry.registered == endless.registered == []
