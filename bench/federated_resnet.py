"""Case (c) of bench/federated.py: ResNet-18 (GroupNorm, 11.17 M parameters) on the demo's
synthetic 32x32 colour images, 3 participants, in Flower and in fabricml side by side.

The same as case (b) but for the workload: `images32` (1,600 images, 10 classes; the demo
keeps 400 to test and gives each participant 400, of which its agent trains on 320 and
holds 80 back), the demo's ResNet-18 with the same initial weights (same seed), and the
same local training code, split and seed in Flower's ClientApp and in fabricml's agents.
Printed as case (b) is (round wall time, phases, bytes per participant, peak RSS, blocks),
with each side's local training time per round beside the rest of its round, and the
final test accuracy (a few rounds of one epoch: a check that both sides trained the same
model, not a goal). Run it alone with `bench/federated.py --only c`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from bench import federated as fb

DATASET = "images32"
ROUNDS, EPOCHS, LR = 3, 1, 0.01  # lr 0.1 (case a's) diverges for ResNet-18 without momentum


def images_task(task: fb.Task, rounds: int = ROUNDS, epochs: int = EPOCHS, lr: float = LR) -> fb.Task:
    """Case (c)'s task: the bench's ports, seed and batch timeout; the images and ResNet-18."""
    return dataclasses.replace(task, dataset=DATASET, width=0, rounds=rounds, epochs=epochs, lr=lr)


def run_images(task: fb.Task, folder: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """Flower, then fabricml, on the same participant files and initial weights."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = fb.prepare(task, folder)
    with np.load(spec["initial"]) as z:
        params = sum(int(z[k].size) for k in z.files)
    rows = [len(fb.local_training_rows(f, task)[0]) for f in spec["files"]]
    log(f"case (c): Flower {fb.FLOWER_VERSION} simulation, ResNet-18, {params / 1e6:.2f} M parameters")
    flower = fb.run_flower(spec, folder, timeout=1800)
    log("case (c): fabricml on a 3-org network")
    fab = fb.run_fabricml(task, spec, log)
    return {
        "task": asdict(task),
        "model": spec["model"],
        "parameters": params,
        "trainingImagesPerParticipant": rows,
        "flower": flower,
        "fabricml": fab,
    }


def print_images(r: dict[str, Any]) -> None:
    t, fl, fab, n = r["task"], r["flower"], r["fabricml"], r["parameters"]
    fab_train, flower_train = fab["localTrainingSeconds"], fl["localTrainingSeconds"]
    images = ", ".join(map(str, r["trainingImagesPerParticipant"]))
    print(
        f"\ncase (c): ResNet-18 (GroupNorm) on {t['dataset']} (synthetic 3x32x32), {n / 1e6:.2f} M "
        f"parameters, {t['participants']} participants training on {images} images each, "
        f"{t['rounds']} rounds x {t['epochs']} epoch(s), SGD lr {t['lr']}; statuses {fab['statuses']}"
    )
    fab_round, flower_round = fb.print_size_case(r)
    print(f"  local training per round: fabricml {fab_train:.2f} s, Flower {flower_train:.2f} s; the "
          f"rest of a round: fabricml {fab_round - fab_train:.2f} s, Flower "
          f"{flower_round - flower_train:.2f} s")  # fmt: skip
    fb.print_phases(fab)
    fb.print_peak_rss(fab, fl)
    print(
        f"  final test accuracy (chance 0.10): fabricml {fab['curve'][-1]['testAccuracy']:.4f}, "
        f"Flower {fl['curve'][-1]['testAccuracy']:.4f}"
    )
