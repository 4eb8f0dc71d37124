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
import statistics
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
    wire, f32 = fab["updateBytes"], 4 * n
    fab_round, flower_round = (statistics.mean(fb.steady(x["roundSeconds"])) for x in (fab, fl))
    fab_train, flower_train = fab["localTrainingSeconds"], fl["localTrainingSeconds"]
    images = ", ".join(map(str, r["trainingImagesPerParticipant"]))
    print(
        f"\ncase (c): ResNet-18 (GroupNorm) on {t['dataset']} (synthetic 3x32x32), {n / 1e6:.2f} M "
        f"parameters, {t['participants']} participants training on {images} images each, "
        f"{t['rounds']} rounds x {t['epochs']} epoch(s), SGD lr {t['lr']}; statuses {fab['statuses']}"
    )
    from fabricml.federation.wire import FORMAT  # what the agents write

    print(f"  update on the wire: {wire['meanUpdate'] / 1e6:.1f} MB ({FORMAT}) vs float32 "
          f"{f32 / 1e6:.1f} MB: {wire['meanUpdate'] / f32:.2f}x; Flower sends float32 arrays")  # fmt: skip
    print(f"  bytes sent (= received) per participant per round: fabricml "
          f"{wire['sentPerParticipantRound'] / 1e6:.1f} MB (update to each other org); Flower "
          f"{f32 / 1e6:.1f} MB up + {f32 / 1e6:.1f} MB down (server)")  # fmt: skip
    over = "rounds 2.." if t["rounds"] > 1 else "round 1"
    print(f"  round wall time ({over}): fabricml {fab_round:.2f} s, "
          f"Flower {flower_round:.2f} s, ratio {fab_round / flower_round:.2f}x "
          f"(goal {fb.GOALS['largeRoundTimeRatio']}x); rounds: "
          f"fabricml {fb.seconds(fab['roundSeconds'])}, Flower {fb.seconds(fl['roundSeconds'])}")  # fmt: skip
    print(f"  local training per round: fabricml {fab_train:.2f} s, Flower {flower_train:.2f} s; the "
          f"rest of a round: fabricml {fab_round - fab_train:.2f} s, Flower "
          f"{flower_round - flower_train:.2f} s")  # fmt: skip
    fb.print_phases(fab)
    rss, agents = fl["peakRssMiB"], ", ".join(f"{m:.0f}" for m in fab["agentPeakRssMiB"])
    print(
        f"  peak RSS: fabricml agents {agents} MiB; Flower's largest Ray worker "
        f"{rss['largestRayWorker']:.0f} MiB, largest process {rss['largestProcess']:.0f} MiB"
    )
    print(
        f"  final test accuracy (chance 0.10): fabricml {fab['curve'][-1]['testAccuracy']:.4f}, "
        f"Flower {fl['curve'][-1]['testAccuracy']:.4f}"
    )
