"""The demo watches its agent processes: a dead one stops it at once, named, with the end
of its log (issue 17.4), and agents that end with the task are no failure."""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from fabricml.contracts.federation import Task
from fabricml.demo.agents import AgentDied, AgentFleet, AgentLaunch
from fabricml.demo.run import watch

from .test_agent_steps import _task


class Ledger:
    def __init__(self, task: Task) -> None:
        self.task = task

    def get_task(self, task_id: str) -> Task:
        return self.task


def _agent(script: str) -> list[str]:
    return [sys.executable, "-c", script]


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AgentFleet:
    def command(self: AgentLaunch, net: object) -> list[str]:
        return _agent(
            f"print('Org1MSP/{self.identity} joined task t', flush=True); import time; time.sleep(60)"
        )

    monkeypatch.setattr(AgentLaunch, "command", command)
    return AgentFleet(None, tmp_path)  # type: ignore[arg-type]


def _start(fleet: AgentFleet, tmp_path: Path) -> None:
    for identity in ("trainer", "trainer2"):
        fleet.start(AgentLaunch("org1", identity, "t", tmp_path / "data.npz", 1, 0.1, 0))
    deadline = time.monotonic() + 60
    while not all("joined task" in r.log.read_text() for r in fleet.running):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_killed_agent_stops_the_watch_at_once_named_with_its_log(fleet: AgentFleet, tmp_path: Path) -> None:
    with fleet:
        _start(fleet, tmp_path)
        os.kill(fleet.running[1].process.pid, signal.SIGKILL)
        fleet.running[1].process.wait()
        started = time.monotonic()
        with pytest.raises(AgentDied) as died:
            watch(Ledger(_task()), "t", lambda t: True, fleet, timeout=600)  # type: ignore[arg-type]
        assert time.monotonic() - started < 5
    message = str(died.value)
    assert "agent org1/trainer2 was killed by SIGKILL" in message and "org1/trainer " not in message
    assert "Org1MSP/trainer2 joined task t" in message  # the end of its log
    assert all(r.process.poll() is not None for r in fleet.running), "leaving the fleet stops the others"


def test_agents_that_end_with_the_task_are_no_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        AgentLaunch, "command", lambda self, net: _agent(f"print('{self.identity} joined task t')")
    )
    ledger = Ledger(_task())
    with AgentFleet(None, tmp_path) as fleet:  # type: ignore[arg-type]
        _start(fleet, tmp_path)
        for r in fleet.running:
            assert r.process.wait() == 0
        with pytest.raises(AgentDied, match="exited with 0"):  # every agent ended, yet the task runs
            watch(ledger, "t", lambda t: True, fleet, timeout=600)  # type: ignore[arg-type]
        ledger.task = replace(ledger.task, status="done")
        assert watch(ledger, "t", lambda t: t.status == "done", fleet, timeout=600).status == "done"  # type: ignore[arg-type]


def test_with_restarts_left_a_killed_agent_is_started_again_and_then_one_more_death_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def command(self: AgentLaunch, net: object) -> list[str]:
        return _agent(
            f"print('Org1MSP/{self.identity} joined task t', flush=True); import time; time.sleep(60)"
        )

    monkeypatch.setattr(AgentLaunch, "command", command)
    said: list[str] = []
    with AgentFleet(None, tmp_path, restarts=1, log=said.append) as fleet:  # type: ignore[arg-type]
        _start(fleet, tmp_path)
        first = fleet.running[1].process
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        fleet.check()  # restarted, no failure
        again = fleet.running[1].process
        assert again.pid != first.pid and again.poll() is None
        assert said == ["agent org1/trainer2 was killed by SIGKILL; started again (0 restarts left)"]
        assert "started this agent again" in fleet.running[1].log.read_text()
        os.kill(again.pid, signal.SIGKILL)
        again.wait()
        with pytest.raises(AgentDied, match="org1/trainer2 was killed by SIGKILL"):
            fleet.check()
