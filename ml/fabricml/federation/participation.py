"""What a training agent acts through: the Federation contract, its own identity, the
artifact stores and the registrar of round models; and how they are opened from a
connection profile. Unit tests hand an agent fakes of these instead of a ledger."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fabricml.contracts import ConsortiumClient, FederationClient, RegistryClient, open_connection
from fabricml.contracts.federation import AggregatePost, Commitment, RoundResult, Task
from fabricml.gateway.profile import ConnectionProfile
from fabricml.registry.artifacts import ArtifactError
from fabricml.registry.connect import registry_over
from fabricml.registry.service import ModelRegistry

from .agent_state import RoundModel
from .fixedpoint import Update
from .reveals import UnfetchableUpdate
from .round_models import RoundRegistrar


class FederationLedger(Protocol):
    """The Federation contract as an agent uses it (fabricml.contracts.FederationClient)."""

    def get_task(self, task_id: str) -> Task: ...
    def join(self, task_id: str) -> Task: ...
    def advance(self, task_id: str) -> Task: ...
    def commit(self, task_id: str, round_: int, digest: str, samples: int) -> Commitment: ...
    def reveal(self, task_id: str, round_: int, digest: str, uri: str) -> Commitment: ...
    def commitments(self, task_id: str, round_: int) -> tuple[Commitment, ...]: ...
    def post_aggregate(
        self, task_id: str, round_: int, digest: str, scores: Mapping[str, int], flagged: list[str]
    ) -> AggregatePost: ...
    def aggregates(self, task_id: str, round_: int) -> tuple[AggregatePost, ...]: ...
    def get_round(self, task_id: str, round_: int) -> RoundResult: ...


class UpdateStore(Protocol):
    """The artifact stores as an agent uses them."""

    def put(self, raw: bytes) -> str:
        """Keep bytes in the org's own store (members fetch them from there); their digest."""
        ...

    def fetch(self, digest: str) -> bytes:
        """Bytes from any member's store, checked against the digest; UnfetchableUpdate if none has them."""
        ...

    def initial_model(self, ref: str, dest: Path) -> Path:
        """A registered version's files in dest, each checked against the ledger."""
        ...


class Registrar(Protocol):
    def register(self, entry: RoundModel, weights: Update, config: Mapping[str, Any]) -> bool: ...


@dataclass(frozen=True)
class Participation:
    """One participant's links to the consortium."""

    federation: FederationLedger
    key: str  # "MSPID/subject", as the Federation contract names this participant
    store: UpdateStore
    registrar: Registrar
    blob_url: str  # the org's artifact server; reveals point members to <blob_url>/v1/blobs/<digest>
    wake: threading.Event = field(default_factory=threading.Event)  # set when the task's events commit


class RegistryStore:
    """UpdateStore over the org's registry (its own store and the members' stores)."""

    def __init__(self, registry: ModelRegistry, attempts: int = 5, pause: float = 0.5) -> None:
        self.registry, self.attempts, self.pause = registry, attempts, pause

    def put(self, raw: bytes) -> str:
        return self.registry.store.put_bytes(raw)

    def fetch(self, digest: str) -> bytes:
        errors: list[str] = []
        for _ in range(self.attempts):  # a member's store may be restarting
            try:
                return self.registry.blob(digest)
            except (ArtifactError, OSError) as exc:
                errors.append(str(exc))
                time.sleep(self.pause)
        raise UnfetchableUpdate(f"update {digest} could not be fetched: {errors[-1]}")

    def initial_model(self, ref: str, dest: Path) -> Path:
        return self.registry.load(ref, dest, require_deployable=False)


@contextlib.contextmanager
def participate(
    profile: ConnectionProfile, identity: str, task: str, local_training: Mapping[str, Any],
    log: Callable[[str], None],
) -> Iterator[Participation]:  # fmt: skip
    """Connect `identity` to its org's peer and stores; `wake` is set whenever one of the
    task's chaincode events commits, so the agent looks at once instead of polling."""
    with open_connection(profile, identity) as connection:
        registry = registry_over(connection.client(RegistryClient), profile, identity)
        key = connection.client(ConsortiumClient).who_am_i().key
        links = Participation(
            federation=connection.client(FederationClient),
            key=key,
            store=RegistryStore(registry),
            registrar=RoundRegistrar(registry, task, local_training, lambda m: log(f"{key} {m}")),
            blob_url=profile.raw["artifactServers"][profile.organization]["url"],
        )
        events = connection.chaincode_events()

        def follow() -> None:
            with contextlib.suppress(Exception):  # the stream ends when it is closed
                for event in events:
                    if task.encode() in event.payload:  # other tasks' events are not ours
                        links.wake.set()

        threading.Thread(target=follow, name="fabricml-agent-events", daemon=True).start()
        try:
            yield links
        finally:
            events.close()
