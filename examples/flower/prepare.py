"""What the org admins do before a Flower run of the digits task on the local consortium:
each participant's private rows, tokens, the registered initial model, the task on the
Federation contract, every participant joined (staked) and the task started. Prints the
`--run-config` for `flwr run` and the verifier commands.

    .venv/bin/python examples/flower/prepare.py [--state-dir DIR] [--topology FILE] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import torch

from fabricml.contracts import FederationClient
from fabricml.contracts.federation import TaskRequest
from fabricml.demo.admins import OrgAdmins, ensure_tokens
from fabricml.federation.data import save_npz, sklearn_dataset, split_iid
from fabricml.federation.rulebook import DEFAULT_RULE
from fabricml.models.mlp import save
from fabricml.network.cli import DEFAULT_TOPOLOGY
from fabricml.network.layout import default_state_dir
from fabricml.network.network import Network
from fabricml.network.topology import load
from fabricml.registry.connect import open_registry
from fabricml.registry.service import ModelRegistration

sys.path.insert(0, str(Path(__file__).parent))
from digits_app import task as digits


def arguments() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--topology", type=Path, default=Path(os.environ.get("FABRICML_TOPOLOGY", DEFAULT_TOPOLOGY))
    )
    p.add_argument("--state-dir", type=Path, default=None)
    p.add_argument("--task", default=f"flower-{uuid.uuid4().hex[:6]}")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rule", default=DEFAULT_RULE)
    p.add_argument("--phase-seconds", type=int, default=300)
    return p.parse_args()


def main() -> None:
    args = arguments()
    topology = load(args.topology)
    net = Network(topology, args.state_dir or default_state_dir(topology.name))
    print(json.dumps(prepare(net, args.task, args.rounds, args.rule, args.phase_seconds)))


def prepare(
    net: Network, task_id: str, rounds: int, rule: str = DEFAULT_RULE, phase_seconds: int = 300
) -> dict[str, Any]:
    """Open, join and start the task; returns the task id and the run config for `flwr run`."""
    folder = (net.layout.root / "flower" / task_id).resolve()
    with OrgAdmins.open(net) as admins:
        orgs = admins.orgs
        data = sklearn_dataset("digits")
        train, test = data.split(0.25, 0)
        for i, share in enumerate(split_iid(train, len(orgs), 0)):
            save_npz(share, folder / "data" / f"participant-{i + 1}.npz")
        save_npz(test, folder / "data" / "test.npz")
        request = TaskRequest(
            id=task_id, initial_model=f"{task_id}-initial@1", rounds=rounds,
            min_participants=max(2, len(orgs) // 2 + 1), stake=100, reward_per_round=30,
            commit_seconds=phase_seconds, reveal_seconds=phase_seconds,
            aggregate_seconds=phase_seconds, rule=rule,
        )  # fmt: skip
        ensure_tokens(admins, request.stake + request.reward_per_round * request.rounds, print)
        first = orgs[0]
        with open_registry(admins.profile(first), "trainer") as reg, tempfile.TemporaryDirectory() as tmp:
            torch.manual_seed(0)
            what = ModelRegistration(
                f"{task_id}-initial", "1", [admins.msp(first)], hyperparameters={"task": task_id}
            )
            reg.register(save(digits.model(), Path(tmp) / "m"), what)
        admins.client(first, "admin", FederationClient).create_task(request)
        for org in orgs:
            admins.client(org, "trainer", FederationClient).join(task_id)
        admins.client(first, "admin", FederationClient).start(task_id)
    run_config = {
        "fabricml-task": task_id,
        "fabricml-profiles": str(net.layout.profiles.resolve()),
        "fabricml-participants": " ".join(f"{o}/trainer" for o in orgs),
        "fabricml-server": f"{first}/admin",
        "data-dir": str(folder / "data"),
        "summary": str(folder / "summary.json"),
    }
    flag = " ".join(f"{k}={json.dumps(v)}" for k, v in run_config.items())
    return {"task": task_id, "orgs": orgs, "runConfig": run_config, "runConfigArgument": flag}


if __name__ == "__main__":
    main()
