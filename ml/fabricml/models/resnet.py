"""ResNet-18 for small colour images given as flat rows (the synthetic 32x32 images of the
large federated bench), with GroupNorm in place of BatchNorm.

The layout is the standard one (He et al., 2016): four stages of two basic blocks each,
64, 128, 256 and 512 channels, the last three stages halving the image side; for 32x32
inputs the stem is a single 3x3 convolution with no max-pool (as for CIFAR-10), so the
last stage sees 4x4 maps. GroupNorm instead of BatchNorm is the usual choice in federated
learning (Hsieh et al., 2020): it keeps no running statistics that FedAvg would have to
average or that would drift between participants with different data, and every entry of
the state dict is a trained parameter, so the update is the whole state.
"""

from __future__ import annotations

import torch
from torch import nn

STAGES = (64, 128, 256, 512)
BLOCKS_PER_STAGE = 2  # ResNet-18: [2, 2, 2, 2]
GROUPS = 32  # GroupNorm's groups (Wu and He, 2018): 2 to 16 channels each here


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(GROUPS, channels), channels)


def _conv3x3(inputs: int, outputs: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut; a 1x1 projection when the shape changes."""

    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.norm1 = _conv3x3(inputs, outputs, stride), _norm(outputs)
        self.conv2, self.norm2 = _conv3x3(outputs, outputs), _norm(outputs)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or inputs != outputs:
            projection = nn.Conv2d(inputs, outputs, 1, stride=stride, bias=False)
            self.shortcut = nn.Sequential(projection, _norm(outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        result: torch.Tensor = torch.relu(out + self.shortcut(x))
        return result


class ResNet18(nn.Module):
    """Rows of channels x side x side features (channel-major, as numpy's C order of a
    (channels, side, side) image) in, class logits out."""

    def __init__(self, side: int = 32, channels: int = 3, classes: int = 10) -> None:
        super().__init__()
        if side < 8 or channels < 1 or classes < 2:
            raise ValueError(
                f"side >= 8, channels >= 1 and classes >= 2 are needed, got {side}, {channels}, {classes}"
            )
        self.side, self.channels, self.classes = side, channels, classes
        self.stem = nn.Sequential(_conv3x3(channels, STAGES[0]), _norm(STAGES[0]), nn.ReLU())
        blocks: list[nn.Module] = []
        width = STAGES[0]
        for i, outputs in enumerate(STAGES):
            for j in range(BLOCKS_PER_STAGE):
                blocks.append(BasicBlock(width, outputs, 2 if i > 0 and j == 0 else 1))
                width = outputs
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(width, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # He initialization, as the architecture's paper
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @property
    def inputs(self) -> int:
        return self.channels * self.side * self.side

    def config(self) -> dict[str, object]:
        return {"type": "resnet18", "side": self.side, "channels": self.channels, "classes": self.classes}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = x.reshape(-1, self.channels, self.side, self.side)
        features = self.blocks(self.stem(images)).mean(dim=(2, 3))  # global average pooling
        out: torch.Tensor = self.head(features)
        return out
