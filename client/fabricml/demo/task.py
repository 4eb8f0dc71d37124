"""The demo's task: private data files per participant, the registered initial model and
the task on the ledger."""

from __future__ import annotations

import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from fabricml.contracts import FederationClient
from fabricml.contracts.federation import TaskRequest
from fabricml.federation.data import Dataset, save_npz, sklearn_dataset, split_dirichlet, split_iid
from fabricml.federation.round_models import initial_model_name
from fabricml.models.cnn import SmallCNN
from fabricml.models.mlp import MLP, Model, save
from fabricml.models.resnet import ResNet18
from fabricml.registry.connect import open_registry
from fabricml.registry.service import ModelRegistration

from .admins import OrgAdmins, ensure_tokens

Log = Callable[[str], None]


@dataclass
class DemoOptions:
    dataset: str = "digits"
    split: str = "iid"  # or "dirichlet"
    alpha: float = 0.5
    rounds: int = 4
    rule: str = "median"
    participants_per_org: int = 1
    participants: list[str] = field(default_factory=list)  # "org/identity"; overrides participants_per_org
    stake: int = 100
    reward_per_round: int = 30
    epochs: int = 5
    lr: float = 0.1
    seed: int = 0
    phase_seconds: int = 300
    reveal_seconds: int = 0  # 0: phase_seconds
    task: str = field(default_factory=lambda: f"demo-{uuid.uuid4().hex[:6]}")
    serve: bool = True
    agent_args: list[str] = field(default_factory=list)  # e.g. --fedprox-mu 0.1, --dp-clip 1
    width: int = 0  # 0: the dataset's demo model; else an MLP with one hidden layer this wide
    agent_restarts: int = 0  # a dead agent is started again (it resumes), this many times in all

    def request(self, initial_model: str, members: int, max_per_org: int = 1) -> TaskRequest:
        """The task for `members` participants, at most `max_per_org` of them in one org."""
        return TaskRequest(
            id=self.task,
            initial_model=initial_model,
            rounds=self.rounds,
            min_participants=max(2, members // 2 + 1),
            max_per_org=max_per_org,
            stake=self.stake,
            reward_per_round=self.reward_per_round,
            commit_seconds=self.phase_seconds,
            reveal_seconds=self.reveal_seconds or self.phase_seconds,
            aggregate_seconds=self.phase_seconds,
            rule=self.rule,
        )


def initial_model(dataset: Dataset, seed: int, width: int = 0) -> Model:
    """The demo's model for the dataset (images32: ResNet-18), or (width > 0) an MLP with one hidden layer of
    `width` units: a model as large as a test or bench needs (74 * width parameters on digits)."""
    torch.manual_seed(seed)
    classes = int(dataset.labels.max()) + 1
    if width < 0:
        raise ValueError(f"width must be 0 (the demo's model) or a positive number of units, got {width}")
    if width:
        return MLP([dataset.features.shape[1], width, classes])
    if dataset.name == "digits":
        return SmallCNN(8, classes, channels=8)
    if dataset.name == "images32":
        return ResNet18(32, 3, classes)
    return MLP([dataset.features.shape[1], 32, classes])


def prepare_data(opt: DemoOptions, parts: int, folder: Path) -> tuple[list[Path], Dataset]:
    """Each participant's private file, and the test set the demo keeps for itself."""
    data = sklearn_dataset(opt.dataset)
    train, test = data.split(0.25, opt.seed)
    if opt.split == "iid":
        shares = split_iid(train, parts, opt.seed)
    elif opt.split == "dirichlet":
        shares = split_dirichlet(train, parts, opt.alpha, opt.seed)
    else:
        raise ValueError(f"split must be iid or dirichlet, got {opt.split!r}")
    return [save_npz(s, folder / f"participant-{i + 1}.npz") for i, s in enumerate(shares)], test


def open_task(
    admins: OrgAdmins, opt: DemoOptions, members: Sequence[tuple[str, str]], log: Log
) -> tuple[list[Path], Dataset]:
    """Everything an org admin does before the agents start: private data files (one per
    participant, given as (org, identity)), tokens, the registered initial model and the
    task on the ledger (taking as many participants per org as the busiest org runs)."""
    folder = admins.net.layout.root / "federated" / opt.task
    files, test = prepare_data(opt, len(members), folder / "data")
    ensure_tokens(admins, opt.stake * len(members) + opt.reward_per_round * opt.rounds, log)
    name, first = initial_model_name(opt.task), admins.orgs[0]
    with open_registry(admins.profile(first), "trainer") as reg, tempfile.TemporaryDirectory() as tmp:
        model = initial_model(sklearn_dataset(opt.dataset), opt.seed, opt.width)
        what = ModelRegistration(
            name, "r0", [admins.msp(first)], hyperparameters={"task": opt.task, "seed": opt.seed}
        )
        reg.register(save(model, Path(tmp) / "m"), what)
    log(f"registered the initial model {name}@r0")
    admins.in_step()  # the task's endorsers, in every org, must see the model registered
    per_org = max(Counter(org for org, _ in members).values())
    admins.client(first, "admin", FederationClient).create_task(
        opt.request(f"{name}@r0", len(members), per_org)
    )
    log(f"task {opt.task} created by {first}'s admin: {opt.rounds} rounds, rule {opt.rule}")
    return files, test
