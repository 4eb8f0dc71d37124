"""A revoked identity at the endpoints that authenticate by certificate (review finding R4).

Revoking through the API puts the CA's new CRL into the channel and into the API's own
check, but the artifact servers (and osnadmin, R2) never read a CRL: a trainer whose key
was stolen, and revoked for it, goes on writing into its org's store and reading every
member's store."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest

from fabricml.network.network import Network
from fabricml.network.topology import HOST
from fabricml.registry.artifact_client import ArtifactClient
from fabricml.registry.artifacts import ArtifactStore
from fabricml.registry.digests import sha256_bytes

from .conftest import api_client, enroll, identity_files, msp_files, register_through_api, unique


def _store(network: Network, org: str, files: tuple[Path, Path]) -> ArtifactClient:
    cas = [network.layout.ca_cert(o) for o in network.topology.organizations]
    return ArtifactClient(f"https://{HOST}:{network.topology.org(org).artifacts_port}", cas, *files)


def _status(store: ArtifactClient, method: str, digest: str, body: bytes | None = None) -> int:
    try:
        return store._request(method, digest, body)[0]
    except (ssl.SSLError, ConnectionError):
        return 0  # refused during the handshake


@pytest.fixture
def revoked(network: Network, tmp_path: Path) -> tuple[Path, Path]:
    """A trainer of org1, enrolled, then revoked for key compromise through org1's API."""
    name = unique("stolen")
    secret = register_through_api(network, "org1", name)
    assert enroll(network, "org1", name, secret, tmp_path).returncode == 0
    files = msp_files(tmp_path)
    before = os.urandom(64)
    assert _status(_store(network, "org1", files), "PUT", sha256_bytes(before), before) == 201
    with api_client(network, "org1", identity_files(network, "org1", "admin")) as api:
        r = api.post(f"/api/v1/identities/{name}/revoke", json={"reason": "keycompromise"})
    assert r.status_code == 200 and r.json()["revoked"], r.text
    return files


def test_a_revoked_identity_cannot_write_to_its_orgs_artifact_store(
    network: Network, revoked: tuple[Path, Path]
) -> None:
    data = os.urandom(64)
    status = _status(_store(network, "org1", revoked), "PUT", sha256_bytes(data), data)
    assert status in (0, 401, 403), f"a revoked trainer wrote a blob into org1's store: HTTP {status}"
    store = ArtifactStore(network.layout.artifact_store(network.topology.org("org1")))
    assert not store.has(sha256_bytes(data))


def test_a_revoked_identity_cannot_read_another_members_artifact_store(
    network: Network, revoked: tuple[Path, Path]
) -> None:
    data = os.urandom(64)
    digest = _store(network, "org2", identity_files(network, "org2", "trainer")).put(data)
    status = _status(_store(network, "org2", revoked), "GET", digest)
    assert status in (0, 401, 403), f"a revoked org1 trainer read org2's blob: HTTP {status}"
