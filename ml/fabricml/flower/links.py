"""What the Flower integration acts through, for one identity of one org: the Federation
contract, the org's artifact stores and the registrar of round models, opened from the
org's connection profile. Unit tests hand the mod, the strategy and the verifier fakes of
these instead of a ledger."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fabricml.contracts import ConsortiumClient, FederationClient, RegistryClient, open_connection
from fabricml.federation.agent_state import RoundModel
from fabricml.federation.fixedpoint import Update
from fabricml.federation.round_ledger import RoundLedger
from fabricml.federation.round_models import RoundRegistrar
from fabricml.gateway.profile import ConnectionProfile
from fabricml.registry.connect import own_store_url, registry_over
from fabricml.registry.service import ModelRegistry, blob_base

# The Federation contract as this integration uses it: a round's calls.
FederationLedger = RoundLedger


class UpdateStore(Protocol):
    """The org's artifact store and the members' ones."""

    def put(self, raw: bytes) -> str:
        """Publish bytes in the org's own store (members fetch them there); their digest."""
        ...

    def fetch(self, digest: str) -> bytes:
        """Bytes from any member's store, checked against the digest; raises OSError or
        fabricml.registry.artifacts.ArtifactError while no store serves them."""
        ...

    def load_model(self, ref: str, dest: Path) -> Path:
        """A registered version's files in dest, each checked against the ledger."""
        ...


class Registrar(Protocol):
    def register(self, entry: RoundModel, weights: Update, config: Mapping[str, Any]) -> bool: ...


@dataclass(frozen=True)
class Links:
    """One identity's links to the consortium."""

    federation: FederationLedger
    key: str  # "MSPID/subject", as the Federation contract names the caller
    store: UpdateStore
    registrar: Registrar | None
    blob_url: str  # commitments point members to <blob_url><digest>

    @property
    def msp_id(self) -> str:
        return self.key.split("/", 1)[0]

    def uri(self, digest: str) -> str:
        return self.blob_url + digest


class RegistryStore:
    """UpdateStore over an org's ModelRegistry."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    def put(self, raw: bytes) -> str:
        return self.registry.store.put_bytes(raw)

    def fetch(self, digest: str) -> bytes:
        return self.registry.blob(digest)

    def load_model(self, ref: str, dest: Path) -> Path:
        return self.registry.load(ref, dest, require_deployable=False)


@contextlib.contextmanager
def open_links(
    profile: ConnectionProfile, identity: str, task: str, log: Callable[[str], None] = lambda _: None
) -> Iterator[Links]:
    """`identity` of the profile's org, connected to its peer and stores (closed on exit)."""
    with open_connection(profile, identity) as connection:
        registry = registry_over(connection.client(RegistryClient), profile, identity)
        key = connection.client(ConsortiumClient).who_am_i().key
        yield Links(
            federation=connection.client(FederationClient),
            key=key,
            store=RegistryStore(registry),
            registrar=RoundRegistrar(registry, task, {"runtime": "flower"}, log),
            blob_url=blob_base(own_store_url(profile)),
        )
