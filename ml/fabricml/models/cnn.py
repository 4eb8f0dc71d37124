"""A small convolutional network for square single-channel images given as flat rows
(the 8x8 digits of the federated demo)."""

from __future__ import annotations

import math

import torch
from torch import nn


class SmallCNN(nn.Module):
    def __init__(self, side: int, classes: int, channels: int = 16) -> None:
        super().__init__()
        if side < 4 or classes < 2 or channels < 1:
            raise ValueError(
                f"side >= 4, classes >= 2 and channels >= 1 are needed, got {side}, {classes}, {channels}"
            )
        self.side, self.classes, self.channels = side, classes, channels
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(2 * channels * (side // 2) ** 2, classes)

    @property
    def inputs(self) -> int:
        return self.side * self.side

    def config(self) -> dict[str, object]:
        return {"type": "cnn", "side": self.side, "classes": self.classes, "channels": self.channels}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = x.reshape(-1, 1, self.side, self.side)
        out: torch.Tensor = self.head(self.features(images).flatten(1))
        return out


def side_for(inputs: int) -> int:
    side = math.isqrt(inputs)
    if side * side != inputs:
        raise ValueError(f"a CNN needs square images; {inputs} features are not a square")
    return side
