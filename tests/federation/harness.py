"""Runs federated tasks on the real network with every participant's agent in a thread
of the test process, so that many tasks (one per attack) can run side by side."""

from __future__ import annotations

import json
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from fabricml.contracts import FederationClient
from fabricml.demo.admins import OrgAdmins, trainer_identities
from fabricml.demo.curves import global_curve
from fabricml.demo.task import DemoOptions, open_task
from fabricml.federation import data as datasets
from fabricml.federation.agent import Agent, AgentOptions
from fabricml.federation.data import Dataset
from fabricml.federation.participation import participate
from fabricml.federation.training import LocalTraining


@dataclass
class TaskRun:
    opt: DemoOptions
    members: list[tuple[str, str]]
    behaviour: dict[int, dict[str, Any]]  # participant index -> AgentOptions overrides
    test: Dataset | None = None
    agents: list[Agent] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    task: dict[str, Any] = field(default_factory=dict)
    curve: list[dict[str, Any]] = field(default_factory=list)
    connections: ExitStack = field(default_factory=ExitStack)  # the agents' ledger connections

    def key(self, i: int) -> str:
        return self.agents[i].key


def prepare(c: OrgAdmins, run: TaskRun) -> None:
    if run.members:
        run.opt.participants = [f"{org}/{identity}" for org, identity in run.members]
    run.members = trainer_identities(c, run.opt.participants, run.opt.participants_per_org)
    files, run.test = open_task(c, run.opt, run.members, log=lambda _: None)
    for i, ((org, identity), path) in enumerate(zip(run.members, files, strict=True)):
        options = AgentOptions(
            task=run.opt.task,
            data=datasets.load(path),
            state_dir=c.net.layout.root / "federated",
            training=LocalTraining(epochs=run.opt.epochs, lr=run.opt.lr, seed=run.opt.seed + i),
            poll_seconds=1.0,
            **run.behaviour.get(i, {}),
        )
        links = run.connections.enter_context(
            participate(c.profile(org), identity, run.opt.task, options.training.to_json(), lambda _: None)
        )
        run.agents.append(Agent(links, options, log=lambda _: None))


def start(run: TaskRun) -> None:
    def body(agent: Agent) -> None:
        try:
            run.summaries.append(agent.run())
        except BaseException as exc:  # reported by finish()
            run.errors.append(exc)

    for agent in run.agents:
        t = threading.Thread(target=body, args=(agent,), name=f"agent-{agent.key}", daemon=True)
        t.start()
        run.threads.append(t)


def begin_when_joined(c: OrgAdmins, runs: list[TaskRun], timeout: float = 300) -> None:
    """Start each task (org1's admin) once all its participants joined."""
    pending = list(runs)
    end = time.monotonic() + timeout
    while pending:
        for run in list(pending):
            if run.errors:
                raise AssertionError(
                    f"{run.opt.task}: an agent failed: {type(run.errors[0]).__name__}: {run.errors[0]}"
                )
            task = c.client(c.orgs[0], "auditor", FederationClient).get_task(run.opt.task)
            if len(task.participants) == len(run.members):
                c.client(c.orgs[0], "admin", FederationClient).start(run.opt.task)
                pending.remove(run)
        if time.monotonic() > end:
            raise TimeoutError(f"tasks {[r.opt.task for r in pending]} did not fill up in {timeout}s")
        time.sleep(0.5)


def finish(c: OrgAdmins, run: TaskRun, timeout: float = 900) -> None:
    """Wait for every agent, then read the outcome from the ledger."""
    end = time.monotonic() + timeout
    for t in run.threads:
        t.join(max(1.0, end - time.monotonic()))
    for a in run.agents:
        a.opt.stop.set()
    if run.errors:
        raise AssertionError(
            f"{run.opt.task}: an agent failed: {type(run.errors[0]).__name__}: {run.errors[0]}"
        ) from run.errors[0]
    if any(t.is_alive() for t in run.threads):
        raise TimeoutError(f"{run.opt.task}: agents still running after {timeout}s")
    run.connections.close()
    fed = c.client(c.orgs[0], "auditor", FederationClient)
    run.task = fed.get_task(run.opt.task).to_json()
    run.rounds = [fed.get_round(run.opt.task, r).to_json() for r in range(1, run.task["round"] + 1)]
    finals = [r["round"] for r in run.rounds if r["status"] == "FINALIZED"]
    assert run.test is not None
    c.in_step()  # the last round's model was registered through its registrar org's peer
    run.curve = global_curve(c.profile(c.orgs[0]), run.opt.task, finals, run.test)


def slashed(run: TaskRun) -> set[str]:
    return {k for r in run.rounds for k in r["slashed"]}


def rewards(run: TaskRun, key: str) -> int:
    return sum(int(r["rewards"].get(key, 0)) for r in run.rounds)


def describe(run: TaskRun) -> str:
    return json.dumps({"rounds": run.rounds, "curve": run.curve}, indent=1, sort_keys=True)
