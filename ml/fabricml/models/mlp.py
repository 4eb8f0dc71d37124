"""A multi-layer perceptron: the small tabular and digits models of the demos and benches."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


def save(model: MLP, directory: Path) -> Path:
    """Weights as safetensors (no pickle) and the architecture as JSON."""
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, directory / WEIGHTS)
    (directory / CONFIG).write_text(json.dumps({"type": "mlp", "layers": model.layers}, sort_keys=True))
    return directory


def load(directory: Path, device: str = "cpu") -> MLP:
    config = json.loads((directory / CONFIG).read_text())
    if config.get("type") != "mlp":
        raise ValueError(f"{directory / CONFIG} describes a {config.get('type')!r} model, not an mlp")
    model = MLP(list(config["layers"]))
    model.load_state_dict(load_file(directory / WEIGHTS, device="cpu"))
    return model.to(device).eval()


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"
