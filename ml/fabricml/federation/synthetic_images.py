"""Synthetic colour images for the large-model demo and bench: each class a coloured
grating of its own orientation and frequency, drawn at a random phase and contrast under
Gaussian noise, so a convolutional network can learn it and no download is needed.

Deterministic from the seed; rows are channel-major (channels x side x side, numpy's C
order), as fabricml.models.resnet.ResNet18 reads them."""

from __future__ import annotations

import numpy as np

CLASSES = 10
NOISE = 1.0  # per-pixel standard deviation; a grating's amplitude is 0.5-1.5


def synthetic_images(
    count: int, seed: int, side: int = 32, channels: int = 3, name: str = "images32"
) -> tuple[np.ndarray, np.ndarray]:
    """(features: count x channels*side*side float32, labels: count int64, balanced classes)."""
    if count < CLASSES or side < 4 or channels < 1:
        raise ValueError(
            f"count >= {CLASSES}, side >= 4 and channels >= 1 are needed, got {count}, {side}, {channels}"
        )
    rng = np.random.default_rng(seed)
    # Per class: an orientation spread over half a turn, 2-5 cycles across the image, a colour.
    angle = np.pi * (np.arange(CLASSES) + rng.uniform(-0.2, 0.2, CLASSES)) / CLASSES
    cycles = rng.uniform(2.0, 5.0, CLASSES)
    colour = rng.normal(0.0, 1.0, (CLASSES, channels))
    colour /= np.linalg.norm(colour, axis=1, keepdims=True) / np.sqrt(channels)
    labels = rng.permutation(np.arange(count) % CLASSES).astype(np.int64)
    ys, xs = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    along = (
        xs[None] * np.cos(angle)[labels, None, None] + ys[None] * np.sin(angle)[labels, None, None]
    ) / side
    phase = rng.uniform(0.0, 2 * np.pi, count)[:, None, None]
    contrast = rng.uniform(0.5, 1.5, count)[:, None, None]
    grating = contrast * np.sin(2 * np.pi * cycles[labels, None, None] * along + phase)
    images = colour[labels][:, :, None, None] * grating[:, None] + rng.normal(
        0.0, NOISE, (count, channels, side, side)
    )
    return images.reshape(count, -1).astype(np.float32), labels
