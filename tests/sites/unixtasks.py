"""A federated task among sites run by Unix users, every step by the CLI as the acting
site's user: the member admins vote tokens into being, the creator registers the initial
model and opens the task, each participant's agent runs as its site's user on the private
data the courier handed it, the creator starts the task and it runs to its end.

The test (root) only makes the data and the initial model, as each org's data scientists
would, and hands them over."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabricml.demo.task import initial_model
from fabricml.federation.data import Dataset, save_npz, sklearn_dataset, split_iid
from fabricml.federation.round_models import initial_model_name, round_ref
from fabricml.models.mlp import save
from tests.sites.unixsites import UnixSites

STAKE, REWARD = 20, 6
# Phases end as soon as every participant acted; the windows only bound a slow agent.
WINDOWS = ("--commit-seconds", "150", "--reveal-seconds", "60", "--aggregate-seconds", "150")


def view(env: UnixSites, org: str) -> list[str]:
    """The site read as a one-org consortium, for the product's own commands."""
    site = env.users[org].site
    return ["--topology", str(site / "topology.yaml"), "--state-dir", str(site), "--org", org]


@dataclass(frozen=True)
class TaskPlan:
    task: str
    creator: str
    participants: tuple[str, ...]  # orgs, one trainer each
    rounds: int = 1


def mint(env: UnixSites, vote: str, voters: list[str], amounts: dict[str, int]) -> None:
    """Each voter's admin votes each recipient's amount on its own site. Votes on one
    proposal go one after the other (they write the same key); votes for different
    recipients by different voters run at once."""
    recipients, width = list(amounts), max(len(voters), len(amounts))
    for k in range(width):
        turn = {}
        for j, voter in enumerate(voters):
            i = (j + k) % width
            if i < len(recipients):
                msp = f"Org{recipients[i][3:]}MSP"
                turn[voter] = [
                    "token",
                    "vote-mint",
                    f"{vote}-{recipients[i]}",
                    msp,
                    str(amounts[recipients[i]]),
                ]
                turn[voter] += view(env, voter)
        env.run_all(turn)
    for org, amount in amounts.items():
        balance = env.json(org, "token", "balance", f"Org{org[3:]}MSP", *view(env, org))
        assert balance["amount"] >= amount, (org, balance)


def prepare(env: UnixSites, plan: TaskPlan) -> tuple[dict[str, Path], Dataset]:
    """Each participant's private share (in its own inbox) and the creator's initial model,
    registered and the task opened by the creator's site; the held-out test rows."""
    train, test = sklearn_dataset("breast_cancer").split(0.25, 0)
    shares = split_iid(train, len(plan.participants), 0)
    data = {}
    for org, share in zip(plan.participants, shares, strict=True):
        data[org] = save_npz(share, env.users[org].inbox / f"{plan.task}.npz")
        env.users[org].give(data[org])
    model = save(initial_model(train, 0), env.users[plan.creator].inbox / f"{plan.task}-initial")
    env.users[plan.creator].give(model)
    c = view(env, plan.creator)
    name = initial_model_name(plan.task)
    env.run(plan.creator, "model", "register", str(model), "--name", name, "--version", "r0", *c,
            "--param", f"task={plan.task}")  # fmt: skip
    env.run(plan.creator, "fed", "create", plan.task, "--initial-model", f"{name}@r0", *c, *WINDOWS,
            "--rounds", str(plan.rounds), "--min-participants", str(len(plan.participants)),
            "--stake", str(STAKE), "--reward-per-round", str(REWARD))  # fmt: skip
    return data, test


def run(env: UnixSites, plan: TaskPlan, data: dict[str, Path], logs: Path) -> dict[str, Any]:
    """Every participant's agent as its site's user; the creator starts the task once all
    joined; returns `fed status --json` once every agent finished."""
    logs.mkdir(exist_ok=True)
    agents = {
        org: env.start(org, logs / f"{plan.task}-{org}.log", "agent", "run", *view(env, org),
                       "--task", plan.task, "--data", str(data[org]), "--epochs", "2", "--json")
        for org in plan.participants
    }  # fmt: skip

    def alive() -> None:
        for org, p in agents.items():
            if p.poll() not in (None, 0):
                log = (logs / f"{plan.task}-{org}.log").read_text()[-3000:]
                raise AssertionError(f"{org}'s agent exited with {p.returncode}:\n{log}")

    status = view(env, plan.creator)
    end = time.monotonic() + 300
    while len(env.json(plan.creator, "fed", "status", plan.task, *status)["task"]["participants"]) < len(
        agents
    ):
        alive()
        assert time.monotonic() < end, f"not every agent joined {plan.task} in 300 s"
        time.sleep(1)
    env.run(plan.creator, "fed", "start", plan.task, *status)
    for p in agents.values():
        p.wait(timeout=900)
        alive()
    return dict(env.json(plan.creator, "fed", "status", plan.task, *status))


def assert_finalized(found: dict[str, Any], plan: TaskPlan) -> str:
    """Every round FINALIZED with each participant org in it; the last round's model."""
    task = found["task"]
    assert task["status"] == "done", task
    assert sorted(p["mspId"] for p in task["participants"]) == sorted(
        f"Org{o[3:]}MSP" for o in plan.participants
    ), task["participants"]
    rounds = found["rounds"]
    assert [r["status"] for r in rounds] == ["FINALIZED"] * plan.rounds, rounds
    for r in rounds:
        assert len(r["rewards"]) == len(plan.participants) and not r["slashed"], r
    return round_ref(plan.task, plan.rounds)
