"""`fabricml agent` and `fabricml fed`: federated training agents, tasks and the demo."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import click

from fabricml.gateway import CommitError, GatewayError, sync
from fabricml.network.topology import TopologyError

from .common import console, echo_json, fail, network_options, open_network, profile_for


@click.group("agent")
def agent_group() -> None:
    """The training agent of one participant."""


@agent_group.command("run")
@network_options
@click.option("--org", default="org1", show_default=True)
@click.option("--identity", default="trainer", show_default=True, help="An identity with role=trainer.")
@click.option("--task", required=True, help="Federated task ID.")
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="The org's private training data: .csv, .parquet or .npz.",
)
@click.option("--label", default="label", show_default=True, help="Name of the label column or array.")
@click.option("--loader", help="Custom data loader, package.module:function(path, label) -> Dataset.")
@click.option("--epochs", default=2, show_default=True, help="Local epochs per round.")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--lr", default=0.1, show_default=True, help="SGD learning rate.")
@click.option("--fedprox-mu", default=0.0, show_default=True, help="FedProx proximal term (0: FedAvg).")
@click.option("--dp-clip", type=float, help="Client-level DP: L2 bound of the update (enables DP).")
@click.option("--dp-noise", type=float, default=1.0, show_default=True, help="DP noise multiplier.")
@click.option("--dp-delta", type=float, default=1e-5, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--device", help="cpu or cuda (default: cuda when PyTorch sees one).")
@click.option("--no-join", is_flag=True, help="Do not join; the identity already did.")
@click.option("--attack", hidden=True, default="", help="Tests only: behave as this adversary.")
@click.option("--wrong-aggregate", hidden=True, is_flag=True, help="Tests only: post a wrong digest.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON at the end.")
def run(
    topology: Path | None,
    state_dir: Path | None,
    org: str,
    identity: str,
    task: str,
    data_path: Path,
    label: str,
    loader: str | None,
    epochs: int,
    batch_size: int,
    lr: float,
    fedprox_mu: float,
    dp_clip: float | None,
    dp_noise: float,
    dp_delta: float,
    seed: int,
    device: str | None,
    no_join: bool,
    attack: str,
    wrong_aggregate: bool,
    as_json: bool,
) -> None:
    """Take part in TASK until it is done: train on private data, commit, reveal,
    aggregate, post. Safe to restart at any point: it resumes where it stopped."""
    import torch
    from rich.progress import BarColumn, Progress, TextColumn

    from fabricml.federation import data as datasets
    from fabricml.federation.agent import Agent, AgentError, AgentOptions
    from fabricml.federation.privacy import DifferentialPrivacy
    from fabricml.federation.training import LocalTraining

    torch.set_num_threads(1)  # several agents share a machine in demos and tests
    try:
        net = open_network(topology, state_dir)
        profile = profile_for(topology, state_dir, org)
        options = AgentOptions(
            task=task,
            data=datasets.load(data_path, label, loader),
            state_dir=net.layout.root / "federated",
            training=LocalTraining(
                epochs=epochs, batch_size=batch_size, lr=lr, fedprox_mu=fedprox_mu, seed=seed
            ),
            privacy=DifferentialPrivacy(dp_clip, dp_noise, dp_delta) if dp_clip else None,
            device=device or ("cuda" if torch.cuda.is_available() else "cpu"),
            attack=attack,
            wrong_aggregate=wrong_aggregate,
            join=not no_join,
        )
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
            console=console, transient=True, disable=as_json,
        ) as bar:  # fmt: skip
            steps = bar.add_task("local training", total=None, visible=False)

            def progress(round_: int, done: int, total: int) -> None:
                bar.update(steps, completed=done, total=total, visible=done < total,
                           description=f"round {round_}: local training")  # fmt: skip

            options.progress = progress
            agent = Agent(profile, identity, options, log=lambda m: bar.console.print(m, highlight=False))
            bar.console.print(f"{agent.key}: task {task}, {len(options.data)} rows, device {options.device}")
            summary = agent.run()
    except (TopologyError, ValueError, AgentError, GatewayError, CommitError) as exc:
        fail(exc)
    if as_json:
        echo_json(summary)
    else:
        console.print(
            f"{summary['participant']}: done; rewards {summary['rewards']}; state in {summary['stateDir']}"
        )


@click.group("fed")
def fed_group() -> None:
    """Federated tasks: status, rounds, plots and the demo."""


def _federation(topology: Path | None, state_dir: Path | None, org: str, identity: str, channel: Any) -> Any:
    profile = profile_for(topology, state_dir, org)
    ident, signer, hash_ = profile.identity(identity)
    gw = sync.connect(channel, ident, signer, hash_)
    return gw.get_network(profile.channel_name).get_contract(profile.chaincode_name, "Federation")


@fed_group.command("status")
@network_options
@click.argument("task")
@click.option("--org", default="org1", show_default=True)
@click.option("--identity", default="auditor", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def status(
    topology: Path | None, state_dir: Path | None, task: str, org: str, identity: str, as_json: bool
) -> None:
    """A task's phase, participants and how each round ended."""
    try:
        profile = profile_for(topology, state_dir, org)
        with profile.peer().sync_channel() as channel:
            fed = _federation(topology, state_dir, org, identity, channel)
            state = json.loads(fed.evaluate_transaction("GetTask", task))
            last = state["round"] if state["status"] == "done" else state["round"] - 1
            rounds = [
                json.loads(fed.evaluate_transaction("GetRound", task, str(r))) for r in range(1, last + 1)
            ]
    except (TopologyError, ValueError, GatewayError) as exc:
        fail(exc)
    if as_json:
        echo_json({"task": state, "rounds": rounds})
        return
    console.print(
        f"task {task}: {state['status']}, round {state['round']}/{state['rounds']} {state['phase']}, "
        f"rule {state['rule']}, escrow {state['escrow']}"
    )
    for p in state["participants"]:
        console.print(f"  {p['mspId']}/{p['subject']}{'  SLASHED' if p['slashed'] else ''}")
    for r in rounds:
        extra = (
            r["reason"]
            or f"aggregate {r['aggregateDigest'][:12]}, rewards {r['rewards']}, slashed {r['slashed']}"
        )
        console.print(f"  round {r['round']}: {r['status']} — {extra}")


@fed_group.command("demo")
@network_options
@click.option(
    "--dataset", type=click.Choice(["digits", "breast_cancer"]), default="digits", show_default=True
)
@click.option("--split", type=click.Choice(["iid", "dirichlet"]), default="iid", show_default=True)
@click.option(
    "--alpha", default=0.5, show_default=True, help="Dirichlet concentration for --split dirichlet."
)
@click.option("--rounds", default=4, show_default=True)
@click.option("--rule", default="median", show_default=True)
@click.option("--participants-per-org", default=1, show_default=True)
@click.option(
    "--participant", "participants", multiple=True, help="org/identity; repeat (default: each org's trainer)."
)
@click.option("--epochs", default=5, show_default=True, help="Local epochs per round.")
@click.option("--task", help="Task ID (default: a fresh demo-xxxxxx).")
@click.option("--fedprox-mu", type=float, help="Agents train with FedProx's proximal term.")
@click.option("--dp-clip", type=float, help="Agents add client-level DP: L2 bound of an update.")
@click.option("--dp-noise", type=float, default=1.0, show_default=True, help="DP noise multiplier.")
@click.option("--no-serve", is_flag=True, help="Skip serving the final model.")
@click.option("--json", "as_json", is_flag=True)
def demo(
    topology: Path | None,
    state_dir: Path | None,
    dataset: str,
    split: str,
    alpha: float,
    rounds: int,
    rule: str,
    participants_per_org: int,
    participants: tuple[str, ...],
    epochs: int,
    task: str | None,
    fedprox_mu: float | None,
    dp_clip: float | None,
    dp_noise: float,
    no_serve: bool,
    as_json: bool,
) -> None:
    """Train a model across the orgs to FINALIZED, approve it, serve it with attested receipts."""
    from rich.progress import BarColumn, Progress, TextColumn

    from fabricml.federation.demo import DemoOptions, run_demo

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the agents are stopped too
    opt = DemoOptions(
        dataset=dataset,
        split=split,
        alpha=alpha,
        rounds=rounds,
        rule=rule,
        participants_per_org=participants_per_org,
        participants=list(participants),
        epochs=epochs,
        serve=not no_serve,
    )
    if task:
        opt.task = task
    if fedprox_mu:
        opt.agent_args += ["--fedprox-mu", str(fedprox_mu)]
    if dp_clip:
        opt.agent_args += ["--dp-clip", str(dp_clip), "--dp-noise", str(dp_noise)]
    net = open_network(topology, state_dir)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} rounds"),
        console=console,
        disable=as_json,
    )
    try:
        with bar:
            tid = bar.add_task("federated training", total=rounds)

            def progress(done: int, total: int, text: str) -> None:
                bar.update(tid, completed=done, total=total, description=text)

            summary = run_demo(net, opt, lambda m: bar.console.print(m, highlight=False), progress)
    except (TopologyError, ValueError, RuntimeError, TimeoutError, GatewayError, CommitError) as exc:
        fail(exc)
    if as_json:
        echo_json(summary)
        return
    _print_summary(summary)


def _print_summary(s: dict[str, Any]) -> None:
    console.rule("federated demo: summary")
    for r in s["rounds"]:
        detail = r["reason"] or f"agreeing {', '.join(r['agreeing'])}; rewards {r['rewards']}"
        console.print(f"round {r['round']}: {r['status']} — {detail}", highlight=False)
    for p in s["globalCurve"]:
        console.print(f"  {p['model']}: test accuracy {p['testAccuracy']:.3f}, loss {p['testLoss']:.3f}")
    console.print(f"final model {s['model']}: approved by {', '.join(s['approvedBy'])}")
    for i in s.get("inference", []):
        console.print(f"  {i['org']}: {i['answers']} answers with receipts, verified: {i['receiptVerified']}")
    console.print("\nwhere to look next:")
    console.print(f"  training curves      {s['plot']}")
    console.print(f"  agents' logs/state   {s['agentLogs']}")
    console.print(f"  rounds on the ledger fabricml fed status {s['task']}")
    console.print(f"  lineage              fabricml model lineage {s['model']} --png lineage.png")
    console.print(f"  audit report         fabricml model audit-report {s['model']} --out report.html")
    if s.get("inference"):
        console.print(f"  a receipt            fabricml attest verify {s['inference'][0]['receipt']}")
    sys.stdout.flush()
