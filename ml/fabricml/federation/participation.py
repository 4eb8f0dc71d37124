"""What a training agent acts through: the Federation contract, its own identity, the
artifact stores and the registrar of round models; and how they are opened from a
connection profile. Unit tests hand an agent fakes of these instead of a ledger."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from fabricml.contracts import ConsortiumClient, FederationClient, RegistryClient, open_connection
from fabricml.contracts.federation import Task
from fabricml.gateway.profile import ConnectionProfile
from fabricml.registry.artifact_client import ArtifactClient, Progress, Retry
from fabricml.registry.artifacts import ArtifactError
from fabricml.registry.connect import registry_over
from fabricml.registry.service import ModelRegistry
from fabricml.registry.spares import Spares, link_or_copy

from .agent_state import RoundModel
from .fixedpoint import Update
from .reveals import UnfetchableUpdate
from .round_ledger import RoundLedger
from .round_models import RoundRegistrar


class FederationLedger(RoundLedger, Protocol):
    """The Federation contract as an agent uses it: a round's calls, and joining the task."""

    def join(self, task_id: str) -> Task: ...


class UpdateStore(Protocol):
    """The artifact stores as an agent uses them."""

    def publish(self, path: Path) -> str:
        """Serve a file's bytes from the org's own store (members fetch them there); their digest."""
        ...

    def fetch_to(
        self, digest: str, uri: str, dest: Path, spares: Spares | None = None, size: int = 0
    ) -> Path:
        """The bytes with this digest in `dest`, from the store `uri` names or any member's
        (checked against the digest, resumed after a broken connection), written over one
        of `spares` (about `size` bytes expected) where there is one; UnfetchableUpdate if
        none serves them now."""
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
    blob_url: str  # the org's artifact server; commitments point to <blob_url>/v1/blobs/<digest>
    wake: threading.Event = field(default_factory=threading.Event)  # set when the task's events commit


AGENT_RETRY = Retry(attempts=3, first_delay=0.2, max_delay=1.0)  # the agent itself tries again later


class RegistryStore:
    """UpdateStore over the org's registry (its own store and the members' stores)."""

    def __init__(
        self, registry: ModelRegistry, retry: Retry = AGENT_RETRY, progress: Progress | None = None
    ) -> None:
        self.registry, self.retry, self.progress = registry, retry, progress  # progress: (done, total) bytes

    def publish(self, path: Path) -> str:
        return self.registry.store.put_file(path, link=True)  # the agent never writes over its updates

    def fetch_to(
        self, digest: str, uri: str, dest: Path, spares: Spares | None = None, size: int = 0
    ) -> Path:
        if dest.exists():
            return dest  # fetch_to renames a file into place only once its digest matched
        if self.registry.store.has(digest):
            partial = dest.with_name(dest.name + ".partial")
            partial.unlink(missing_ok=True)
            link_or_copy(self.registry.store.path(digest), partial)
            partial.replace(dest)
            return dest
        errors: list[str] = []
        for remote in _named_first(self.registry.remotes, uri):
            try:
                remote.fetch_to(digest, dest, self.progress, self.retry, spares, size)
                return dest
            except (ArtifactError, OSError) as exc:  # FetchInterrupted keeps the part for a resume
                errors.append(f"{remote.where}: {exc}")
        why = "; ".join(errors) or "no member store"
        raise UnfetchableUpdate(f"update {digest} could not be fetched: {why}")

    def initial_model(self, ref: str, dest: Path) -> Path:
        return self.registry.load(ref, dest, require_deployable=False)


def _named_first(remotes: Sequence[ArtifactClient], uri: str) -> list[ArtifactClient]:
    """The store the commitment's URI names first, then the other members' (content-addressed
    bytes are the same wherever they are); a URI naming no member's store is never dialled."""
    where = urlparse(uri)
    named = [r for r in remotes if (r.host, r.port) == (where.hostname, where.port)]
    return named + [r for r in remotes if r not in named]


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
