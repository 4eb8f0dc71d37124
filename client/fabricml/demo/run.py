"""The demo from start to summary: open the task, run the agents to the last round while
watching them and the ledger, approve the final model, serve it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fabricml.contracts import FederationClient, RegistryClient
from fabricml.contracts.federation import RoundResult, Task
from fabricml.federation.data import Dataset
from fabricml.federation.round_models import round_ref
from fabricml.network.network import Network

from .admins import OrgAdmins, trainer_identities
from .agents import AgentFleet, AgentLaunch, AgentsEnded, DemoError
from .curves import global_curve, plot_training
from .serving import serve_and_attest
from .task import DemoOptions, open_task

Log = Callable[[str], None]
Progress = Callable[[int, int, str], None]  # (rounds done, rounds, what is happening)
JOIN_SECONDS = 300
TASK_SECONDS = 3600
LOOK_EVERY = 0.3  # seconds between looks at the ledger and the agents


def run_demo(net: Network, opt: DemoOptions, log: Log, progress: Progress) -> dict[str, Any]:
    """Train, approve and serve; returns the summary. Raises AgentDied (naming the agent,
    with the end of its log) as soon as an agent fails, DemoError or TimeoutError."""
    folder = net.layout.root / "federated" / opt.task
    folder.mkdir(parents=True, exist_ok=True)
    with OrgAdmins.open(net) as admins:
        members = trainer_identities(admins, opt.participants, opt.participants_per_org)
        log(
            f"{len(members)} participants: {', '.join(f'{o}/{i}' for o, i in members)}; "
            f"{opt.dataset}, split {opt.split}"
        )
        files, test = open_task(admins, opt, members, log)
        with AgentFleet(net, folder, opt.agent_restarts, log) as fleet:
            for (org, identity), data in zip(members, files, strict=True):
                fleet.start(
                    AgentLaunch(org, identity, opt.task, data, opt.epochs, opt.lr, opt.seed, opt.agent_args)
                )
            rounds = _train(admins, opt, fleet, len(members), progress, log)
        return _conclude(admins, opt, rounds, test, folder, log)


def _train(
    admins: OrgAdmins, opt: DemoOptions, fleet: AgentFleet, members: int, progress: Progress, log: Log
) -> list[RoundResult]:
    """From enrollment to the task's end, and the agents' exit; every round's result."""
    first = admins.orgs[0]
    fed = admins.client(first, "auditor", FederationClient)
    state = watch(fed, opt.task, lambda t: len(t.participants) == members, fleet, JOIN_SECONDS)
    admins.client(first, "admin", FederationClient).start(opt.task)
    log(f"all {len(state.participants)} participants joined and staked; round 1 started")
    done, end = 0, time.monotonic() + TASK_SECONDS
    while True:
        state = watch(fed, opt.task, lambda t: True, fleet, end - time.monotonic())
        finished = state.round if state.status == "done" else state.round - 1
        while done < finished:
            done += 1
            progress(done, opt.rounds, f"round {done}: {fed.get_round(opt.task, done).status}")
        if state.status == "done":
            break
        progress(done, opt.rounds, f"round {state.round}: {state.phase}")
        time.sleep(LOOK_EVERY)
    fleet.wait(timeout=300)  # they register the last round's model, then exit
    return [fed.get_round(opt.task, r) for r in range(1, state.round + 1)]


def watch(
    fed: FederationClient, task_id: str, ready: Callable[[Task], bool], fleet: AgentFleet, timeout: float
) -> Task:
    """The task once `ready` says so; AgentDied as soon as an agent fails (or all have
    ended while the task has not), TimeoutError after `timeout` seconds. The agents are
    looked at before the task: a dead agent is never hidden by a task that looks fine."""
    end = time.monotonic() + timeout
    while True:
        try:
            fleet.check()
        except AgentsEnded:
            if fed.get_task(task_id).status != "done":  # they ended because the task did: fine
                raise
        task = fed.get_task(task_id)
        if ready(task):
            return task
        if time.monotonic() > end:
            raise TimeoutError(
                f"task {task_id} still at round {task.round} {task.phase} after {timeout:.0f}s"
            )
        time.sleep(LOOK_EVERY)


def _conclude(
    admins: OrgAdmins, opt: DemoOptions, rounds: list[RoundResult], test: Dataset, folder: Path, log: Log
) -> dict[str, Any]:
    """Approve the last finalized round's model by a majority, plot, serve; the summary."""
    finals = [r.round for r in rounds if r.status == "FINALIZED"]
    if not finals:
        raise DemoError(f"no round of {opt.task} was finalized: {[r.reason for r in rounds]}")
    first, final = admins.orgs[0], round_ref(opt.task, finals[-1])
    admins.in_step()  # the last round's model was registered through its registrar org's peer
    curve = global_curve(admins.profile(first), opt.task, finals, test)
    for org in admins.majority:
        admins.client(org, "admin", RegistryClient).approve(final)
    # Read through the last approver's peer: it has committed every approval; another
    # org's peer may not have the last block yet.
    last = admins.majority[-1]
    deployable = admins.client(last, "auditor", RegistryClient).deployable(final).deployable
    log(f"{final} approved by {', '.join(admins.majority)}: deployable={deployable}")
    summary: dict[str, Any] = {
        "task": opt.task,
        "model": final,
        "rounds": [r.to_json() for r in rounds],
        "globalCurve": curve,
        "plot": str(plot_training(folder, curve)),
        "agentLogs": str(folder),
        "approvedBy": admins.majority,
        "deployable": deployable,
    }
    if opt.serve:
        summary["inference"] = serve_and_attest(admins.net, final, test, log)
    return summary
