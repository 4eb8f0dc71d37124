"""The ServerApp: Flower's FedAvg for sampling, wrapped in fabricml's AccountableStrategy,
which aggregates exactly and posts as the server's org. Starts from the task's registered
initial model and writes what happened to the run config's `summary` file."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from fabricml.federation import fixedpoint
from fabricml.federation.round_post import RoundPost
from fabricml.federation.training import global_parameters
from fabricml.flower.initial import load_initial
from fabricml.flower.messages import Settings
from fabricml.flower.session import links_for
from fabricml.flower.strategy import AccountableStrategy

from . import task

app = ServerApp()


class LyingStrategy(AccountableStrategy):
    """A dishonest server: after `round`, it adds noise to the aggregate it posts and sends."""

    def __init__(self, *args: object, round: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lie_round = round

    def publish(self, post: RoundPost) -> RoundPost:
        if post.round != self.lie_round:
            return post
        rng = np.random.default_rng(post.round)
        bent = [g + rng.integers(-(1 << 20), 1 << 20, g.shape) for g in post.new_global]
        return dataclasses.replace(post, new_global=bent, digest=fixedpoint.digest(bent))


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg, settings = context.run_config, Settings.of(context.run_config)
    org, _, identity = settings.server.partition("/")
    links = links_for(settings.profiles, org, identity, settings.task)
    ledger_task = links.federation.get_task(settings.task)
    initial = load_initial(links.store, ledger_task.initial_model)
    n = len(settings.participants)
    inner = FedAvg(fraction_evaluate=0.0, min_train_nodes=n, min_available_nodes=n)
    lie = int(cfg.get("tamper-round", 0))
    strategy = (
        LyingStrategy(inner, links, settings.task, wait=settings.wait, round=lie)
        if lie
        else AccountableStrategy(inner, links, settings.task, wait=settings.wait)
    )
    keys = list(task.model().state_dict())
    start = ArrayRecord({k: Array(a) for k, a in zip(keys, global_parameters(initial.weights), strict=True)})
    test = task.test_rows(str(cfg["data-dir"]))

    def central(round_: int, arrays: ArrayRecord) -> MetricRecord:
        net = task.model()
        task.load_parameters(net, arrays.to_numpy_ndarrays())
        loss, accuracy = task.evaluate(net, test)
        return MetricRecord({"test-loss": loss, "test-accuracy": accuracy})

    result = strategy.start(grid, start, num_rounds=ledger_task.rounds, evaluate_fn=central)
    if cfg.get("summary"):
        final = fixedpoint.digest(fixedpoint.encode(result.arrays.to_numpy_ndarrays()))
        summary = {
            "task": settings.task,
            "rounds": [dataclasses.asdict(r) for r in strategy.rounds],
            "finalDigest": final,
            "accuracy": {str(r): m["test-accuracy"] for r, m in result.evaluate_metrics_serverapp.items()},
        }
        Path(str(cfg["summary"])).write_text(json.dumps(summary, indent=2, sort_keys=True))
