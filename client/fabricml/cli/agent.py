"""`fabricml agent run`: the training agent of one participant."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, Progress, TextColumn
from rich.text import Text

from .app import App, org_option, pass_app, shared_options


@dataclass(frozen=True)
class AgentRun:
    """Every `fabricml agent run` option."""

    org: str
    identity: str
    task: str
    data_path: Path
    label: str
    loader: str | None
    epochs: int
    batch_size: int
    lr: float
    fedprox_mu: float
    dp_clip: float | None
    dp_noise: float
    dp_delta: float
    seed: int
    device: str | None
    no_join: bool
    attack: str
    wrong_aggregate: bool

    def agent_options(self, state_dir: Path) -> Any:
        import torch

        from fabricml.federation import data as datasets
        from fabricml.federation.agent import AgentOptions
        from fabricml.federation.privacy import DifferentialPrivacy
        from fabricml.federation.training import LocalTraining

        return AgentOptions(
            task=self.task,
            data=datasets.load(self.data_path, self.label, self.loader),
            state_dir=state_dir,
            training=LocalTraining(
                self.epochs, self.batch_size, self.lr, fedprox_mu=self.fedprox_mu, seed=self.seed
            ),
            privacy=DifferentialPrivacy(self.dp_clip, self.dp_noise, self.dp_delta) if self.dp_clip else None,
            device=self.device or ("cuda" if torch.cuda.is_available() else "cpu"),
            attack=self.attack,
            wrong_aggregate=self.wrong_aggregate,
            join=not self.no_join,
        )


@click.group("agent")
def agent_group() -> None:
    """The training agent of one participant."""


@agent_group.command("run")
@shared_options
@org_option()
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
@pass_app
def run(app: App, **given: Any) -> None:
    """Take part in TASK until it is done: train on private data, commit, reveal,
    aggregate, post. Safe to restart at any point: it resumes where it stopped.
    With --json the summary is printed as JSON at the end."""
    import torch

    from fabricml.federation.agent import Agent
    from fabricml.federation.hugepages import avoid_compaction_stalls
    from fabricml.federation.participation import participate

    torch.set_num_threads(1)  # several agents share a machine in demos and tests
    avoid_compaction_stalls()  # large updates: fresh arrays without a compaction stall each
    opt = AgentRun(**given)
    options = opt.agent_options(app.network.layout.root / "federated")
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
    )
    with Progress(*columns, console=app.console, transient=True, disable=app.as_json) as bar:
        steps = bar.add_task("local training", total=None, visible=False)

        def progress(round_: int, done: int, total: int) -> None:
            bar.update(
                steps,
                completed=done,
                total=total,
                visible=done < total,
                description=f"round {round_}: local training",
            )

        def log(message: str) -> None:  # wall-clock times: one round's steps span agents
            stamp = datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3]
            bar.console.print(Text(f"{stamp} {message}"), soft_wrap=True)

        options.progress = progress
        local_training = options.training.to_json()
        with participate(app.profile(opt.org), opt.identity, opt.task, local_training, log) as links:
            agent = Agent(links, options, log)
            log(f"{agent.key}: task {opt.task}, {len(options.data)} rows, device {options.device}")
            summary = agent.run()
    if app.as_json:
        app.emit(summary)
    else:
        app.say(
            f"{summary['participant']}: done; rewards {summary['rewards']}; state in {summary['stateDir']}"
        )
