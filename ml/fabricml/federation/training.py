"""Local training on an org's private data, in PyTorch (CUDA when present), and the
conversion between a model's parameters and fixed-point updates."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from . import fixedpoint
from .data import Dataset
from .fixedpoint import Update


@dataclass(frozen=True)
class LocalTraining:
    """How each participant trains per round. fedprox_mu > 0 adds FedProx's proximal term
    (mu/2)·||w - w_global||², which keeps non-IID participants near the global model."""

    epochs: int = 2
    batch_size: int = 32
    lr: float = 0.1
    momentum: float = 0.0
    fedprox_mu: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.fedprox_mu < 0:
            raise ValueError(
                f"local training needs epochs >= 1, batch_size >= 1, lr > 0, fedprox_mu >= 0: {self}"
            )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrainingReport:
    samples: int
    loss: float
    seconds: float
    samples_per_second: float
    device: str


def parameters(model: nn.Module) -> list[np.ndarray]:
    """Parameters in state-dict order, as float32 arrays on the host."""
    return [v.detach().cpu().numpy().astype(np.float32) for v in model.state_dict().values()]


def load_parameters(model: nn.Module, arrays: list[np.ndarray]) -> None:
    keys = list(model.state_dict())
    if len(keys) != len(arrays):
        raise ValueError(f"model has {len(keys)} tensors, got {len(arrays)} arrays")
    model.load_state_dict(
        {k: torch.from_numpy(np.asarray(a, dtype=np.float32)) for k, a in zip(keys, arrays, strict=True)}
    )


def global_parameters(global_fp: Update) -> list[np.ndarray]:
    """The float32 model every org derives from the agreed fixed-point global model."""
    return [a.astype(np.float32) for a in fixedpoint.decode(global_fp)]


def next_global(global_fp: Update, aggregate: Update) -> Update:
    """global + aggregate, passed through float32 so that the registered (float32) model
    encodes back to exactly this fixed-point model: the registry holds the truth."""
    summed = [g + a for g, a in zip(global_fp, aggregate, strict=True)]
    return fixedpoint.encode(global_parameters(summed))


def train(
    model: nn.Module,
    data: Dataset,
    config: LocalTraining,
    round_: int,
    device: str,
    progress: Callable[[int, int], None] | None = None,
) -> TrainingReport:
    """SGD for config.epochs over the data, from the model's current (global) weights."""
    model.to(device).train()
    anchor = [p.detach().clone() for p in model.parameters()] if config.fedprox_mu else []
    generator = torch.Generator().manual_seed(config.seed * 100_003 + round_)
    x = torch.from_numpy(data.features).to(device)
    y = torch.from_numpy(data.labels).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    loss_fn = nn.CrossEntropyLoss()
    steps = config.epochs * ((len(data) + config.batch_size - 1) // config.batch_size)
    done, total_loss, seen = 0, 0.0, 0
    start = time.perf_counter()
    for _ in range(config.epochs):
        order = torch.randperm(len(data), generator=generator).to(device)
        for batch in torch.split(order, config.batch_size):
            opt.zero_grad()
            loss = loss_fn(model(x[batch]), y[batch])
            if anchor:
                prox = sum(((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor, strict=True))
                loss = loss + config.fedprox_mu / 2 * prox
            loss.backward()
            opt.step()
            total_loss += float(loss.detach()) * len(batch)
            seen += len(batch)
            done += 1
            if progress:
                progress(done, steps)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    model.eval()
    return TrainingReport(len(data), total_loss / max(seen, 1), seconds, seen / max(seconds, 1e-9), device)


@torch.inference_mode()
def evaluate(model: nn.Module, data: Dataset, device: str = "cpu") -> tuple[float, float]:
    """(mean cross-entropy loss, accuracy) on data."""
    model.to(device).eval()
    logits = model(torch.from_numpy(data.features).to(device))
    labels = torch.from_numpy(data.labels).to(device)
    loss = float(nn.functional.cross_entropy(logits, labels))
    return loss, float((logits.argmax(dim=1) == labels).float().mean())
