"""How the global model learned: each round's registered model on the demo's test set,
and each participant's view of it on its own held-out data, as numbers and a picture."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from fabricml.federation.data import Dataset
from fabricml.federation.round_models import round_ref
from fabricml.federation.training import evaluate
from fabricml.gateway.profile import ConnectionProfile
from fabricml.models.mlp import load
from fabricml.registry.connect import open_registry


def global_curve(
    profile: ConnectionProfile, task: str, rounds: list[int], test: Dataset
) -> list[dict[str, Any]]:
    """Test-set loss and accuracy of each round's registered global model, fetched through
    the registry as the org's auditor (so every file is checked against the ledger)."""
    out = []
    with open_registry(profile, "auditor") as reg, tempfile.TemporaryDirectory() as tmp:
        for r in [0, *rounds]:
            ref = round_ref(task, r)
            model = load(reg.load(ref, Path(tmp) / f"r{r}", require_deployable=False))
            loss, acc = evaluate(model, test)
            out.append({"round": r, "model": ref, "testLoss": loss, "testAccuracy": acc})
    return out


def plot_training(folder: Path, curve: list[dict[str, Any]]) -> Path:
    """Accuracy and loss per round: the global model on the test set, and each
    participant's view of it on its own held-out data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    rounds = [p["round"] for p in curve]
    ax_acc.plot(rounds, [p["testAccuracy"] for p in curve], "k-o", lw=2, label="global (test set)")
    ax_loss.plot(rounds, [p["testLoss"] for p in curve], "k-o", lw=2, label="global (test set)")
    for metrics in sorted(folder.glob("agents/*/metrics.jsonl")):
        every = [json.loads(x) for x in metrics.read_text().splitlines()]
        who = every[0]["participant"] if every else metrics.parent.name
        # A round the agent adopted without evaluating it (e.g. settled while it restarted)
        # has no held-out figures: plot the rounds that have them.
        lines = [m for m in every if "heldoutAccuracy" in m and "heldoutLoss" in m]
        xs = [m["round"] for m in lines]
        ax_acc.plot(xs, [m["heldoutAccuracy"] for m in lines], "--", alpha=0.7, label=who)
        ax_loss.plot(xs, [m["heldoutLoss"] for m in lines], "--", alpha=0.7, label=who)
    ax_acc.set(xlabel="round", ylabel="accuracy", title="Accuracy per round")
    ax_loss.set(xlabel="round", ylabel="cross-entropy loss", title="Loss per round")
    for ax in (ax_acc, ax_loss):
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = folder / "training.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
