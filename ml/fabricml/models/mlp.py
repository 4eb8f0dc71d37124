"""A multi-layer perceptron (the tabular model of the demos and benches), and saving and
loading any fabricml model: safetensors weights plus config.json."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, TypeAlias

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .cnn import SmallCNN
from .resnet import ResNet18

CONFIG = "config.json"
WEIGHTS = "model.safetensors"


class MLP(nn.Module):
    def __init__(self, layers: list[int]) -> None:
        super().__init__()
        if len(layers) < 2 or any(n < 1 for n in layers):
            raise ValueError(f"layers must list at least input and output sizes, got {layers}")
        self.layers = list(layers)
        blocks: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(layers)):
            blocks.append(nn.Linear(a, b))
            if i < len(layers) - 2:
                blocks.append(nn.ReLU())
        self.net = nn.Sequential(*blocks)

    @property
    def inputs(self) -> int:
        return self.layers[0]

    def config(self) -> dict[str, object]:
        return {"type": "mlp", "layers": self.layers}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


Model: TypeAlias = MLP | SmallCNN | ResNet18  # every architecture build() makes


def save(model: Model, directory: Path) -> Path:
    """Weights as safetensors (no pickle) and the architecture as JSON."""
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, directory / WEIGHTS)
    (directory / CONFIG).write_text(json.dumps(model.config(), sort_keys=True))
    return directory


def build(config: dict[str, Any]) -> Model:
    """A fresh model from its config.json: {"type": "mlp", "layers": [...]},
    {"type": "cnn", "side": 8, "classes": 10, "channels": 16} or
    {"type": "resnet18", "side": 32, "channels": 3, "classes": 10}."""
    kind = config.get("type")
    if kind == "mlp":
        return MLP(list(config["layers"]))
    if kind == "cnn":
        return SmallCNN(int(config["side"]), int(config["classes"]), int(config.get("channels", 16)))
    if kind == "resnet18":
        return ResNet18(int(config["side"]), int(config["channels"]), int(config["classes"]))
    raise ValueError(f"unknown model type {kind!r}; allowed: mlp, cnn, resnet18")


def load(directory: Path, device: str = "cpu") -> Model:
    model = build(json.loads((directory / CONFIG).read_text()))
    model.load_state_dict(load_file(directory / WEIGHTS, device="cpu"))
    return model.to(device).eval()


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"
