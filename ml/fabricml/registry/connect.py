"""Open an org's registry from its connection profile: Gateway, local store, members' stores."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fabricml.contracts import RegistryClient, open_contract
from fabricml.gateway.profile import ConnectionProfile

from .artifact_client import ArtifactClient
from .artifacts import ArtifactStore
from .service import ModelRegistry


def identity_files(profile: ConnectionProfile, identity: str) -> tuple[Path, Path]:
    """(certificate, private key) of one of the org's identities, for mutual TLS."""
    entry = profile.raw["identities"].get(identity)
    msp = Path(entry["mspDir"]) if entry else Path(profile.raw["identitiesDir"]) / identity / "msp"
    keys = [p for p in (msp / "keystore").iterdir() if p.is_file()]
    if len(keys) != 1:
        raise ValueError(f"expected one private key for {identity} in {msp / 'keystore'}, found {len(keys)}")
    return msp / "signcerts" / "cert.pem", keys[0]


def own_store_url(profile: ConnectionProfile) -> str:
    """The URL of this org's own artifact server, as members reach it ("" if it has none)."""
    server = profile.raw.get("artifactServers", {}).get(profile.organization)
    return str(server["url"]) if server else ""


def member_stores(profile: ConnectionProfile, identity: str) -> list[ArtifactClient]:
    """Clients for the other members' artifact servers, authenticated as `identity`. Each
    trusts only its own org's CAs: a certificate another member issued cannot pose as it."""
    cert, key = identity_files(profile, identity)
    return [
        ArtifactClient(s["url"], [Path(s["tlsCACerts"]["path"])], cert, key)
        for name, s in sorted(profile.raw["artifactServers"].items())
        if name != profile.organization
    ]


def registry_over(ledger: RegistryClient, profile: ConnectionProfile, identity: str) -> ModelRegistry:
    """The org's registry on an open Registry client: its own store and the members' stores."""
    store = ArtifactStore(Path(profile.raw["artifactStore"]))
    remotes = member_stores(profile, identity)
    return ModelRegistry(ledger, store, remotes, profile.msp_id, own_store_url(profile))


@contextmanager
def open_registry(profile: ConnectionProfile, identity: str) -> Iterator[ModelRegistry]:
    """The org's registry as `identity`, on a connection of its own (closed on exit)."""
    with open_contract(profile, identity, RegistryClient) as ledger:
        yield registry_over(ledger, profile, identity)
