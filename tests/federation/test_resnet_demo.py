"""The demo with ResNet-18 on the synthetic 32x32 images, on the real network: the agents
train the 11 M-parameter model from the registry, a quorum finalizes the round, the
round's model is registered as a ResNet-18 whose weights moved, and it is served with
verified receipts."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import numpy as np

from fabricml.demo import DemoOptions, run_demo
from fabricml.federation.round_models import round_ref
from fabricml.federation.training import parameters
from fabricml.gateway.profile import ConnectionProfile
from fabricml.models.mlp import load
from fabricml.models.resnet import ResNet18
from fabricml.network.network import Network
from fabricml.registry.connect import open_registry

TRAINING_IMAGES = 320  # of a participant's 400 images, its agent keeps 20% back


def test_a_resnet18_round_on_synthetic_images_is_finalized_registered_and_served(
    network: Network, tmp_path: Path
) -> None:
    opt = DemoOptions(dataset="images32", rounds=1, epochs=1, lr=0.01, rule="fedavg")
    opt.task = f"resnet-{uuid.uuid4().hex[:6]}"
    summary = run_demo(network, opt, print, lambda *_: None)

    [outcome] = summary["rounds"]
    assert outcome["status"] == "FINALIZED" and len(outcome["agreeing"]) >= 2, outcome
    assert [p["round"] for p in summary["globalCurve"]] == [0, 1]
    assert all(math.isfinite(p["testLoss"]) for p in summary["globalCurve"])

    folder = Path(summary["agentLogs"])
    trained = [
        m
        for f in sorted(folder.glob("agents/*/metrics.jsonl"))
        for m in map(json.loads, f.read_text().splitlines())
        if m.get("round") == 1 and "samples" in m
    ]
    assert len(trained) == 3 and all(m["samples"] == TRAINING_IMAGES for m in trained), trained

    profile = ConnectionProfile.load(network.layout.profile(network.topology.org("org2")))
    with open_registry(profile, "auditor") as reg:
        first = load(reg.load(round_ref(opt.task, 0), tmp_path / "r0", require_deployable=False))
        final = load(reg.load(summary["model"], tmp_path / "r1"))
    assert isinstance(first, ResNet18) and isinstance(final, ResNet18)
    assert sum(p.numel() for p in final.parameters()) == 11_173_962
    moved = [not np.array_equal(a, b) for a, b in zip(parameters(first), parameters(final), strict=True)]
    assert sum(moved) == len(moved), "every tensor of the model takes part in training"

    assert [i["org"] for i in summary["inference"]] == ["org1", "org2", "org3"]
    assert all(i["receiptVerified"] and i["answers"] == 16 for i in summary["inference"])
