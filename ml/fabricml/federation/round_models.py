"""Round models in the registry: each finalized round's global model, registered by the
first agreeing org (by MSP ID, as the Registry contract checks) with its lineage (task,
round, participants, their dataset fingerprints, the rule, the aggregate digest and the
round's transaction)."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fabricml.contracts.federation import Task
from fabricml.gateway import GatewayError, RefusalCode, is_refusal
from fabricml.models.mlp import build, save
from fabricml.registry.datasets import DatasetFingerprint
from fabricml.registry.service import ModelRegistration, ModelRegistry

from .agent_state import RoundModel
from .fixedpoint import Update
from .training import global_parameters, load_parameters


def model_name(task: str) -> str:
    """Registry name of a task's global models (registry names are lower case)."""
    return re.sub(r"[^a-z0-9._-]", "-", f"fed-{task}".lower())[:64]


def initial_model_name(task: str) -> str:
    """Registry name of the initial model the demo registers for a task: fed- names are
    reserved to finalized rounds' models (the Registry contract refuses them otherwise)."""
    return re.sub(r"[^a-z0-9._-]", "-", f"init-{task}".lower())[:64]


def round_ref(task: str, round_: int) -> str:
    """name@version of a round's global model; round 0 is the task's initial model."""
    if round_ == 0:
        return f"{initial_model_name(task)}@r0"
    return f"{model_name(task)}@r{round_}"


def parent_of(adopted: list[dict[str, Any]], task: Task, round_: int) -> str:
    """The lineage parent of a round's model: the last earlier FINALIZED round's model
    (from the agent's metrics lines), else the task's initial model."""
    for done in reversed(adopted):
        if done["round"] < round_ and done["status"] == "FINALIZED":
            return round_ref(task.id, done["round"])
    return task.initial_model


def _fingerprints(datasets: Mapping[str, Mapping[str, Any]]) -> list[DatasetFingerprint]:
    return [
        DatasetFingerprint(key.replace("/", "-")[:64], d["digest"], d["rows"], d["schemaDigest"])
        for key, d in sorted(datasets.items())
        if d
    ]


class RoundRegistrar:
    """Registers round models for one task as one org's identity."""

    def __init__(
        self,
        registry: ModelRegistry,
        task: str,
        local_training: Mapping[str, Any],
        log: Callable[[str], None],
    ) -> None:
        self.registry, self.task, self.local_training, self.log = registry, task, local_training, log

    def register(self, entry: RoundModel, weights: Update, config: Mapping[str, Any]) -> bool:
        """Register the round's model unless it already is; False when its parent is not
        registered yet (the previous round's registrar is behind): try again later."""
        ref = round_ref(self.task, entry.round)
        try:
            self.registry.get(ref)
            return True  # registered before a restart
        except GatewayError as exc:
            if not is_refusal(exc, RefusalCode.NOT_FOUND):
                raise
        model = build(dict(config))
        load_parameters(model, global_parameters(weights))
        with tempfile.TemporaryDirectory() as tmp:
            save(model, Path(tmp) / "model")
            try:
                self.registry.register(Path(tmp) / "model", self._registration(entry), link=True)
            except GatewayError as exc:
                if is_refusal(exc, RefusalCode.NOT_FOUND):  # the parent is not registered yet
                    return False
                raise
        self.log(f"round {entry.round}: registered {ref}")
        return True

    def _registration(self, entry: RoundModel) -> ModelRegistration:
        return ModelRegistration(
            name=model_name(self.task),
            version=f"r{entry.round}",
            training_orgs=sorted({key.split("/")[0] for key in entry.datasets}),
            datasets=_fingerprints(entry.datasets),
            hyperparameters={
                "task": self.task,
                "round": entry.round,
                "rule": entry.rule,
                "participants": sorted(entry.datasets),
                "aggregateDigest": entry.aggregate_digest,
                "roundTx": entry.round_tx,
                "localTraining": dict(self.local_training),
            },
            metrics=entry.metrics,
            parents=[entry.parent],
            round_ref=f"{self.task}/{entry.round}",
            aggregate_digest=entry.aggregate_digest,  # the Registry checks it against the round
        )
